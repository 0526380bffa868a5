"""A sweep's life on the real test cluster: list, logs, cancel, retry, extend, clean.

Slurm holds a requeued task for about two minutes, so the automatic-retry sweep is
submitted first (a module fixture) and checked last, while the others run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.backend import backend_for, states
from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load
from tests.cluster import assert_nothing_left, requeued_start_soon, tracks_every_array

pytestmark = pytest.mark.slurm

# Fails on its first attempt, succeeds on the next: the run directory remembers.
FLAKY = """\
import os, pathlib
from paddle_hpc import log_metrics
mark = pathlib.Path(os.environ["PADDLE_HPC_RUN_DIR"]) / "tried"
if os.environ["PADDLE_TRAINER_ID"] == "0":
    if not mark.exists():
        mark.write_text("x")
        raise RuntimeError("first attempt fails")
    log_metrics(step=0, acc=1.0)
"""
# Fails until the user puts a file 'fixed' in the run directory.
BROKEN = """\
import os, pathlib
if not (pathlib.Path(os.environ["PADDLE_HPC_RUN_DIR"]) / "fixed").exists():
    raise ValueError("not fixed yet")
print("fixed, done", flush=True)
"""
TICKS = """\
import sys, time
for i in range(int(sys.argv[1])):
    print(f"tick {i}", flush=True)
    time.sleep(1)
print("last line", flush=True)
"""
SMALL = "resources: {nodes: 1, cpus_per_task: 1, time: '5'}\n"
# Hangs after its second epoch on its first attempt (every rank), completes on a later
# one: `attempts/` holds the earlier attempts' files once a later one starts.
STALLING = """\
import os, pathlib, time
from paddle_hpc import log_metrics
first = not (pathlib.Path(os.environ["PADDLE_HPC_RUN_DIR"]) / "attempts").exists()
for epoch in range(3):
    log_metrics(step=epoch, loss=1.0 / (epoch + 1))
    print(f"epoch {epoch}", flush=True)
    if epoch == 1 and first:
        time.sleep(3600)
"""
STALL_TIMEOUT = 15


def cli(
    cwd: Path, index: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PADDLE_HPC_INDEX": str(index)}
    return subprocess.run(
        [sys.executable, "-m", "paddle_hpc.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def project(root: Path, body: str, config: str) -> Path:
    """A user's folder: train.py and conf/config.yaml (program.script is train.py)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(body)
    (root / "conf").mkdir(exist_ok=True)
    (root / "conf" / "config.yaml").write_text(config)
    return root


PROGRAM = "program: {script: train.py}\n"


def task_states(sweep_dir: Path) -> dict[str, str]:
    """run id -> its state as `status` shows it (one sacct call; a collapsed row of
    pending tasks stands for each of them)."""
    found = states(backend_for("slurm"), SweepDir(sweep_dir), load(sweep_dir))
    return {s.run_id: s.state for s in found}


def wait_for(sweep_dir: Path, done: object, timeout: float = 300) -> dict[str, str]:
    """Polls the runs' states until done(states) holds; returns the states."""
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        now = task_states(sweep_dir)
        if done(now):  # type: ignore[operator]
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"still {now} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 8)


def cancel_all(sweep_dir: Path) -> None:
    """Clean-up: scancel every array of the sweep, whatever state they are in."""
    jobs = [str(a.job_id) for a in load(sweep_dir).arrays]
    subprocess.run(["scancel", *jobs], capture_output=True, check=False)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index") / "sweeps.jsonl"


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory, index: Path) -> Iterator[Path]:
    """A sweep of a run that fails once, with one automatic retry: submitted and left."""
    root = project(
        tmp_path_factory.mktemp("flaky"),
        FLAKY,
        PROGRAM + SMALL + "sweep: {name: flaky, max_retries: 1}\n",
    )
    result = cli(root, index, "sweep")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = root / "sweeps" / "flaky"
    with requeued_start_soon():  # its retry is a requeue
        yield sweep_dir
    cancel_all(sweep_dir)


