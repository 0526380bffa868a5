"""Joining one sacct answer to a sweep's runs, with literal sacct output."""

from __future__ import annotations

from pathlib import Path

import pytest

from paddle_hpc.errors import PaddleHpcError
from paddle_hpc.manifest import ArrayEntry, Manifest, RunEntry, load, save
from paddle_hpc.slurm.parse import parse_sacct
from paddle_hpc.status import is_done, render, slurm_states

RUNS = tuple(RunEntry(f"r{i}", i, (f"a={i}",), {"a": str(i)}, 0) for i in range(5))
MANIFEST = Manifest("s", "2026-11-23T10:00:00+00:00", ("python",), "slurm", ("a",), ({},), RUNS)
SUBMITTED = MANIFEST.with_arrays((ArrayEntry(40, 0, ("r0", "r1", "r2", "r3")),), "submitted")

SACCT = """\
JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName
40_0|41|COMPLETED|0:0|n[1-2]|2026-11-23T10:00:01|2026-11-23T10:00:20|19|debug|s
40_0.batch|41.batch|COMPLETED|0:0|n1|2026-11-23T10:00:01|2026-11-23T10:00:20|19||batch
40_1|42|FAILED|1:0|n[1-2]|2026-11-23T10:00:01|2026-11-23T10:00:09|8|debug|s
40_[2-3%2]|40|PENDING|0:0|None assigned|Unknown|Unknown|0|debug|s
"""


def test_runs_get_their_task_rows_and_pending_ranges() -> None:
    states = slurm_states(SUBMITTED, parse_sacct(SACCT))
    assert [(s.run_id, s.state, s.job) for s in states] == [
        ("r0", "COMPLETED", "40_0"),
        ("r1", "FAILED", "40_1"),
        ("r2", "PENDING", "40_2"),
        ("r3", "PENDING", "40_3"),
        ("r4", "NOT_SUBMITTED", ""),
    ]
    assert states[0].nodes == ("n1", "n2") and states[0].elapsed_s == 19
    assert not is_done(states)


def test_tasks_sacct_has_not_recorded_yet_are_pending() -> None:
    states = slurm_states(SUBMITTED, [])
    assert {s.state for s in states[:4]} == {"PENDING"}


def test_the_table_counts_states() -> None:
    table = render(SUBMITTED, slurm_states(SUBMITTED, parse_sacct(SACCT)))
    assert table.title == "sweep s: 5 runs  (COMPLETED 1  FAILED 1  NOT_SUBMITTED 1  PENDING 2)"
    assert table.row_count == 5


def test_manifest_round_trip_and_corruption(tmp_path: Path) -> None:
    save(tmp_path, SUBMITTED)
    assert load(tmp_path) == SUBMITTED
    (tmp_path / "manifest.json").write_text('{"version": 1, "runs": [')
    with pytest.raises(PaddleHpcError, match="not valid JSON"):
        load(tmp_path)
    with pytest.raises(PaddleHpcError, match="not a sweep directory"):
        load(tmp_path / "elsewhere")
