"""The node runner's watchdog (launch.stall_timeout) with real processes and files, and
the state a stalled run is left in."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.ending import stalled_state
from paddle_hpc.node.watchdog import Watchdog, last_output


def test_the_watchdog_stops_a_silent_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    (run.logs / "node1").mkdir(parents=True)
    log = run.logs / "node1" / "workerlog.0"
    log.write_text("epoch 0\n")
    quiet = subprocess.Popen(["sleep", "600"], start_new_session=True)
    seen: list[float] = []
    watchdog = Watchdog(run, 2, quiet.pid, seen.append)
    started = time.monotonic()
    watchdog.start()
    try:
        assert quiet.wait(timeout=30) != 0  # stopped: SIGTERM to its group
    finally:
        quiet.kill()
    assert 2 <= time.monotonic() - started <= 10
    assert watchdog.stalled == seen[0] and seen[0] >= log.stat().st_mtime


def test_output_keeps_the_watchdog_away(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    run.path.mkdir(parents=True)
    busy = subprocess.Popen(["sleep", "600"], start_new_session=True)
    watchdog = Watchdog(run, 2, busy.pid, lambda last: None)
    watchdog.start()
    try:
        for step in range(8):  # writes every half second for four seconds
            with run.metrics.open("a") as handle:
                handle.write(f'{{"step": {step}}}\n')
            time.sleep(0.5)
        assert busy.poll() is None and watchdog.stalled is None
        assert last_output(run, 0.0) == run.metrics.stat().st_mtime
    finally:
        watchdog.stop()
        busy.kill()
        busy.wait()


def test_a_stalled_state_says_when_and_whether_it_retries() -> None:
    base = RunState("RUNNING", attempt=1, job="12_3", restarts=0)
    config = RunConfig.of({"sweep": {"max_retries": 1}})
    state = stalled_state(base, config, 600, 1_800_000_000.0)
    assert state.state == "FAILED" and state.retrying is True
    assert state.reason == "STALLED: no output for 600 s; the last at 2027-01-15T08:00:00+00:00"
    assert stalled_state(replace(base, restarts=1), config, 600, 0.0).retrying is False
    assert stalled_state(replace(base, job=None), config, 600, 0.0).retrying is False  # local
