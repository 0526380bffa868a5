"""Small trials packed into array tasks. Pure.

With `sweep.trials_per_task=K` each array task runs K runs ("trials") on its one node;
`resources.gpus_per_trial` says how many run at once. A fraction shares GPUs (0.5: two
trials per GPU, 0.25: four), a whole number gives each trial that many GPUs; without
it the trials run one after another, each on the whole allocation. Each trial keeps
its own run directory, state, logs, metrics, checkpoints and retries; a trial's
status comes from its own state file, read together with its task's sacct row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.runstate import RunState


@dataclass(frozen=True)
class Slot:
    """Where one trial at a time runs in a task: its GPUs, as Slurm names them."""

    index: int
    devices: tuple[str, ...]


def per_gpu(gpus_per_trial: float) -> int:
    """How many trials of this fraction one GPU holds (0.5 -> 2, 0.3 -> 3)."""
    return max(1, math.floor(1 / gpus_per_trial + 1e-9))


def slots(devices: Sequence[str], gpus_per_trial: float | None) -> list[Slot]:
    """The task's slots over its GPUs. Trials sharing GPUs are spread over all of them
    first (slot i on GPU i mod G); without gpus_per_trial, or without GPUs, one slot."""
    if gpus_per_trial is None or not devices:
        return [Slot(0, tuple(devices))]
    if gpus_per_trial < 1:
        count = len(devices) * per_gpu(gpus_per_trial)
        return [Slot(i, (devices[i % len(devices)],)) for i in range(count)]
    each = int(gpus_per_trial)
    return [Slot(i, tuple(devices[i * each : (i + 1) * each])) for i in range(len(devices) // each)]


T = TypeVar("T")


def pack(runs: Sequence[T], trials_per_task: int) -> list[tuple[T, ...]]:
    """Consecutive runs, `trials_per_task` to a task (the last task may hold fewer)."""
    k = max(1, trials_per_task)
    return [tuple(runs[i : i + k]) for i in range(0, len(runs), k)]


def check(resources: Mapping[str, Any], trials_per_task: int) -> None:
    """Raises ConfigError, naming the keys and the fix, for a packing that cannot work."""
    share, gpus, nodes = resources["gpus_per_trial"], resources["gpus_per_node"], resources["nodes"]
    if trials_per_task < 1:
        raise ConfigError(f"sweep.trials_per_task is {trials_per_task}; it must be 1 or more.")
    if trials_per_task > 1 and nodes != 1:
        raise ConfigError(
            f"sweep.trials_per_task={trials_per_task} packs trials on one node, and "
            f"resources.nodes is {nodes}; set resources.nodes=1, or sweep.trials_per_task=1 "
            "for multi-node runs."
        )
    if share is None:
        return
    if trials_per_task == 1:
        raise ConfigError(
            f"resources.gpus_per_trial={share} shares a task's GPUs among packed trials, and "
            "sweep.trials_per_task is 1; set sweep.trials_per_task to 2 or more (or remove "
            "resources.gpus_per_trial)."
        )
    if gpus < 1:
        raise ConfigError(
            f"resources.gpus_per_trial={share} needs GPUs, and resources.gpus_per_node is "
            f"{gpus}; set resources.gpus_per_node."
        )
    if share <= 0 or (share > 1 and share != int(share)) or share > gpus:
        raise ConfigError(
            f"resources.gpus_per_trial is {share}; use a fraction of one GPU (0.5, 0.25) or "
            f"a whole number of GPUs up to resources.gpus_per_node ({gpus})."
        )


def trial_state(task: str | None, own: RunState | None, attempt: int) -> tuple[str, str]:
    """A packed trial's state and reason, from its task's Slurm state (None: sacct does
    not list it yet) and its own state file; `attempt` is what its submission started as.
    Its own word stands once it has ended; until it starts it waits for a slot."""
    current = own if own is not None and own.attempt >= attempt else None
    if current is not None and current.state == runstate.CANCELLED:
        return runstate.CANCELLED, current.reason or ""
    if task is None or task == runstate.PENDING:
        return runstate.PENDING, ""
    task_ended = task not in (
        runstate.RUNNING,
        "COMPLETING",
        "SUSPENDED",
        runstate.REQUEUED,
        "RESIZING",
    )
    if current is None:
        if task_ended:
            return task, "its task ended before it started"
        return runstate.PENDING, "waits for a slot in its task"
    if current.retrying and not task_ended:
        return runstate.PENDING, current.reason or ""
    if current.state == runstate.RUNNING:
        return (task, "its task ended while it ran") if task_ended else (runstate.RUNNING, "")
    return current.state, current.reason or ""


def trial_elapsed(state: runstate.RunState) -> int | None:
    """Seconds a packed trial's attempt has run: till its last word once it has ended."""
    try:
        started = datetime.fromisoformat(state.started)
        until = (
            datetime.now(timezone.utc)
            if state.state == runstate.RUNNING
            else datetime.fromisoformat(state.time)
        )
    except ValueError:
        return None
    return max(0, int((until - started).total_seconds()))


def local_time(iso: str) -> datetime | None:
    """A state file's UTC time as sacct gives times: local and naive."""
    try:
        return datetime.fromisoformat(iso).astimezone().replace(tzinfo=None)
    except ValueError:
        return None


def describe(
    run_ids: Sequence[str], trials_per_task: int, gpus_per_node: int, gpus_per_trial: float | None
) -> list[str]:
    """How runs of one resource shape are packed, for --dry-run: the slots of a task and
    each task's trials (the first 8 tasks)."""
    tasks = pack(run_ids, trials_per_task)
    task_slots = slots([str(i) for i in range(gpus_per_node)], gpus_per_trial)
    share = f"resources.gpus_per_trial={gpus_per_trial}" if gpus_per_trial else "one at a time"
    where = ", ".join(f"slot {s.index} on GPU {','.join(s.devices) or '-'}" for s in task_slots)
    lines = [
        f"{len(run_ids)} trials in {len(tasks)} task(s) of up to {trials_per_task} "
        f"(sweep.trials_per_task); each task runs {len(task_slots)} at once ({share}): {where}"
    ]
    lines += [f"task {i}: {' '.join(task)}" for i, task in enumerate(tasks[:8])]
    if len(tasks) > 8:
        lines.append(f"... {len(tasks) - 8} more task(s)")
    return lines
