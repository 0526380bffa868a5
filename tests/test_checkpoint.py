"""paddle_hpc.checkpoint with real Paddle state dicts, and the node runner's part of a
stop: TIMEOUT or PREEMPTED, a checkpoint saved since, the metrics carried over."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_hpc import checkpoint
from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.attempts import carry_metrics, ended_as
from paddle_hpc.node.ending import (
    LIMIT_SLACK_S,
    WarnedEnd,
    ended_after_warning,
    launcher_ended,
    limit_at,
    saved_since,
    stopped_state,
    warning_reason,
)
from paddle_hpc.node.launch import NodeLaunch
from paddle_hpc.node.signals import Signals, Stop


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    return tmp_path


def model_and_optimizer(seed: int) -> tuple[paddle.nn.Linear, paddle.optimizer.Adam]:
    """As a new process makes them: the same parameter names each time."""
    paddle.seed(seed)
    with paddle.utils.unique_name.guard():
        model = paddle.nn.Linear(3, 2)
        optimizer = paddle.optimizer.Adam(learning_rate=0.1, parameters=model.parameters())
        model(paddle.ones([4, 3])).sum().backward()
        optimizer.step()  # optimizer state worth keeping
    return model, optimizer


def test_save_and_load_round_trip(run_dir: Path) -> None:
    assert checkpoint.load() is None and checkpoint.latest() is None
    model, optimizer = model_and_optimizer(1)
    path = checkpoint.save(7, model=model, optimizer=optimizer, extra={"epoch": 7, "rng": [1]})
    assert path == run_dir / "checkpoints" / "step-7"
    other, other_optimizer = model_and_optimizer(2)
    found = checkpoint.load(model=other, optimizer=other_optimizer)
    assert found is not None and (found.step, found.extra) == (7, {"epoch": 7, "rng": [1]})
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), other.state_dict()[name].numpy())
    for name, value in optimizer.state_dict().items():
        if hasattr(value, "numpy"):
            np.testing.assert_array_equal(value.numpy(), other_optimizer.state_dict()[name].numpy())


def test_the_newest_whole_ones_are_kept(run_dir: Path) -> None:
    for step in (1, 2, 10, 3):
        checkpoint.save(step, extra={"n": step}, keep=2)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-10", "step-3"]
    (run_dir / "checkpoints" / ".partial-step-11").mkdir()  # a save stopped halfway
    (run_dir / "checkpoints" / "step-12").mkdir()  # no state.json: not whole
    found = checkpoint.latest()
    assert found is not None and found.step == 10 and found.extra == {"n": 10}


def test_only_rank_0_writes(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    assert checkpoint.save(1) is None and not (run_dir / "checkpoints").exists()


def test_should_stop_follows_the_stop_request(run_dir: Path) -> None:
    assert not checkpoint.should_stop()
    (run_dir / "stop.json").write_text('{"reason": "PREEMPTED"}')
    assert checkpoint.should_stop()


def test_told_reason() -> None:
    config = RunConfig.of({"resources": {"time": "10", "signal_before": 90}})
    started = 1000.0
    assert warning_reason(started, config, started + 600 - 90) == "TIMEOUT"
    assert warning_reason(started, config, started + 600 - 140) == "TIMEOUT"  # a minute's slack
    assert warning_reason(started, config, started + 60) == "PREEMPTED"
    unlimited = RunConfig.of({"resources": {"time": "UNLIMITED"}})
    assert warning_reason(started, unlimited, started + 10**6) == "PREEMPTED"


def test_slurms_stop_signal_stays_said_for_listeners_that_come_later() -> None:
    """Slurm sends USR2 up to a minute early: it can come while the task starts, before
    the run's listener exists. Real signals, to this process."""
    signals = Signals()
    assert signals.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        assert signals.warned
        heard: list[int] = []
        signals.add(heard.append)
        assert heard == [signal.SIGUSR2]
        os.kill(os.getpid(), signal.SIGTERM)
        assert heard == [signal.SIGUSR2, signal.SIGTERM]
        later: list[int] = []
        signals.add(later.append)  # a packed trial starting now: told too, not stopped
        assert later == [signal.SIGUSR2]
    finally:
        signals.uninstall()
    assert not signals.warned
    quiet = Signals()
    assert quiet.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # no listener yet: nothing is kept of it
        heard = []
        quiet.add(heard.append)
        assert heard == [] and not quiet.warned
    finally:
        quiet.uninstall()


