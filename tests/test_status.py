"""Joining one sacct answer to a sweep's runs, with literal sacct output; the view."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.table import Table

from paddle_hpc.backend import run_status
from paddle_hpc.backend.view import attempt_text, exit_code, is_done, render
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import ArrayEntry, Manifest, RunEntry, load, save
from paddle_hpc.core.runstate import RunState
from paddle_hpc.slurm.parse import parse_sacct, task_rows

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


def statuses(manifest: Manifest, text: str, own: dict[str, RunState] | None = None) -> list:
    rows = task_rows(parse_sacct(text))
    own = own or {}
    return [
        run_status(
            r, rows.get((r.job_id, r.array_task)) if r.job_id else None, own.get(r.run_id), False
        )
        for r in manifest.runs
    ]


def test_runs_get_their_task_rows_and_pending_ranges() -> None:
    found = statuses(SUBMITTED, SACCT)
    assert [(s.run_id, s.state, s.job) for s in found] == [
        ("r0", "COMPLETED", "40_0"),
        ("r1", "FAILED", "40_1"),
        ("r2", "PENDING", "40_2"),
        ("r3", "PENDING", "40_3"),
        ("r4", "NOT_SUBMITTED", ""),
    ]
    assert found[0].nodes == ("n1", "n2") and found[0].elapsed_s == 19
    assert not is_done(found)


def test_tasks_sacct_has_not_recorded_yet_are_pending() -> None:
    assert {s.state for s in statuses(SUBMITTED, "")[:4]} == {"PENDING"}


def test_a_requeued_run_shows_its_attempt_and_why() -> None:
    why = "requeued for another attempt"
    own = {"r1": RunState("FAILED", attempt=2, retrying=True, reason=why)}
    found = statuses(SUBMITTED, SACCT.replace("40_1|42|FAILED", "40_1|42|PENDING"), own)
    assert (found[1].state, found[1].attempt, found[1].reason) == ("PENDING", 2, why)
    # a state file of an earlier attempt says nothing about the current one
    older = {"r0": RunState("FAILED", attempt=1, reason="old")}
    retried = SUBMITTED.for_retry({"r0": ("FAILED", 1)})
    assert retried.run("r0").attempt == 2 and retried.run("r0").job_id is None
    assert statuses(retried, SACCT, older)[0].state == "NOT_SUBMITTED"


def test_a_run_back_after_a_preemption_and_a_time_limit_says_so() -> None:
    back = RunState("RUNNING", attempt=3, restarts=2, history=("PREEMPTED", "TIMEOUT"))
    found = statuses(SUBMITTED, SACCT.replace("40_1|42|FAILED", "40_1|42|RUNNING"), {"r1": back})
    assert found[1].history == ("PREEMPTED", "TIMEOUT")
    assert attempt_text(found[1]) == "3 after PREEMPTED, TIMEOUT"
    assert attempt_text(found[0]) == "1"
    table = render(SUBMITTED, found, every=True)[1]
    assert isinstance(table, Table)
    attempts = next(c for c in table.columns if c.header == "attempt")
    assert list(attempts.cells)[1] == "3 after PREEMPTED, TIMEOUT"


def test_the_view_counts_states_and_lists_what_needs_attention() -> None:
    found = statuses(SUBMITTED, SACCT)
    summary, table = render(SUBMITTED, found)
    assert summary == "sweep s: 5 runs  (COMPLETED 1  FAILED 1  NOT_SUBMITTED 1  PENDING 2)"
    assert isinstance(table, Table) and table.row_count == 1  # r1, FAILED
    assert render(SUBMITTED, found, every=True)[1].row_count == 5  # type: ignore[union-attr]
    only = render(SUBMITTED, found, only={"PENDING"})[1]
    assert isinstance(only, Table) and only.row_count == 2


def test_big_sweeps_show_a_bounded_table() -> None:
    runs = tuple(RunEntry(f"r{i}", i, (f"a={i}",), {"a": str(i)}, 0) for i in range(1000))
    manifest = Manifest("big", "t", (), "slurm", ("a",), ({},), runs)
    big = manifest.with_arrays((ArrayEntry(7, 0, tuple(r.run_id for r in runs)),), "submitted")
    text = "JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName\n"
    text += "".join(f"7_{i}|{100 + i}|FAILED|1:0|n1|||3|debug|big\n" for i in range(1000))
    found = statuses(big, text)
    parts = render(big, found)
    assert parts[0] == "sweep big: 1000 runs  (FAILED 1000)"
    assert parts[1].row_count == 20 and parts[2].startswith("... and 980 more")  # type: ignore[union-attr]
    assert exit_code(found) == 1


def test_manifest_round_trip_and_corruption(tmp_path: Path) -> None:
    retried = SUBMITTED.for_retry({"r1": ("FAILED", 3)})
    save(tmp_path, retried)
    assert load(tmp_path) == retried
    assert retried.run("r1").attempt == 4 and retried.run("r1").submissions[0].job_id == 40
    (tmp_path / "manifest.json").write_text('{"version": 1, "runs": [')
    with pytest.raises(PaddleHpcError, match="cannot be read as JSON"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"version": 1, "runs": [{"x": 1}], "arrays": []}')
    with pytest.raises(PaddleHpcError, match="not a paddle_hpc manifest"):
        load(tmp_path)
    with pytest.raises(PaddleHpcError, match="not a sweep directory"):
        load(tmp_path / "elsewhere")
