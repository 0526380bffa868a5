"""The hapi callbacks with a real paddle.Model: a fit stopped by the stop request
resumes by itself and ends where an uninterrupted fit ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import pytest

from paddle_hpc.callback import CheckpointCallback, MetricsCallback

EPOCHS = 4


class AskToStop(paddle.callbacks.Callback):
    """Plays Slurm's part: the stop request arrives at the end of one epoch."""

    def __init__(self, run_dir: Path, after: int) -> None:
        super().__init__()
        self.run_dir, self.after = run_dir, after

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.after:
            (self.run_dir / "stop.json").write_text('{"reason": "PREEMPTED"}')


def fit(seed: int, *extra: paddle.callbacks.Callback) -> tuple[np.ndarray, CheckpointCallback]:
    """One attempt, as a new process makes it (the same parameter names), with its
    own seed."""
    with paddle.utils.unique_name.guard():
        paddle.seed(seed)
        net = paddle.nn.Linear(4, 1)
        model = paddle.Model(net)
        optimizer = paddle.optimizer.Adam(0.05, parameters=net.parameters())
        model.prepare(optimizer, paddle.nn.MSELoss())
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 4)).astype("float32")
        y = x.sum(1, keepdims=True)
        data = paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)])
        resume = CheckpointCallback()
        model.fit(
            data,
            eval_data=data,
            epochs=EPOCHS,
            batch_size=8,
            shuffle=False,
            verbose=0,
            callbacks=[*extra, resume, MetricsCallback(resume)],
        )
    return net.weight.numpy().copy(), resume


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    monkeypatch.setenv("PADDLE_HPC_ATTEMPT", "1")
    return tmp_path


def steps(run_dir: Path, key: str) -> list[tuple[int, int]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(row["step"], row["attempt"]) for row in map(json.loads, lines) if key in row]


def test_a_stopped_fit_resumes_where_it_saved(
    run_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = tmp_path_factory.mktemp("alone")
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(alone))
    reference, _ = fit(0)
    assert steps(alone, "loss") == [(e, 1) for e in range(EPOCHS)]

    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(run_dir))
    stopped, first = fit(0, AskToStop(run_dir, after=1))
    assert first.first_epoch == 0 and steps(run_dir, "loss") == [(0, 1), (1, 1)]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-0", "step-1"]
    assert not np.allclose(stopped, reference)

    (run_dir / "stop.json").unlink()  # the node runner's, when the next attempt starts
    monkeypatch.setenv("PADDLE_HPC_ATTEMPT", "2")
    resumed, second = fit(7)  # another seed: the weights come from the checkpoint
    assert second.first_epoch == 2
    np.testing.assert_allclose(resumed, reference, rtol=1e-5)
    assert steps(run_dir, "loss") == [(0, 1), (1, 1), (2, 2), (3, 2)]
    assert steps(run_dir, "eval.loss") == [(0, 1), (1, 1), (2, 2), (3, 2)]

    # stopped after its last epoch was saved: a further attempt trains nothing
    monkeypatch.setenv("PADDLE_HPC_ATTEMPT", "3")
    again, third = fit(9)
    np.testing.assert_allclose(again, reference, rtol=1e-5)
    assert third.first_epoch == EPOCHS and len(steps(run_dir, "loss")) == EPOCHS
