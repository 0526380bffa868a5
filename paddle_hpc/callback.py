"""paddle.Model (hapi) callbacks: metrics for the collector, checkpoints that survive
a preemption or the time limit.

    resume = paddle_hpc.callback.CheckpointCallback()
    model.fit(train, eval_data=test, epochs=10,
              callbacks=[resume, paddle_hpc.callback.MetricsCallback(resume)])

Kept out of `paddle_hpc/__init__` so that submitting a sweep does not import Paddle.
"""

from __future__ import annotations

from typing import Any

import paddle

from paddle_hpc import checkpoint
from paddle_hpc.metrics import log_metrics


def _numbers(logs: dict[str, Any] | None, prefix: str = "") -> dict[str, float]:
    out = {}
    for name, value in (logs or {}).items():
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "step":
            out[prefix + name] = float(value)
    return out


class CheckpointCallback(paddle.callbacks.Callback):
    """Saves a checkpoint (`paddle_hpc.checkpoint`: the network's and the optimizer's
    state dicts) at each epoch's end and resumes from the newest one when the run
    starts again. Once the job is asked to stop (a preemption, or its time limit is
    `resources.signal_before` away) every rank ends training after the epoch it is in:
    the run is requeued and goes on at the next epoch.

    `fit` counts its epochs from 0 again after a resume; `epoch(e)` is the run's own
    number of fit's epoch e, and training ends after the run's last epoch. Checkpoints
    come at epochs' ends, so `resources.signal_before` must exceed an epoch's time."""

    def __init__(self, keep: int = 3) -> None:
        super().__init__()
        self.keep = keep
        self.first_epoch = 0  # the run's number of fit's epoch 0
        self._done = False

    def epoch(self, fit_epoch: int) -> int:
        return self.first_epoch + fit_epoch

    def _fitted(self) -> paddle.Model:
        assert self.model is not None, "set by paddle.Model.fit"
        return self.model

    def on_train_begin(self, logs: Any = None) -> None:
        model = self._fitted()
        found = checkpoint.load(model=model.network, optimizer=model._optimizer)
        self.first_epoch = found.step + 1 if found is not None else 0
        self._done = self.first_epoch >= self.params["epochs"]
        if self._done:  # its last epoch was saved, then it was told to stop
            model.stop_training = True
            # fit trains one epoch before it looks at stop_training: make that nothing
            model._run_one_epoch = lambda *args, **kwargs: {}  # type: ignore[method-assign]

    def on_train_end(self, logs: Any = None) -> None:
        vars(self._fitted()).pop("_run_one_epoch", None)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self._done:
            return
        number = self.epoch(epoch)
        model = self._fitted()
        checkpoint.save(number, model=model.network, optimizer=model._optimizer, keep=self.keep)
        if number + 1 >= self.params["epochs"] or _all_agree(checkpoint.should_stop()):
            model.stop_training = True


def _all_agree(stop: bool) -> bool:
    """True on every rank once one rank says so: ranks that stop apart would hang in
    the next epoch's collectives."""
    if paddle.distributed.get_world_size() < 2:
        return stop
    flag = paddle.to_tensor([int(stop)])
    paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
    return bool(flag.item())


class MetricsCallback(paddle.callbacks.Callback):
    """Logs the training logs at each epoch's end, and eval results as eval.<name>, the
    name the collector gives the suites' evaluation values. With a CheckpointCallback,
    the steps are the run's own epochs, also after a resume."""

    def __init__(self, resume: CheckpointCallback | None = None) -> None:
        super().__init__()
        self.resume = resume
        self.epoch = 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epoch = self.resume.epoch(epoch) if self.resume is not None else epoch
        if values := _numbers(logs):
            log_metrics(step=self.epoch, **values)

    def on_eval_end(self, logs: Any = None) -> None:
        if values := _numbers(logs, "eval."):
            log_metrics(step=self.epoch, **values)
