"""A sweep's life with cluster.executor=local: the same verbs, runs in this machine's
processes (each run one paddle.distributed.launch here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from tests.test_lifecycle_cluster import BROKEN, FLAKY, PROGRAM, project
from tests.test_lifecycle_cluster import cli as cluster_cli

LOCAL = "cluster: {executor: local}\nresources: {nodes: 1}\n"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster_cli(cwd, cwd / "index.jsonl", *args)


def test_automatic_retry_then_manual_retry_then_extend(tmp_path: Path) -> None:
    root = project(tmp_path, FLAKY, PROGRAM + LOCAL + "sweep: {name: flaky, max_retries: 1}\n")
    result = cli(root, "sweep", "+x=1")
    assert result.returncode == 0 and "COMPLETED 1" in result.stdout, result.stdout + result.stderr
    sweep_dir = root / "sweeps" / "flaky"
    (run,) = load(sweep_dir).runs
    run_dir = sweep_dir / "runs" / run.run_id
    assert "first attempt fails" in (run_dir / "attempts/1/logs/node0/workerlog.0").read_text()
    assert json.loads((run_dir / "state.json").read_text())["attempt"] == 2
    assert load_tables(sweep_dir).runs.loc[run.run_id, "attempts"] == 2

    # a second point, added by running the command again with a wider grid
    wider = cli(root, "sweep", "+x=1,2")
    assert "1 new point(s), 1 already" in wider.stdout and "COMPLETED 2" in wider.stdout
    again = cli(root, "sweep", "+x=1,2")
    assert again.returncode == 0 and "nothing new to submit" in again.stdout
    assert "flaky" in cli(tmp_path, "list").stdout


def test_retry_by_hand_and_nothing_more(tmp_path: Path) -> None:
    root = project(tmp_path, BROKEN, PROGRAM + LOCAL + "sweep: {name: broken}\n")
    failed = cli(root, "sweep")
    assert failed.returncode == 1 and "FAILED 1" in failed.stdout, failed.stdout + failed.stderr
    sweep_dir = root / "sweeps" / "broken"
    (run,) = load(sweep_dir).runs
    shown = cli(root, "logs", str(sweep_dir), run.run_id[:4])
    assert "the rank that failed" in shown.stdout and "not fixed yet" in shown.stdout
    (sweep_dir / "runs" / run.run_id / "fixed").write_text("")
    retried = cli(root, "retry", str(sweep_dir))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    status = cli(root, "status", str(sweep_dir))
    assert "COMPLETED 1" in status.stdout and status.returncode == 0
    assert load(sweep_dir).run(run.run_id).attempt == 2
    again = cli(root, "retry", str(sweep_dir))
    assert again.returncode == 1 and "nothing to retry" in again.stderr
    cleaned = cli(root, "clean", str(sweep_dir))
    assert cleaned.returncode == 0, cleaned.stderr
    run_dir = sweep_dir / "runs" / run.run_id
    assert (run_dir / "logs.zip").exists() and not (run_dir / "logs").exists()
    assert "fixed, done" in cli(root, "logs", str(sweep_dir), run.run_id).stdout
    earlier = cli(root, "logs", str(sweep_dir), run.run_id, "--attempt", "1")
    assert "not fixed yet" in earlier.stdout, earlier.stdout + earlier.stderr


STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('working', flush=True)\n"
    "time.sleep(600)\n"
)


def started(root: Path, name: str, *overrides: str) -> tuple[subprocess.Popen[str], Path]:
    """A local sweep in the background, once its first run is RUNNING."""
    env = {**os.environ, "PADDLE_HPC_INDEX": str(root / "index.jsonl")}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "paddle_hpc.sweep", *overrides],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sweep_dir = root / "sweeps" / name
    deadline = time.monotonic() + 90
    while "RUNNING 1" not in cli(root, "status", str(sweep_dir), "--all").stdout:
        assert time.monotonic() < deadline and sweep.poll() is None, "the run never started"
        time.sleep(0.5)
    return sweep, sweep_dir


def gone(script: Path, within: float) -> bool:
    """Whether no process of the script (launcher or worker) is left within `within` s."""
    deadline = time.monotonic() + within
    while subprocess.run(["pgrep", "-f", str(script)], check=False).returncode == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_cancel_stops_a_running_local_run_and_skips_the_next(tmp_path: Path) -> None:
    root = project(
        tmp_path, "import time\ntime.sleep(600)\n", PROGRAM + LOCAL + "sweep: {name: long}\n"
    )
    sweep, sweep_dir = started(root, "long", "+x=1,2")
    try:
        runs = load(sweep_dir).runs
        assert cli(root, "cancel", str(sweep_dir), "--state", "PENDING").returncode == 0
        cancelled = cli(root, "cancel", str(sweep_dir), runs[0].run_id)
        assert cancelled.returncode == 0, cancelled.stderr
        out, _ = sweep.communicate(timeout=90)
        assert "cancelled before it started" in out
        status = cli(root, "status", str(sweep_dir))
        assert "CANCELLED 2" in status.stdout, status.stdout
        assert gone(root / "train.py", 0), "a training process outlived its cancelled run"
    finally:
        sweep.kill()


def test_cancel_ends_a_run_that_ignores_sigterm(tmp_path: Path) -> None:
    root = project(tmp_path, STUBBORN, PROGRAM + LOCAL + "sweep: {name: stubborn}\n")
    sweep, sweep_dir = started(root, "stubborn", "+x=1")
    try:
        (run,) = load(sweep_dir).runs
        assert cli(root, "cancel", str(sweep_dir), run.run_id).returncode == 0
        sweep.communicate(timeout=90)
        assert gone(root / "train.py", 30), "a process of the cancelled run is left"
        state = json.loads((sweep_dir / "runs" / run.run_id / "state.json").read_text())
        assert state["state"] == "CANCELLED", state
    finally:
        sweep.kill()


def test_a_killed_sweep_leaves_no_training_process(tmp_path: Path) -> None:
    root = project(
        tmp_path, "import time\ntime.sleep(600)\n", PROGRAM + LOCAL + "sweep: {name: killed}\n"
    )
    sweep, sweep_dir = started(root, "killed", "+x=1")
    sweep.kill()
    sweep.communicate(timeout=30)
    assert gone(root / "train.py", 45), "the launcher outlived its killed node runner"
    status = cli(root, "status", str(sweep_dir))
    assert "FAILED 1" in status.stdout and "its process is gone" in status.stdout, status.stdout