def test_a_sigterm_at_the_time_limit_without_slurms_signal_is_a_timeout() -> None:
    config = RunConfig.of({"resources": {"time": "1"}})
    assert limit_at(1000.0, config) == 1000.0 + 60 - LIMIT_SLACK_S
    assert limit_at(None, config) is None  # not in Slurm
    assert limit_at(1000.0, RunConfig.of({"resources": {"time": "UNLIMITED"}})) is None
    stopped: list[int] = []
    late = Stop(stopped=stopped.append, limit_at=time.time() - 1)
    late.on_signal(signal.SIGTERM)
    assert late.warning == "TIMEOUT" and stopped == [signal.SIGTERM]
    base = RunState("RUNNING", attempt=1, job="7_0")
    assert stopped_state(base, signal.SIGTERM, late.warning, config).reason == (
        "TIMEOUT: stopped by SIGTERM before it exited; no checkpoint saved in this attempt "
        "(paddle_hpc.checkpoint)"
    )
    for stop, signum in (
        (Stop(limit_at=time.time() + 60), signal.SIGTERM),  # scancel before the limit
        (Stop(limit_at=None), signal.SIGTERM),  # no limit
        (Stop(limit_at=time.time() - 1), signal.SIGINT),  # Ctrl-C
    ):
        stop.on_signal(signum)
        assert stop.warning is None and stop.signal == signum


def test_the_state_of_a_stopped_attempt() -> None:
    config = RunConfig.of({"sweep": {"max_retries": 0, "max_requeues": 2}})
    base = RunState("RUNNING", attempt=1, job="7_0", restarts=1)
    cancelled = stopped_state(base, signal.SIGTERM, None, config)
    assert (cancelled.state, cancelled.reason, cancelled.retrying) == (
        "CANCELLED",
        "stopped by SIGTERM",
        False,
    )
    preempted = stopped_state(base, signal.SIGTERM, "PREEMPTED", config)
    assert preempted.state == "PREEMPTED" and preempted.retrying
    assert preempted.reason == (
        "PREEMPTED: stopped by SIGTERM before it exited; no checkpoint saved in this attempt "
        "(paddle_hpc.checkpoint); Slurm requeues it"
    )
    spent = RunState("RUNNING", job="7_0", restarts=2)
    last = stopped_state(spent, signal.SIGTERM, "PREEMPTED", config, saved=40)
    assert not last.retrying
    assert last.reason == "PREEMPTED: stopped by SIGTERM before it exited; it had saved step 40"
    timeout = stopped_state(base, signal.SIGTERM, "TIMEOUT", config)
    assert timeout.state == "TIMEOUT" and not timeout.retrying
    assert "no checkpoint saved" in timeout.reason  # said now: KillWait may end us next
    local = stopped_state(RunState("RUNNING"), signal.SIGINT, "PREEMPTED", config)
    assert not local.retrying and local.reason.startswith("PREEMPTED: stopped by SIGINT")


@pytest.mark.parametrize("told", ["TIMEOUT", "PREEMPTED"])
@pytest.mark.parametrize("saved", [None, 3])
def test_a_stopped_end_is_what_the_signal_said(run_dir: Path, told: str, saved: int | None) -> None:
    """After the launcher was stopped by SIGTERM, node 0's last word on the attempt is
    the state it wrote when the signal came: Slurm's KillWait may have ended it first."""
    run = RunDir(run_dir)
    config = RunConfig.of({"sweep": {"max_requeues": 2}})
    base = RunState("RUNNING", attempt=1, job="7_0")
    started = time.time()
    if saved is not None:
        checkpoint.save(saved)
    at_signal = stopped_state(base, signal.SIGTERM, told, config, saved_since(run, started))
    node0 = NodeLaunch((), {}, "cpu", "127.0.0.1:1", 0, 2, 2, run_dir / "logs")
    end = WarnedEnd(told, signal.SIGTERM, started)
    with pytest.raises(PaddleHpcError, match="stopped by SIGTERM before it exited"):
        ended_after_warning(run, node0, base, -15, end, config, lambda job: None)
    ended = runstate.read(run.state)
    assert ended is not None
    assert (ended.state, ended.reason, ended.retrying, ended.returncode) == (
        at_signal.state,
        at_signal.reason,
        at_signal.retrying,
        -15,
    )


def test_a_node_that_fails_after_node_0_completed_fails_the_attempt(run_dir: Path) -> None:
    """Node 0's COMPLETED speaks for its own ranks: node 1's launcher failing later
    (its ranks lost node 0's store as they started) leaves the attempt FAILED, as
    Slurm's task is; a node stopped by srun after another failed is no news."""
    run = RunDir(run_dir)
    config = RunConfig.of({})
    base = RunState("RUNNING", attempt=1, job="7_0")
    node0 = NodeLaunch((), {}, "cpu", "127.0.0.1:1", 0, 2, 2, run_dir / "logs" / "node0")
    node1 = replace(node0, node_rank=1, log_dir=run_dir / "logs" / "node1")
    assert launcher_ended(run, node0, base, 0, None, config, lambda job: None) == 0
    with pytest.raises(PaddleHpcError, match="exited with code 241 on node 1"):
        launcher_ended(run, node1, base, 241, None, config, lambda job: None)
    ended = runstate.read(run.state)
    assert ended is not None and (ended.state, ended.returncode) == ("FAILED", 241)

    with pytest.raises(PaddleHpcError, match="on node 0"):  # srun ends node 0 after it
        launcher_ended(run, node0, base, -15, None, config, lambda job: None)
    again = runstate.read(run.state)
    assert again is not None and (again.state, again.returncode) == ("FAILED", 241)


