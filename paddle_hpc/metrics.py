"""`log_metrics(step=..., **values)`: one JSON line per call in the run's metrics file.

Only global rank 0 writes (Paddle's launcher sets PADDLE_TRAINER_ID); other ranks do
nothing. In a sweep the file is `$PADDLE_HPC_RUN_DIR/metrics.jsonl`; outside one it
is `metrics.jsonl` in the current directory. Each line also says which attempt of the
run wrote it (`$PADDLE_HPC_ATTEMPT`, set by the node runner), so a run that resumes
after a requeue keeps its attempts apart.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paddle_hpc.core.layout import METRICS

METRICS_FILE = METRICS
RESERVED = frozenset({"time", "attempt"})  # besides step: keys the collector reads itself


def _number(name: str, value: Any) -> float | int:
    if hasattr(value, "item"):  # paddle.Tensor, numpy scalars and 1-element arrays
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"log_metrics: {name}={value!r} is not a number")
    return value


def whole_step(value: object) -> int | None:
    """A step as an int (None stays None); ValueError unless a whole number int64 holds.
    The rule for every step: what log_metrics writes and what the collector reads."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"step {value!r} is not a number") from exc
    if not (number.is_integer() and abs(number) < 2.0**63):
        raise ValueError(f"step {value!r} is not a whole number")
    return int(number)


def _step(step: Any) -> int | None:
    if step is None:
        return None
    try:
        return whole_step(_number("step", step))
    except ValueError:
        raise TypeError(
            f"log_metrics: step={step!r} is not a whole number; pass the global step, and "
            "log a fractional epoch as a value: log_metrics(step=100, epoch=0.5)"
        ) from None


def metrics_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("PADDLE_HPC_RUN_DIR", ".")) / METRICS_FILE


def log_metrics(step: int | None = None, **values: Any) -> None:
    """Appends {"step", "time", "attempt", **values} to the run's metrics file (rank 0
    only); outside a sweep there is no "attempt"."""
    if reserved := RESERVED & values.keys():
        raise TypeError(
            f"log_metrics: {sorted(reserved)[0]} is the collector's own column; log it under "
            "another name"
        )
    if int(os.environ.get("PADDLE_TRAINER_ID", "0")) != 0:
        return
    record: dict[str, Any] = {"step": _step(step), "time": round(time.time(), 3)}
    if attempt := os.environ.get("PADDLE_HPC_ATTEMPT"):
        record["attempt"] = int(attempt)
    record.update({name: _number(name, value) for name, value in values.items()})
    path = metrics_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
