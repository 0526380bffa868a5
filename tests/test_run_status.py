"""One rule for a run's state: every pairing of what Slurm's accounting says about a
run's task with what the run's own state file says, read by `status` (the backend) and
by the runs table, gives the same answer; the rule's answers for the pairings where
the two sources disagree are spelled out."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.backend import backend_for, run_status, states
from paddle_hpc.backend.slurm import SlurmBackend
from paddle_hpc.collect.tables import runs_frame
from paddle_hpc.core import runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Feed, Manifest, RunEntry, save
from paddle_hpc.core.runstate import RunState
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.parse import parse_sacct, task_rows
from paddle_hpc.slurm.runner import CommandResult

HEADER = "JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName\n"
# what sacct can say of a task (None: no row yet), and what a run's state file can say
TASK_STATES = [None, "PENDING", "RUNNING", *sorted(runstate.SLURM_ENDED), "REQUEUED"]
FILE_STATES = [None, "RUNNING", *sorted(runstate.ENDED)]


def row(task: int, state: str) -> str:
    nodes = "None assigned" if state == "PENDING" else "n[1-2]"
    return f"40_{task}|{100 + task}|{state}|0:0|{nodes}|2026-11-23T10:00:01|Unknown|7|debug|s\n"


class Sacct:
    """A runner that answers sacct with fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> CommandResult:
        assert argv[0] == "sacct"
        return CommandResult(tuple(argv), 0, self.text, "")


# (task state, file state, file says retrying, the file is of an earlier attempt)
CASES = [
    (task, own, retrying, older)
    for task, own in itertools.product(TASK_STATES, FILE_STATES)
    for retrying, older in ((False, False), (True, False), (False, True))
    if own is not None or not (retrying or older)
]


@pytest.mark.parametrize("packed", [False, True])
def test_status_and_the_runs_table_agree_on_every_pairing(tmp_path: Path, packed: bool) -> None:
    runs = tuple(
        RunEntry(f"r{i}", i, (f"a={i}",), {"a": str(i)}, 0, 40, i, 2 if older else 1, (), packed)
        for i, (_, _, _, older) in enumerate(CASES)
    )
    manifest = Manifest("s", "2026-11-23", ("python",), "slurm", ("a",), ({},), runs)
    save(tmp_path, manifest)
    sweep = SweepDir(tmp_path)
    text = HEADER
    files: dict[str, dict[str, object]] = {}
    for i, (task, own, retrying, _) in enumerate(CASES):
        if task is not None:
            text += row(i, task)
        if own is not None:
            path = sweep.run(f"r{i}").state
            runstate.write(path, RunState(own, attempt=1, retrying=retrying, job=f"40_{i}"))
            files[f"r{i}"] = json.loads(path.read_text())
    backend = SlurmBackend(SlurmClient(Sacct(text)))
    by_status = [s.state for s in states(backend, sweep, manifest)]
    no_metrics = pd.DataFrame(columns=["run_id", "name", "step", "value"])
    table = runs_frame(manifest, task_rows(parse_sacct(text)), files, no_metrics)
    assert len(CASES) > 150
    assert list(table["state"]) == by_status
    assert set(by_status) <= runstate.ENDED | {"PENDING", "RUNNING", "REQUEUED", "NOT_SUBMITTED"}


def status(task: str | None, own: RunState | None, packed: bool = False) -> str:
    run = RunEntry("r0", 0, ("a=1",), {"a": "1"}, 0, 40, 0, packed=packed)
    records = task_rows(parse_sacct(HEADER + row(0, task))) if task else {}
    return run_status(run, records.get((40, 0)), own, runs_here=False).state


def test_where_the_two_sources_disagree() -> None:
    pruned = RunState("PRUNED")
    assert status("RUNNING", pruned) == "RUNNING"  # pruned, its task still ending
    assert status("CANCELLED", pruned) == "PRUNED"  # the driver cancelled it: pruned
    assert status(None, pruned) == "PRUNED"
    assert status("FAILED", RunState("COMPLETED")) == "FAILED"  # Slurm's word on its task
    assert status(None, RunState("RUNNING")) == "PENDING"  # sacct has not recorded it yet
    # a packed trial's own word stands for its own run, not its task's
    assert status("RUNNING", RunState("COMPLETED"), packed=True) == "COMPLETED"
    assert status("COMPLETED", RunState("FAILED"), packed=True) == "FAILED"


def test_a_local_run_is_its_state_file() -> None:
    local = backend_for("local")
    run = RunEntry("r0", 0, ("a=1",), {"a": "1"}, 0)
    assert run_status(run, None, None, local.runs_here).state == "PENDING"
    failed = RunState("FAILED", retrying=True)
    assert run_status(run, None, failed, local.runs_here).state == "PENDING"  # retrying here
    assert run_status(run, None, RunState("COMPLETED"), local.runs_here).nodes == ("localhost",)


def test_a_run_in_the_sweeps_feed_is_waiting_in_status_and_in_the_runs_table(
    tmp_path: Path,
) -> None:
    runs = (
        RunEntry("r0", 0, ("a=0",), {"a": "0"}, 0, 40, 0),
        RunEntry("r1", 1, ("a=1",), {"a": "1"}, 0),
        RunEntry("r2", 2, ("a=2",), {"a": "2"}, 0),
    )
    feed = Feed(("r1",), {}, ("MaxSubmitJobsPerUser=1 of QOS capped",))
    manifest = Manifest("s", "2026-12-05", ("python",), "slurm", ("a",), ({},), runs, feed=feed)
    save(tmp_path, manifest)
    text = HEADER + row(0, "RUNNING")
    backend = SlurmBackend(SlurmClient(Sacct(text)))
    found = states(backend, SweepDir(tmp_path), manifest)
    assert [s.state for s in found] == ["RUNNING", "WAITING", "NOT_SUBMITTED"]
    assert [s.active for s in found] == [True, True, False]
    no_metrics = pd.DataFrame(columns=["run_id", "name", "step", "value"])
    table = runs_frame(manifest, task_rows(parse_sacct(text)), {}, no_metrics)
    assert list(table["state"]) == ["RUNNING", "WAITING", "NOT_SUBMITTED"]
    assert manifest.without({"r1"}).feed is None
