"""The runs table's cost columns: what each run was charged, over all its allocations
(backend/charges.py), and what it used of what it asked for, by Slurm's accounting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from paddle_hpc.backend.charges import hours, run_charge, run_tasks, sharing
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.runstate import ENDED
from paddle_hpc.slurm import SacctRecord
from paddle_hpc.slurm.charge import Task

USAGE_COLUMNS = (
    "gpu_hours",  # GPUs allocated x elapsed, every allocation (requeues, retries) counted
    "cpu_hours",  # the same for CPUs: what the allocation was charged
    "cpu_efficiency",  # CPU time used / CPU time allocated, over allocations that ended
    "max_rss_mb",  # the largest resident set of a task of its steps, over allocations
    "req_mem_mb",  # memory asked for per node, by its last allocation
    "time_limit_min",  # its last allocation's time limit; NaN: none
)


def usage_frame(
    manifest: Manifest, allocations: Mapping[Task, Sequence[SacctRecord]]
) -> pd.DataFrame:
    """One row per run, the USAGE_COLUMNS; NaN where Slurm's accounting says nothing
    (a local sweep, a run not started, a step too short to be sampled)."""
    shares = sharing(manifest.runs)
    rows = []
    for run in manifest.runs:
        mine = [row for task in run_tasks(run) for row in allocations.get(task, ())]
        charge = run_charge(run, allocations, shares)
        ended = [r for r in mine if r.total_cpu_s is not None and r.cpus and r.elapsed_s]
        allocated = sum(r.cpus * (r.elapsed_s or 0) for r in ended)
        peaks = [r.max_rss_mb for r in mine if r.max_rss_mb is not None]
        last = mine[-1] if mine else None
        rows.append(
            (
                charge.gpu_hours if mine else np.nan,
                charge.cpu_hours if mine else np.nan,
                sum(r.total_cpu_s or 0.0 for r in ended) / allocated if allocated else np.nan,
                max(peaks) if peaks else np.nan,
                _or_nan(last.req_mem_mb if last else None),
                _or_nan(last.time_limit_min if last else None),
            )
        )
    index = pd.Index([r.run_id for r in manifest.runs], name="run_id")
    frame: pd.DataFrame = pd.DataFrame(rows, index=index, columns=list(USAGE_COLUMNS), dtype=float)
    return frame


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


@dataclass(frozen=True)
class Summary:
    """A sweep's cost and fit, from its runs table (`paddle-hpc cost`, the report)."""

    runs: int
    accounted: int  # runs Slurm's accounting has an allocation of
    gpu_hours: float
    cpu_hours: float
    by_state: dict[str, tuple[float, float]]  # state -> (GPU-hours, CPU-hours)
    cpu_efficiency: float | None  # CPU time used / allocated, over the runs that ended
    mem_used: tuple[float, float, float] | None  # peak / request per run: p50, p95, max
    peak_mb: float | None  # the largest peak of a run
    time_used: tuple[float, float, float] | None  # elapsed / limit per ended run: p50, p95, max
    gpu_util: tuple[float, float, int] | None = None  # runs' GPU utilisation: mean, least, runs


def summary(runs: pd.DataFrame) -> Summary:
    charged = runs[["state", "gpu_hours", "cpu_hours"]].fillna({"gpu_hours": 0, "cpu_hours": 0})
    by_state = charged.groupby("state", sort=True)[["gpu_hours", "cpu_hours"]].sum()
    ended = runs[runs["cpu_efficiency"].notna()]
    weight = ended["cpu_hours"].sum()
    efficiency = (ended["cpu_efficiency"] * ended["cpu_hours"]).sum() / weight if weight else None
    finished = runs[runs["state"].isin(ENDED)]
    limit = finished["time_limit_min"] * 60
    return Summary(
        len(runs),
        int(runs["gpu_hours"].notna().sum()),
        float(charged["gpu_hours"].sum()),
        float(charged["cpu_hours"].sum()),
        {str(k): (float(v.gpu_hours), float(v.cpu_hours)) for k, v in by_state.iterrows()},
        None if efficiency is None else float(efficiency),
        _spread(runs["max_rss_mb"] / runs["req_mem_mb"]),
        None if runs["max_rss_mb"].isna().all() else float(runs["max_rss_mb"].max()),
        _spread(finished["elapsed_s"].astype(float) / limit),
        _gpu_util(runs),
    )


def _gpu_util(runs: pd.DataFrame) -> tuple[float, float, int] | None:
    sampled = runs["gpu_util"].dropna() if "gpu_util" in runs else pd.Series(dtype=float)
    if sampled.empty:
        return None
    return float(sampled.mean()), float(sampled.min()), len(sampled)


def _spread(values: pd.Series) -> tuple[float, float, float] | None:
    found = values.replace([np.inf, -np.inf], np.nan).dropna()
    if found.empty:
        return None
    p50, p95 = found.quantile([0.5, 0.95])
    return float(p50), float(p95), float(found.max())


def summary_lines(found: Summary) -> list[str]:
    lines = _charge_lines(found)
    if found.gpu_util is not None:
        mean, least, sampled = found.gpu_util
        lines.append(
            f"GPU utilisation: mean {mean:.0f}% over {sampled} run(s) with samples, "
            f"the lowest {least:.0f}%"
        )
    return lines


def _charge_lines(found: Summary) -> list[str]:
    if not found.accounted:
        return ["charged: nothing in Slurm's accounting (runs not started, or run without Slurm)"]
    states = ", ".join(
        f"{state} {hours(gpu)}/{hours(cpu)}" for state, (gpu, cpu) in found.by_state.items()
    )
    lines = [
        f"charged: {hours(found.gpu_hours)} GPU-hours, {hours(found.cpu_hours)} CPU-hours "
        f"over {found.runs} runs (GPU-/CPU-hours by state: {states})"
    ]
    if found.cpu_efficiency is not None:
        lines.append(f"CPU efficiency: {found.cpu_efficiency:.0%} of the CPU time allocated")
    if found.mem_used is not None:
        p50, p95, top = found.mem_used
        lines.append(
            f"memory, peak / request per run: median {p50:.0%}, p95 {p95:.0%}, max {top:.0%}"
            f" (largest peak {found.peak_mb:,.0f} MB)"
        )
    if found.time_used is not None:
        p50, p95, top = found.time_used
        lines.append(
            f"time, elapsed / limit per ended run: median {p50:.0%}, p95 {p95:.0%}, max {top:.0%}"
        )
    return lines
