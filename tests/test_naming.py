"""Naming runs and states on the command line, with ugly names."""

from __future__ import annotations

import pytest

from paddle_hpc.backend.naming import parse_states, pick_run, pick_runs
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import ArrayEntry, Manifest, RunEntry

RUNS = (
    RunEntry("r8fe5cf36b6", 0, ("a=1",), {"a": "1"}, 0),
    RunEntry("r8fe5d00000", 1, ("a=2",), {"a": "2"}, 0),
    RunEntry("rc45ca66a0f", 2, ("a=3",), {"a": "3"}, 0),
)
M = Manifest("s", "t", (), "slurm", ("a",), ({},), RUNS).with_arrays(
    (ArrayEntry(12, 0, ("r8fe5cf36b6", "r8fe5d00000", "rc45ca66a0f")),), "submitted"
)


def test_ids_prefixes_and_array_tasks() -> None:
    assert pick_run(M, "rc45ca66a0f").run_id == "rc45ca66a0f"
    assert pick_run(M, "rc4").run_id == "rc45ca66a0f"
    assert pick_run(M, "12_1").run_id == "r8fe5d00000"
    retried = M.for_retry({"r8fe5cf36b6": ("FAILED", 1)})
    assert pick_run(retried, "12_0").run_id == "r8fe5cf36b6"  # an earlier submission's task
    assert [r.run_id for r in pick_runs(M, ["rc4", "12_2", "r8fe5c"])] == [
        "rc45ca66a0f",
        "r8fe5cf36b6",
    ]


PACKED = Manifest("s", "t", (), "slurm", ("a",), ({},), RUNS).with_arrays(
    (ArrayEntry(13, 0, ("r8fe5cf36b6", "r8fe5d00000", "rc45ca66a0f"), trials_per_task=2),),
    "submitted",
)


def test_a_packed_task_names_each_of_its_trials() -> None:
    assert [(r.array_task, r.packed) for r in PACKED.runs] == [(0, True), (0, True), (1, True)]
    assert [r.run_id for r in pick_runs(PACKED, ["13_0"])] == ["r8fe5cf36b6", "r8fe5d00000"]
    assert pick_run(PACKED, "13_1").run_id == "rc45ca66a0f"  # a task of one trial
    with pytest.raises(PaddleHpcError, match=r"13_0 runs 2 packed trials .*name one by its run id"):
        pick_run(PACKED, "13_0")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("r8fe5", "start of 2 runs"),
        ("nope", "has no run 'nope'"),
        ("", "has no run ''"),
        ("12_9", "no run of sweep 's' ran as array task 12_9"),
        ("$(rm -rf /)", "has no run"),
    ],
)
def test_bad_names_say_what_to_give(name: str, message: str) -> None:
    with pytest.raises(PaddleHpcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pick_run(M, name)


def test_states() -> None:
    assert parse_states("failed, TIMEOUT,") == {"FAILED", "TIMEOUT"}
    for bad in ("FAILD", ",", "COMPLETED;rm"):
        with pytest.raises(PaddleHpcError, match="--state"):
            parse_states(bad)
    with pytest.raises(PaddleHpcError, match="PENDING"):
        parse_states("PENDING", {"FAILED"})
