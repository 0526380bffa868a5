"""Checkpoints a training script saves and resumes from, and the stop request it heeds.

    from paddle_hpc import checkpoint

    start = 0
    if (found := checkpoint.load(model=model, optimizer=optimizer)) is not None:
        start = found.step + 1
    for epoch in range(start, epochs):
        train_one_epoch()
        checkpoint.save(epoch, model=model, optimizer=optimizer)
        if checkpoint.should_stop():  # preempted, or the time limit is near
            break  # saved: the run is requeued and resumes here

Checkpoints live in `$PADDLE_HPC_RUN_DIR/checkpoints/step-<N>/` (`./checkpoints` outside a
sweep): `model.pdparams`, `optimizer.pdopt` and `state.json` (the step and `extra`).
Global rank 0 writes, every rank reads. A checkpoint is written into a temporary folder
and renamed into place, so a run stopped halfway leaves the last whole one; the newest
`keep` are kept.

When Slurm signals the job (its time limit is `resources.signal_before` seconds away,
or it is being preempted), the node runner writes the run's stop request and
`should_stop()` turns true. A run that saves a checkpoint after that and exits is
requeued (up to `sweep.max_requeues`) and resumes from it.

Node side: Paddle is imported only to save and load state dicts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paddle_hpc.core.layout import CHECKPOINTS, STOP_REQUEST

_PREFIX = "step-"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)


def run_dir() -> Path:
    return Path(os.environ.get("PADDLE_HPC_RUN_DIR", "."))


def directory() -> Path:
    """Where this run's checkpoints live."""
    return run_dir() / CHECKPOINTS


def should_stop() -> bool:
    """Whether Slurm has told the job to stop (preemption, or the time limit is near):
    save a checkpoint and exit. A file check: cheap enough for every step."""
    return (run_dir() / STOP_REQUEST).exists()


def _rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def _steps(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob(f"{_PREFIX}*"):
        number = path.name[len(_PREFIX) :]
        if number.isdigit() and (path / "state.json").is_file():
            found.append((int(number), path))
    return sorted(found)


def latest(folder: Path | None = None) -> Checkpoint | None:
    """The newest whole checkpoint, or None."""
    steps = _steps(folder or directory())
    if not steps:
        return None
    step, path = steps[-1]
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return Checkpoint(step, path, dict(state.get("extra") or {}))


def save(
    step: int,
    *,
    model: Any = None,
    optimizer: Any = None,
    extra: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path | None:
    """Saves a checkpoint of `step` (global rank 0; other ranks return None at once).
    `extra` must be JSON: an epoch, a data position, an RNG state."""
    if _rank() != 0:
        return None
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_PREFIX}{int(step)}"
    partial = folder / f".partial-{final.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    if model is not None or optimizer is not None:
        import paddle

        if model is not None:
            paddle.save(model.state_dict(), str(partial / "model.pdparams"))
        if optimizer is not None:
            paddle.save(optimizer.state_dict(), str(partial / "optimizer.pdopt"))
    state = {"step": int(step), "extra": extra or {}}
    (partial / "state.json").write_text(json.dumps(state), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for _, old in _steps(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load(*, model: Any = None, optimizer: Any = None) -> Checkpoint | None:
    """Loads the newest checkpoint's state dicts into model and optimizer; returns it,
    or None when there is none (a first start)."""
    found = latest()
    if found is None:
        return None
    if model is not None or optimizer is not None:
        import paddle

        if model is not None and (found.path / "model.pdparams").exists():
            model.set_state_dict(paddle.load(str(found.path / "model.pdparams")))
        if optimizer is not None and (found.path / "optimizer.pdopt").exists():
            optimizer.set_state_dict(paddle.load(str(found.path / "optimizer.pdopt")))
    return found
