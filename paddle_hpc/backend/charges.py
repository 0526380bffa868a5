"""The one rule for what a run was charged, which `status`, `cost` and the runs table
apply: every allocation of every task it ran in (each submission's, each requeue's),
a packed task's shared equally among the trials it ran."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.slurm import SacctRecord
from paddle_hpc.slurm.charge import Charge, Task, charge
from paddle_hpc.slurm.parse import time_limit_minutes


def run_tasks(run: RunEntry) -> list[Task]:
    """The array tasks the run ran in, its earlier submissions' first."""
    tasks = [(s.job_id, s.array_task or 0) for s in run.submissions if s.job_id is not None]
    if run.job_id is not None:
        tasks.append((run.job_id, run.array_task or 0))
    return tasks


def sharing(runs: Iterable[RunEntry]) -> Counter[Task]:
    """How many runs each task ran: a packed task's trials share its charge."""
    return Counter(task for run in runs for task in run_tasks(run))


def run_charge(
    run: RunEntry, allocations: Mapping[Task, Sequence[SacctRecord]], shares: Mapping[Task, int]
) -> Charge:
    total = Charge()
    for task in run_tasks(run):
        if rows := allocations.get(task):
            total = total + charge(rows, shares.get(task, 1))
    return total


def hours(value: float) -> str:
    """1234.5 -> '1,234', 12.34 -> '12.3', 2 -> '2.00', 0.0123 -> '0.012'."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.2g}"


def cost_line(charges: Sequence[Charge]) -> str | None:
    """'charged so far: 1.5 GPU-hours, 6.2 CPU-hours (14 allocations)', None before any."""
    total = sum(charges, Charge())
    if total.allocations == 0:
        return None
    return (
        f"charged so far: {hours(total.gpu_hours)} GPU-hours, "
        f"{hours(total.cpu_hours)} CPU-hours ({round(total.allocations)} allocations)"
    )


class Asked(NamedTuple):
    """The most a submission can be charged: each task's GPUs for its whole time limit."""

    gpu_hours: float | None  # None: a shape with GPUs has no time limit
    shapes: tuple[str, ...]  # per shape: '4 tasks x 2 nodes x 2 GPUs x 1:00:00'


def asked(manifest: Manifest, trials_per_task: int) -> Asked:
    """What the manifest's runs ask for at most, each run once (requeues and retries
    ask again); packed trials share their task's."""
    total: float | None = 0.0
    shapes = []
    counts = Counter(r.shape for r in manifest.runs)
    for number, shape in enumerate(manifest.shapes):
        if not (runs := counts[number]):
            continue
        resources = shape["resources"]
        tasks = math.ceil(runs / max(trials_per_task, 1))
        nodes, gpus = int(resources["nodes"]), int(resources["gpus_per_node"])
        minutes = time_limit_minutes(str(resources["time"]))
        limit = "no time limit" if minutes is None else f"{minutes // 60}:{minutes % 60:02d}:00"
        shapes.append(f"{tasks} task(s) x {nodes} node(s) x {gpus} GPU(s) x {limit}")
        if gpus and (minutes is None or total is None):
            total = None
        elif total is not None and minutes is not None:
            total += tasks * nodes * gpus * minutes / 60
    return Asked(total, tuple(shapes))


def asked_line(found: Asked) -> str:
    figure = "no bound" if found.gpu_hours is None else f"{hours(found.gpu_hours)} GPU-hours"
    return f"at most {figure} ({'; '.join(found.shapes)})"


def check_budget(found: Asked, max_gpu_hours: float | None) -> None:
    """Refuses a submission that asks for more than sweep.max_gpu_hours."""
    if max_gpu_hours is None:
        return
    if found.gpu_hours is None or found.gpu_hours > max_gpu_hours:
        raise ConfigError(
            f"sweep.max_gpu_hours is {max_gpu_hours:g}, and the sweep asks for "
            f"{asked_line(found)}. Lower resources.time, resources.nodes or "
            "resources.gpus_per_node, sweep fewer points, or raise sweep.max_gpu_hours."
        )
