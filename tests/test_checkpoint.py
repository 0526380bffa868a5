"""paddle_hpc.checkpoint with real Paddle state dicts, and the node runner's part of a
stop: TIMEOUT or PREEMPTED, a checkpoint saved since, the metrics carried over."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_hpc import checkpoint
from paddle_hpc.layout import RunDir
from paddle_hpc.node import carry_metrics, saved_since, told_reason
from paddle_hpc.schema import RunConfig


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
    assert told_reason(started, config, started + 600 - 90) == "TIMEOUT"
    assert told_reason(started, config, started + 600 - 140) == "TIMEOUT"  # a minute's slack
    assert told_reason(started, config, started + 60) == "PREEMPTED"
    unlimited = RunConfig.of({"resources": {"time": "UNLIMITED"}})
    assert told_reason(started, unlimited, started + 10**6) == "PREEMPTED"


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
