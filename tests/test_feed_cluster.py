"""A sweep larger than the user's queue cap, fed as the queue has room, on the test
cluster: slurm/up's QOS `capped` lets a user queue CAP jobs (MaxSubmitJobsPerUser)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from paddle_hpc.backend.feed import POLL_S
from paddle_hpc.core.manifest import load
from tests.test_sweep_cluster import run_module, sweep, write_conf

CAP = 10  # slurm/up's QOS capped
RUNS = 40  # fed once before its feeder is killed, and still past the cap when it resumes


def capped_jobs() -> int:
    out = subprocess.run(
        ["squeue", "--me", "-h", "--array", "-q", "capped", "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def feeder_pid(sweep_dir: Path) -> int | None:
    text = (
        (sweep_dir / "feed.lock").read_text().strip() if (sweep_dir / "feed.lock").exists() else ""
    )
    pid = int(text) if text.isdigit() else None
    if pid is None or subprocess.run(["kill", "-0", str(pid)], check=False).returncode:
        return None
    return pid


def status(sweep_dir: Path) -> str:
    out = run_module("paddle_hpc.status", str(sweep_dir))
    return out.stdout + out.stderr


@pytest.mark.slurm
def test_a_sweep_past_the_queue_cap_is_fed_and_a_killed_feeder_resumes(tmp_path: Path) -> None:
    (tmp_path / "noop.py").write_text("")
    write_conf(
        tmp_path,
        "program: {script: noop.py}\n"
        f"sweep: {{name: fed, max_parallel: {RUNS}}}\n"
        "resources: {qos: capped}\n",
    )
    most, stop = [0], threading.Event()

    def sample() -> None:  # the queue, while the sweep is fed
        while not stop.is_set():
            most[0] = max(most[0], capped_jobs())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sweep_dir = tmp_path / "sweeps" / "fed"
    try:
        first = sweep(tmp_path, f"+x=range(0,{RUNS})")
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"submitted {CAP} runs" in first.stdout
        assert f"{RUNS - CAP} run(s) wait for room in the queue" in first.stdout
        assert f"MaxSubmitJobsPerUser={CAP} of QOS capped" in first.stdout
        assert "WAITING" in status(sweep_dir)

        pid = None
        deadline = time.monotonic() + 60
        while (
            pid is None and time.monotonic() < deadline
        ):  # it writes its pid once it holds the lock
            pid = feeder_pid(sweep_dir)
            time.sleep(0.2)
        assert pid is not None
        while len(load(sweep_dir).arrays) < 2:  # it has fed once
            assert time.monotonic() < deadline + 120, "the feeder submitted nothing"
            time.sleep(1)
        os.kill(pid, signal.SIGKILL)
        while feeder_pid(sweep_dir) is not None:
            time.sleep(0.2)
        stopped = load(sweep_dir)
        assert stopped.feed is not None and stopped.feed.run_ids
        assert "its feeder is not running" in status(sweep_dir)
        while capped_jobs():  # nothing feeds the queue now
            time.sleep(1)
        assert load(sweep_dir).feed == stopped.feed

        again = sweep(tmp_path, f"+x=range(0,{RUNS})", "-f")  # the same command resumes it
        assert again.returncode == 0, again.stdout + again.stderr
        assert "wait for room in the queue" in again.stdout or "submitted" in again.stdout
        deadline = time.monotonic() + POLL_S + 20
        while feeder_pid(sweep_dir) is not None:  # it ends once every run is submitted
            assert time.monotonic() < deadline, "the feeder runs on with nothing to feed"
            time.sleep(0.5)
    finally:
        stop.set()
        sampler.join()
        pid = feeder_pid(sweep_dir) if sweep_dir.exists() else None
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
    manifest = load(sweep_dir)
    assert manifest.feed is None
    assert f"COMPLETED {RUNS})" in again.stdout
    assert {r.attempt for r in manifest.runs} == {1}
    assert sum(len(a.run_ids) for a in manifest.arrays) == RUNS
    assert most[0] == CAP  # kept full, never past the cap
    log = (sweep_dir / "feed.log").read_text()
    assert "every run of the sweep is submitted" in log
    assert "full after all" not in log and "failed" not in log