def test_a_cancel_between_a_nodes_read_and_write_stands_and_stops_the_retry(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cancel` says CANCELLED just after a failing node has read the state file: the
    node's FAILED does not overwrite it, and the node does not requeue the task."""
    run = RunDir(run_dir)
    config = RunConfig.of({"sweep": {"max_retries": 2}})
    base = RunState("RUNNING", attempt=1, job="7_0")
    runstate.write(run.state, base)
    node1 = NodeLaunch((), {}, "cpu", "127.0.0.1:1", 1, 2, 2, run_dir / "logs" / "node1")
    real_read = runstate.read

    def read_then_cancel(path: Path) -> RunState | None:
        seen = real_read(path)
        monkeypatch.setattr(runstate, "read", real_read)
        assert runstate.stop(path, 1, "7_0", "CANCELLED", None) is not None
        return seen

    monkeypatch.setattr(runstate, "read", read_then_cancel)
    requeued: list[str] = []
    with pytest.raises(PaddleHpcError, match="exited with code 1 on node 1"):
        launcher_ended(run, node1, base, 1, None, config, requeued.append)
    ended = real_read(run.state)
    assert ended is not None and ended.state == "CANCELLED" and requeued == []


def test_a_checkpoint_saved_since(run_dir: Path) -> None:
    run = RunDir(run_dir)
    checkpoint.save(4)
    saved = (run_dir / "checkpoints" / "step-4" / "state.json").stat().st_mtime
    assert saved_since(run, saved - 0.5) == 4
    assert saved_since(run, saved + 60) is None
    os.utime(run_dir / "checkpoints" / "step-4" / "state.json", (0, 0))
    assert saved_since(run, time.time()) is None


def test_metrics_are_carried_over_up_to_the_checkpoint(tmp_path: Path) -> None:
    earlier = tmp_path / "attempts" / "1" / "metrics.jsonl"
    earlier.parent.mkdir(parents=True)
    rows = [{"step": s, "loss": 1 / (s + 1)} for s in range(5)]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "loss": 0.1'  # truncated
    earlier.write_text('{"loss": 3}\nnot json\n' + text)
    into = tmp_path / "metrics.jsonl"
    carry_metrics(earlier, into, 2)
    assert [json.loads(line) for line in into.read_text().splitlines()] == rows[:3]
    carry_metrics(tmp_path / "missing.jsonl", tmp_path / "other.jsonl", 2)
    assert not (tmp_path / "other.jsonl").exists()


def test_how_an_earlier_attempt_ended() -> None:
    asked: list[str] = []

    def slurm(job: str) -> str | None:
        asked.append(job)
        return {"7_0": "NODE_FAIL"}.get(job)

    assert ended_as(RunState("PREEMPTED", job="7_0"), "7_0", slurm) == "PREEMPTED"
    stalled = RunState("FAILED", job="7_0", reason="STALLED: no output for 60 s; the last at x")
    assert ended_as(stalled, "7_0", slurm) == "STALLED"
    retried = RunState("FAILED", reason="requeued for another attempt")
    assert ended_as(retried, None, slurm) == "FAILED"
    cancelled = RunState("CANCELLED", job="7_0", reason="stopped by SIGTERM")
    assert ended_as(cancelled, "9_0", slurm) == "CANCELLED"  # then `retry`: a new task
    assert asked == []  # a state that says how it ended is not second-guessed
    assert ended_as(cancelled, "7_0", slurm) == "NODE_FAIL"  # yet its task came back
    assert ended_as(RunState("RUNNING", job="7_0"), "7_0", slurm) == "NODE_FAIL"  # never said
    assert ended_as(RunState("RUNNING", job="8_0"), "8_0", slurm) == "UNKNOWN"
    assert ended_as(RunState("RUNNING"), None, slurm) == "UNKNOWN"  # local: no Slurm to ask
    assert asked == ["7_0", "7_0", "8_0"]


def test_a_state_file_with_a_history() -> None:
    state = runstate.parse('{"state": "RUNNING", "attempt": 3, "history": ["PREEMPTED", 7]}')
    assert state is not None and state.history == ("PREEMPTED", "7")
    ugly = runstate.parse('{"state": "RUNNING", "history": "PREEMPTED"}')
    assert ugly is not None and ugly.history == ()
