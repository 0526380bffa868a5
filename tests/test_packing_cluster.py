"""Packed trials on the real test cluster: 16 trials, two per GPU, four per task.

Each test node has two (fake) GPUs; each task asks for one and runs two trials on it
at once, then two more. One trial raises on its first attempt: its three siblings
complete, and `retry` reruns just it, alone in a new task.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from paddle_hpc.backend import states
from paddle_hpc.backend.slurm import SlurmBackend
from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load
from paddle_hpc.core.runstate import RunState, read
from tests.test_lifecycle_cluster import cancel_all, cli, project
from tests.test_resume_cluster import preempt, release  # noqa: F401 - a fixture

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index") / "sweeps.jsonl"


TRIAL = """\
import os, sys, time
from paddle_hpc import log_metrics
print("trial", sys.argv[1], "starts", flush=True)
if sys.argv[1] == "6" and os.environ["PADDLE_HPC_ATTEMPT"] == "1":
    raise RuntimeError("trial 6 fails on its first attempt")
time.sleep(40 if sys.argv[1] == "100" else float(sys.argv[2]))
log_metrics(step=0, x=float(sys.argv[1]))
"""
CONFIG = """\
program: {script: train.py, args: ['${x}', '${seconds}']}
x: 0
seconds: 2
resources: {nodes: 1, cpus_per_task: 2, gpus_per_node: 1, gpus_per_trial: 0.5, time: '10'}
sweep: {name: packed, trials_per_task: 4}
"""


def own_states(sweep_dir: Path) -> dict[str, RunState]:
    found = {}
    for run in load(sweep_dir).runs:
        state = read(SweepDir(sweep_dir).run(run.run_id).state)
        assert state is not None, f"{run.run_id} has no state"
        found[run.run_id] = state
    return found


def shown(sweep_dir: Path) -> dict[str, str]:
    """run id -> its state as `status` shows it (a trial's own, read with its task's)."""
    found = states(SlurmBackend(), SweepDir(sweep_dir), load(sweep_dir))
    return {s.run_id: s.state for s in found}


def wait_trials(sweep_dir: Path, wanted: set[str], timeout: float = 300) -> dict[str, str]:
    """Polls until every trial is in one of `wanted`."""
    deadline = time.monotonic() + timeout
    while not set((now := shown(sweep_dir)).values()) <= wanted:
        assert time.monotonic() < deadline, f"still {now} after {timeout}s"
        time.sleep(2)
    return now


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = most = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_sixteen_trials_two_per_gpu_four_per_task(index: Path, tmp_path: Path) -> None:
    root = project(tmp_path, TRIAL, CONFIG)
    sweep_dir = root / "sweeps" / "packed"
    try:
        done = cli(root, index, "sweep", "-f", "x=range(16)", timeout=600)
        assert done.returncode == 1, done.stdout + done.stderr  # one trial failed
        assert "COMPLETED 15" in done.stdout and "FAILED 1" in done.stdout, done.stdout

        manifest = load(sweep_dir)
        (array,) = manifest.arrays
        assert array.trials_per_task == 4 and len(array.run_ids) == 16
        by_task: dict[int | None, list[str]] = {}
        for run in manifest.runs:
            by_task.setdefault(run.array_task, []).append(run.run_id)
        assert sorted(len(v) for v in by_task.values()) == [4, 4, 4, 4]
        failing = next(r for r in manifest.runs if r.swept["x"] == "6")

        now = shown(sweep_dir)
        assert len(now) == 16
        siblings = [r for r in by_task[failing.array_task] if r != failing.run_id]
        assert now[failing.run_id] == "FAILED"
        assert {now[r] for r in siblings} == {"COMPLETED"}
        assert {now[r] for r in now if r != failing.run_id} == {"COMPLETED"}

        own = own_states(sweep_dir)
        for task, run_ids in by_task.items():
            task_states = [own[r] for r in run_ids]
            assert len({s.devices for s in task_states}) == 1, f"task {task}: one GPU"
            assert len({s.master for s in task_states}) == 4, f"task {task}: a port each"
            spans = [(seconds(s.started), seconds(s.time)) for s in task_states]
            assert most_at_once(spans) == 2, f"task {task} ran {spans}"

        runs = load_tables(sweep_dir).runs
        assert len(runs) == 16
        assert runs.loc[failing.run_id, "state"] == "FAILED"
        assert runs.loc[failing.run_id, "exit_code"] == 1
        assert (runs.drop(failing.run_id)["state"] == "COMPLETED").all()
        assert (runs.drop(failing.run_id)["final.x"].sort_values().tolist()) == [
            float(x) for x in range(16) if x != 6
        ]
        errors = load_tables(sweep_dir).errors
        assert set(errors["run_id"]) == {failing.run_id}, errors  # siblings: no rows

        retried = cli(root, index, "retry", str(sweep_dir))
        assert retried.returncode == 0, retried.stderr
        assert f"retrying 1 run(s): {failing.run_id}" in retried.stdout
        wait_trials(sweep_dir, {"COMPLETED"})
        manifest = load(sweep_dir)
        assert manifest.arrays[1].run_ids == (failing.run_id,)
        after = own_states(sweep_dir)
        assert after[failing.run_id].attempt == 2 and after[failing.run_id].state == "COMPLETED"
        assert all(after[r] == own[r] for r in own if r != failing.run_id)  # left alone
        status = cli(root, index, "status", str(sweep_dir))
        assert "COMPLETED 16" in status.stdout, status.stdout
    finally:
        cancel_all(sweep_dir)


def test_cancel_of_one_trial_leaves_its_siblings_running(index: Path, tmp_path: Path) -> None:
    # one task, one slot (one trial at a time): a runs, b waits, c waits
    config = CONFIG.replace("gpus_per_trial: 0.5, ", "").replace(
        "trials_per_task: 4", "trials_per_task: 3"
    )
    root = project(tmp_path, TRIAL, config.replace("name: packed", "name: packed-cancel"))
    sweep_dir = root / "sweeps" / "packed-cancel"
    try:
        result = cli(root, index, "sweep", "x=100,1,2", "seconds=1")
        assert result.returncode == 0, result.stderr
        a, b, c = load(sweep_dir).runs
        deadline = time.monotonic() + 120
        while (state := read(SweepDir(sweep_dir).run(a.run_id).state)) is None:
            assert time.monotonic() < deadline, "trial a never started"
            time.sleep(1)
        cancelled = cli(root, index, "cancel", str(sweep_dir), a.run_id, b.run_id)
        assert cancelled.returncode == 0 and "cancelled 2 run(s)" in cancelled.stdout
        wait_trials(sweep_dir, {"COMPLETED", "CANCELLED", "FAILED"}, timeout=120)
        own = own_states(sweep_dir)
        assert own[a.run_id].state == "CANCELLED"
        assert own[b.run_id].state == "CANCELLED" and own[b.run_id].started == ""
        assert own[c.run_id].state == "COMPLETED"
        assert seconds(own[a.run_id].time) - seconds(state.started) < 35  # stopped early
        shown = {
            s.run_id: s.state for s in states(SlurmBackend(), SweepDir(sweep_dir), load(sweep_dir))
        }
        assert shown == {a.run_id: "CANCELLED", b.run_id: "CANCELLED", c.run_id: "COMPLETED"}
        assert not (SweepDir(sweep_dir).run(b.run_id).logs).exists()
    finally:
        cancel_all(sweep_dir)


# The first trial runs long on its first attempt only; the others are quick.
PREEMPTIBLE = """\
import os, sys, time
long = sys.argv[1] == "100" and os.environ["PADDLE_HPC_ATTEMPT"] == "1"
print("trial", sys.argv[1], "attempt", os.environ["PADDLE_HPC_ATTEMPT"], flush=True)
time.sleep(120 if long else 1)
"""


@pytest.mark.usefixtures("release")
def test_a_preempted_task_comes_back_and_runs_the_trials_it_had_not(
    index: Path, tmp_path: Path
) -> None:
    config = (
        CONFIG.replace("gpus_per_trial: 0.5, ", "")
        .replace("trials_per_task: 4", "trials_per_task: 3")
        .replace("name: packed", "name: packed-preempt")
    )
    root = project(tmp_path, PREEMPTIBLE, config)
    sweep_dir = root / "sweeps" / "packed-preempt"
    try:
        result = cli(root, index, "sweep", "x=100,1,2")
        assert result.returncode == 0, result.stderr
        a, b, c = load(sweep_dir).runs
        deadline = time.monotonic() + 120
        while read(SweepDir(sweep_dir).run(a.run_id).state) is None:
            assert time.monotonic() < deadline, "trial a never started"
            time.sleep(1)
        preempt()
        wait_trials(sweep_dir, {"COMPLETED"}, timeout=420)
        own = own_states(sweep_dir)
        assert own[a.run_id].attempt == 2 and own[a.run_id].history == ("PREEMPTED",)
        assert own[b.run_id].attempt == 1 and own[b.run_id].history == ()
        assert own[c.run_id].attempt == 1 and own[c.run_id].history == ()
        assert own[b.run_id].job == own[a.run_id].job  # the same task, come back
        first = SweepDir(sweep_dir).run(a.run_id).attempt(1)
        assert "attempt 1" in (first.node_logs(0) / "workerlog.0").read_text()
    finally:
        cancel_all(sweep_dir)
