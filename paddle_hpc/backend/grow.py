"""Retries that ask for more: a run that ended OUT_OF_MEMORY is retried with its memory
times `sweep.retry_grow.mem`, one that ended TIMEOUT with its time limit times
`sweep.retry_grow.time`, each up to its cap. A grown run gets a resource shape of its
own in the manifest, so it is submitted in an array of that shape. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.schema import RetryGrowConfig
from paddle_hpc.slurm.parse import memory_mb, slurm_time, time_limit_minutes


def grown_resources(
    resources: Mapping[str, Any], ended: str, grow: RetryGrowConfig, used_mb: float | None
) -> dict[str, Any] | None:
    """The resources a retry of a run that ended `ended` asks for; None: as before.
    `used_mb`: the memory per node Slurm gave the run, when resources.mem is not set."""
    if ended == runstate.OUT_OF_MEMORY and grow.mem > 1:
        now = memory_mb(resources["mem"]) if resources.get("mem") else used_mb
        if now is None:
            raise ConfigError(
                "sweep.retry_grow.mem: the run asked for the partition's default memory, "
                "which Slurm's accounting does not say; set resources.mem."
            )
        cap = _cap_mb(grow.max_mem)
        return {**resources, "mem": f"{math.ceil(min(now * grow.mem, cap))}M"}
    if ended == runstate.TIMEOUT and grow.time > 1:
        minutes = time_limit_minutes(str(resources["time"]))
        if minutes is None:
            return None  # no limit to grow
        cap = math.inf if grow.max_time is None else _cap_minutes(grow.max_time)
        longer = math.ceil(min(minutes * grow.time, cap))
        return {**resources, "time": slurm_time(longer)}
    return None


def grow_runs(
    manifest: Manifest,
    ended: Mapping[str, str],
    grow: RetryGrowConfig,
    used_mb: Mapping[str, float],
) -> tuple[Manifest, dict[str, str]]:
    """The manifest with each run in `ended` (run id -> the state it ended in) moved to
    a shape with grown resources where retry_grow says so; and what grew, per run
    ('mem 4000M -> 8000M')."""
    shapes = list(manifest.shapes)
    said: dict[str, str] = {}
    runs = []
    for run in manifest.runs:
        state = ended.get(run.run_id)
        shape = shapes[run.shape]
        more = (
            grown_resources(shape["resources"], state, grow, used_mb.get(run.run_id))
            if state
            else None
        )
        if more is not None and more != shape["resources"]:
            key = "mem" if state == runstate.OUT_OF_MEMORY else "time"
            said[run.run_id] = f"{key} {shape['resources'][key] or 'default'} -> {more[key]}"
            bigger = {**shape, "resources": more}
            if bigger not in shapes:
                shapes.append(bigger)
            run = replace(run, shape=shapes.index(bigger))
        runs.append(run)
    return replace(manifest, shapes=tuple(shapes), runs=tuple(runs)), said


def _cap_mb(text: str | None) -> float:
    if text is None:
        return math.inf
    value = memory_mb(text)
    if value is None:
        raise ConfigError(f"sweep.retry_grow.max_mem is {text!r}; use a size such as '64G'.")
    return value


def _cap_minutes(text: str) -> float:
    try:
        minutes = time_limit_minutes(text)
    except ValueError:
        minutes = -1
    if minutes == -1:
        raise ConfigError(
            f"sweep.retry_grow.max_time is {text!r}; use a Slurm time such as '2-00:00:00'."
        )
    return math.inf if minutes is None else minutes