@pytest.fixture(scope="module")
def stalling(tmp_path_factory: pytest.TempPathFactory, index: Path) -> Iterator[Path]:
    """A two-node run that hangs once, with launch.stall_timeout."""
    root = project(
        tmp_path_factory.mktemp("stalling"),
        STALLING,
        PROGRAM
        + "resources: {nodes: 2, cpus_per_task: 1, time: '5'}\n"
        + f"launch: {{stall_timeout: {STALL_TIMEOUT}}}\n"
        + "sweep: {name: stalling}\n",
    )
    result = cli(root, index, "sweep")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = root / "sweeps" / "stalling"
    yield sweep_dir
    cancel_all(sweep_dir)


def test_list_shows_sweeps_from_another_directory(
    flaky: Path, stalling: Path, index: Path, tmp_path: Path
) -> None:
    gone = project(tmp_path / "gone", "", PROGRAM + SMALL + "sweep: {name: gone}\n")
    assert cli(gone, index, "sweep", "--dry-run").returncode == 0
    result = cli(gone, index, "sweep", "+resources.sbatch.hold=true")
    assert result.returncode == 0, result.stderr
    cancel_all(gone / "sweeps" / "gone")
    (gone / "sweeps" / "gone" / "manifest.json").unlink()  # the user removed it

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = cli(elsewhere, index, "list")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "flaky" in out and str(flaky) in out and "missing (moved or deleted)" in out
    assert out.index("gone") < out.index("flaky")  # newest first
    under = cli(elsewhere, index, "list", str(flaky.parent))
    assert "flaky" in under.stdout and "gone" not in under.stdout
    nothing = cli(elsewhere, index, "list", str(elsewhere))
    assert nothing.returncode == 1 and "no sweeps under" in nothing.stderr


def test_logs_follow_a_running_run_to_its_end(index: Path, tmp_path: Path) -> None:
    config = "program: {script: train.py, args: ['12']}\n" + SMALL + "sweep: {name: ticks}\n"
    root = project(tmp_path, TICKS, config)
    assert cli(root, index, "sweep").returncode == 0
    sweep_dir = root / "sweeps" / "ticks"
    wait_for(sweep_dir, lambda s: set(s.values()) == {"RUNNING"}, timeout=120)
    (run,) = load(sweep_dir).runs
    log = sweep_dir / "runs" / run.run_id / "logs" / "node0" / "workerlog.0"
    deadline = time.monotonic() + 60
    while "tick 1" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "no tick in the worker log"
        time.sleep(0.5)
    followed = cli(root, index, "logs", str(sweep_dir), run.run_id[:5], "-f", timeout=120)
    assert followed.returncode == 0, followed.stderr
    assert "global rank 0" in followed.stdout and "tick 11" in followed.stdout
    assert followed.stdout.rstrip().endswith("last line")
    assert task_states(sweep_dir)[run.run_id] == "COMPLETED"
    tail = cli(root, index, "logs", str(sweep_dir), run.job, "-n", "1")
    assert tail.stdout.splitlines()[1:] == ["last line"]
    err = cli(root, index, "logs", str(sweep_dir), run.run_id, "--out")
    assert err.returncode == 0 and "_0_log.out" in err.stdout


