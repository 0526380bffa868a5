"""A paddle.Model (hapi) callback that logs epoch and eval results with log_metrics.

    model.fit(train, eval_data=test, callbacks=[paddle_hpc.callback.MetricsCallback()])

Kept out of `paddle_hpc/__init__` so that submitting a sweep does not import Paddle.
"""

from __future__ import annotations

from typing import Any

import paddle

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


class MetricsCallback(paddle.callbacks.Callback):
    """Logs the training logs at each epoch's end, and eval results as eval.<name>, the
    name the collector gives the suites' evaluation values."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch
        log_metrics(step=epoch, **_numbers(logs))

    def on_eval_end(self, logs: Any = None) -> None:
        log_metrics(step=self.epoch, **_numbers(logs, "eval."))