def test_cancel_two_runs_leaves_the_others_running(index: Path, tmp_path: Path) -> None:
    config = PROGRAM + SMALL + "sweep: {name: long, max_parallel: 4}\n"
    root = project(tmp_path, "import time\ntime.sleep(600)\n", config)
    assert cli(root, index, "sweep", "+x=1,2,3,4").returncode == 0
    sweep_dir = root / "sweeps" / "long"
    try:
        runs = load(sweep_dir).runs
        training = [sweep_dir / "runs" / r.run_id / "logs/node0/workerlog.0" for r in runs]
        wait_for(sweep_dir, lambda s: all(log.exists() for log in training), timeout=120)
        result = cli(root, index, "cancel", str(sweep_dir), runs[0].run_id, runs[2].job)
        assert result.returncode == 0, result.stderr
        assert "cancelled 2 run(s)" in result.stdout
        states = wait_for(
            sweep_dir, lambda s: s[runs[0].run_id] == s[runs[2].run_id] == "CANCELLED"
        )
        assert states[runs[1].run_id] == states[runs[3].run_id] == "RUNNING"
        again = cli(root, index, "cancel", str(sweep_dir), runs[0].run_id)
        assert again.returncode == 1 and "nothing to cancel" in again.stderr
        status = cli(root, index, "status", str(sweep_dir))
        assert "CANCELLED 2" in status.stdout and "RUNNING 2" in status.stdout
        rest = cli(root, index, "cancel", str(sweep_dir), "--state", "RUNNING")
        assert "cancelled 2 run(s)" in rest.stdout
        wait_for(sweep_dir, lambda s: set(s.values()) == {"CANCELLED"})
        assert_nothing_left(str(root / "train.py"), tuple(r.job for r in runs))
        for run in runs:  # and each run's own state is final
            state = json.loads((sweep_dir / "runs" / run.run_id / "state.json").read_text())
            assert state["state"] == "CANCELLED" and state["reason"] == "stopped by SIGTERM"
    finally:
        cancel_all(sweep_dir)


def test_retry_by_hand_resubmits_once(index: Path, tmp_path: Path) -> None:
    root = project(tmp_path, BROKEN, PROGRAM + SMALL + "sweep: {name: broken}\n")
    failed = cli(root, index, "sweep", "--follow")
    assert failed.returncode == 1 and "FAILED 1" in failed.stdout, failed.stdout + failed.stderr
    sweep_dir = root / "sweeps" / "broken"
    (run,) = load(sweep_dir).runs
    first_job = run.job
    run_dir = sweep_dir / "runs" / run.run_id
    shown = cli(root, index, "logs", str(sweep_dir), run.run_id)
    assert "the rank that failed" in shown.stdout and "not fixed yet" in shown.stdout

    (run_dir / "fixed").write_text("")
    retried = cli(root, index, "retry", str(sweep_dir))
    assert retried.returncode == 0 and "retrying 1 run(s)" in retried.stdout, retried.stderr
    again = cli(root, index, "retry", str(sweep_dir), run.run_id)
    assert again.returncode == 1 and "nothing to retry" in again.stderr
    wait_for(sweep_dir, lambda s: set(s.values()) == {"COMPLETED"})

    manifest = load(sweep_dir)
    (run,) = manifest.runs
    assert run.attempt == 2 and len(manifest.arrays) == 2 and run.job != first_job
    assert [(s.job_id, s.state) for s in run.submissions] == [(manifest.arrays[0].job_id, "FAILED")]
    assert "not fixed yet" in (run_dir / "attempts/1/logs/node0/workerlog.0").read_text()
    assert "fixed, done" in (run_dir / "logs/node0/workerlog.0").read_text()
    assert json.loads((run_dir / "attempts/1/state.json").read_text())["state"] == "FAILED"
    runs = load_tables(sweep_dir).runs
    assert runs.loc[run.run_id, "state"] == "COMPLETED"
    assert runs.loc[run.run_id, "attempts"] == 2
    earlier = cli(root, index, "logs", str(sweep_dir), first_job, "--attempt", "1")
    assert "not fixed yet" in earlier.stdout

    cleaned = cli(root, index, "clean", str(sweep_dir))
    assert cleaned.returncode == 0 and "archived" in cleaned.stdout, cleaned.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "attempts",
        "collected-node0.arrow",
        "config.yaml",
        "fixed",
        "logs.zip",
        "state.json",
    ]
    assert not (run_dir / "attempts/1/logs").exists()
    assert not list((sweep_dir / "slurm").glob("*.pkl"))
    assert not list((sweep_dir / "slurm").glob("*_log.*"))
    tail = cli(root, index, "logs", str(sweep_dir), run.run_id, "-n", "1")
    assert "fixed, done" in tail.stdout
    earlier = cli(root, index, "logs", str(sweep_dir), run.run_id, "--attempt", "1")
    assert "not fixed yet" in earlier.stdout, earlier.stdout + earlier.stderr
    assert load_tables(sweep_dir).runs.loc[run.run_id, "attempts"] == 2
    report = cli(root, index, "report", str(sweep_dir))
    assert report.returncode == 0, report.stderr

    # a cleaned run retried: its new attempt writes logs/ again, the archive keeps the rest
    assert cli(root, index, "retry", str(sweep_dir), "--state", "COMPLETED").returncode == 0
    wait_for(
        sweep_dir,
        lambda s: set(s.values()) == {"COMPLETED"} and load(sweep_dir).runs[0].attempt == 3,
    )
    assert "fixed, done" in (run_dir / "logs/node0/workerlog.0").read_text()
    second = cli(root, index, "logs", str(sweep_dir), run.run_id, "--attempt", "2")
    assert "fixed, done" in second.stdout, second.stdout + second.stderr
    assert load_tables(sweep_dir).runs.loc[run.run_id, "attempts"] == 3


def test_a_wider_grid_submits_only_the_new_points(index: Path, tmp_path: Path) -> None:
    config = PROGRAM + "resources: {time: UNLIMITED, sbatch: {hold: true}}\n"
    config += "sweep: {name: wide}\nseed: 0\n"
    root = project(tmp_path, "", config)
    sweep_dir = root / "sweeps" / "wide"
    try:
        first = cli(root, index, "sweep", "+a=1,2", "+b=1,2")
        assert first.returncode == 0, first.stderr
        wider = cli(root, index, "sweep", "+a=1,2,3", "+b=1,2")
        assert wider.returncode == 0, wider.stderr
        assert "2 new point(s), 4 already in" in wider.stdout
        manifest = load(sweep_dir)
        assert [len(a.run_ids) for a in manifest.arrays] == [4, 2] and len(manifest.runs) == 6
        limits = subprocess.run(
            ["squeue", "-h", "-o", "%l", "-j", str(manifest.arrays[1].job_id)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert limits.stdout.split() == ["UNLIMITED"]  # resources.time as sbatch took it
        same = cli(root, index, "sweep", "+a=1,2,3", "+b=1,2")
        assert same.returncode == 0 and "nothing new to submit" in same.stdout
        assert len(load(sweep_dir).arrays) == 2

        text = (root / "conf" / "config.yaml").read_text().replace("seed: 0", "seed: 1")
        (root / "conf" / "config.yaml").write_text(text)
        changed = cli(root, index, "sweep", "+a=1,2,3,4", "+b=1,2")
        assert changed.returncode == 1 and "at seed:" in changed.stderr
        assert len(load(sweep_dir).arrays) == 2
        allowed = cli(root, index, "sweep", "--allow-config-change", "+a=1,2,3,4", "+b=1,2")
        assert allowed.returncode == 0 and "2 new point(s), 6 already" in allowed.stdout
    finally:
        cancel_all(sweep_dir)


def test_an_automatic_retry_completes_the_run(flaky: Path, index: Path) -> None:
    # submitted at the start of the module; nothing of paddle_hpc has run here since
    states = wait_for(flaky, lambda s: set(s.values()) == {"COMPLETED"}, timeout=420)
    (run,) = load(flaky).runs
    assert states == {run.run_id: "COMPLETED"}
    run_dir = flaky / "runs" / run.run_id
    assert "first attempt fails" in (run_dir / "attempts/1/logs/node0/workerlog.0").read_text()
    assert json.loads((run_dir / "attempts/1/state.json").read_text())["retrying"] is True
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["state"], state["attempt"], state["restarts"]) == ("COMPLETED", 2, 1)
    runs = load_tables(flaky).runs
    assert runs.loc[run.run_id, "attempts"] == 2 and runs.loc[run.run_id, "final.acc"] == 1.0
    assert runs.loc[run.run_id, "history"] == "FAILED" and state["history"] == ["FAILED"]
    assert len(load(flaky).arrays) == 1  # requeued, not resubmitted


def test_a_stalled_run_is_stopped_and_completes_on_its_retry(stalling: Path, index: Path) -> None:
    (run,) = load(stalling).runs
    run_dir = stalling / "runs" / run.run_id
    assert wait_for(stalling, lambda s: s[run.run_id] == "FAILED") == {run.run_id: "FAILED"}
    state = json.loads((run_dir / "state.json").read_text())
    assert state["state"] == "FAILED" and state["retrying"] is False  # no retries asked for
    assert state["reason"].startswith(f"STALLED: no output for {STALL_TIMEOUT} s; the last at ")
    last = datetime.fromisoformat(state["reason"].rsplit(" ", 1)[1])
    stopped = datetime.fromisoformat(state["time"])
    assert STALL_TIMEOUT <= (stopped - last).total_seconds() <= STALL_TIMEOUT + 30
    logs = [(run_dir / "logs" / f"node{n}" / "workerlog.0").read_text() for n in (0, 1)]
    assert all("epoch 1" in log and "epoch 2" not in log for log in logs)
    assert_nothing_left(str(stalling.parent.parent / "train.py"), (state["job"],))

    status = cli(stalling.parent.parent, index, "status", str(stalling))
    assert "STALLED: no output for 15 s" in status.stdout, status.stdout
    tables = load_tables(stalling)
    assert tables.errors["kind"].tolist() == ["STALLED"]
    assert tables.errors["tail"][0].splitlines()[-1] == "epoch 1"  # where it went quiet
    assert str(tables.runs.loc[run.run_id, "reason"]).startswith("STALLED")

    retried = cli(stalling.parent.parent, index, "retry", str(stalling))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    wait_for(stalling, lambda s: s[run.run_id] == "COMPLETED")
    runs = load_tables(stalling).runs
    assert runs.loc[run.run_id, "attempts"] == 2 and runs.loc[run.run_id, "final.loss"] == 1 / 3
    assert pd.isna(runs.loc[run.run_id, "reason"])
    assert runs.loc[run.run_id, "history"] == "STALLED"


def test_concurrent_retries_and_extensions_lose_no_submission(index: Path, tmp_path: Path) -> None:
    """Four `retry` and four wider `sweep` commands at once on one sweep: every array
    Slurm got is in the manifest, and each run's next attempt is submitted once."""
    name = f"race{os.getpid()}"
    config = PROGRAM + "resources: {time: UNLIMITED, sbatch: {hold: true}}\n"
    root = project(tmp_path, "", config + f"sweep: {{name: {name}}}\n")
    sweep_dir = root / "sweeps" / name
    try:
        assert cli(root, index, "sweep", "+a=1,2,3,4").returncode == 0
        cancel_all(sweep_dir)
        wait_for(sweep_dir, lambda s: set(s.values()) == {"CANCELLED"}, timeout=60)
        env = {**os.environ, "PADDLE_HPC_INDEX": str(index)}
        commands = [["retry", str(sweep_dir), "--state", "CANCELLED"] for _ in range(4)] + [
            ["sweep", f"+a={','.join(map(str, range(1, 6 + k)))}"] for k in range(4)
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "paddle_hpc.cli", *c],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in commands
        ]
        said = [p.communicate(timeout=300) for p in procs]
        for proc, (out, err) in zip(procs[:4], said[:4], strict=True):
            assert proc.returncode == 0 or "nothing to retry" in err, (out, err)
        for proc, (out, err) in zip(procs[4:], said[4:], strict=True):
            assert proc.returncode == 0, (out, err)
        tracks_every_array(sweep_dir, name)
        manifest = load(sweep_dir)
        assert sorted(r.swept["+a"] for r in manifest.runs) == [str(a) for a in range(1, 9)]
        assert len({r.job for r in manifest.runs}) == len(manifest.runs)  # a task per run
        # each cancelled run was retried once, whichever retry command marked it
        first = [r for r in manifest.runs if int(r.swept["+a"]) <= 4]
        assert all(len(r.submissions) == 1 and r.attempt == 2 for r in first), first
        counts = [re.search(r"retrying (\d+) run", out) for out, _ in said[:4]]
        assert sum(int(m.group(1)) for m in counts if m) == 4, said[:4]
    finally:  # by name too: what a lost submission left in the queue
        subprocess.run(["scancel", "--name", name], check=False)
