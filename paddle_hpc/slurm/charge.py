"""What a sweep's array tasks were charged and what they used, from sacct's rows: each
task's allocations (a requeued task has one per run), GPU- and CPU-seconds. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from paddle_hpc.slurm.parse import SacctRecord

Task = tuple[int, int]  # (array job id, task)


def attempts(
    allocations: Iterable[SacctRecord], steps: Iterable[SacctRecord] = ()
) -> dict[Task, list[SacctRecord]]:
    """Each array task's allocations that started, oldest first (a requeued task has
    one per run), from `sacct --allocations --duplicates`; with the rows of
    `sacct --duplicates` (steps included), each ended allocation gets what it used: its
    CPU time and its steps' largest MaxRSS. A running allocation, or one the step rows
    saw in another state (running then), keeps None for them."""
    used = _used(steps)
    found: dict[Task, list[SacctRecord]] = {}
    for row in allocations:
        task = row.ref.task
        if row.ref.step is not None or task is None or row.start is None:
            continue
        runs = found.setdefault((row.ref.job, task), [])
        seen = used.get((row.ref.job, task), [])
        if row.end is not None and len(runs) < len(seen) and seen[len(runs)].state == row.state:
            _, total_cpu_s, max_rss_mb = seen[len(runs)]
            row = replace(row, total_cpu_s=total_cpu_s, max_rss_mb=max_rss_mb)
        runs.append(row)
    return found


class _Used(NamedTuple):
    state: str
    total_cpu_s: float | None
    max_rss_mb: float | None


def _used(rows: Iterable[SacctRecord]) -> dict[Task, list[_Used]]:
    """Per task, each started allocation's state, CPU time (the job row sums its steps')
    and its steps' largest MaxRSS, oldest first; steps follow their allocation's row."""
    found: dict[Task, list[_Used]] = {}
    for row in rows:
        task = row.ref.task
        if task is None:
            continue
        runs = found.setdefault((row.ref.job, task), [])
        if row.ref.step is None:
            if row.start is not None:
                runs.append(_Used(row.state, row.total_cpu_s, None))
        elif runs and row.max_rss_mb is not None:
            last = runs[-1]
            peak = max(last.max_rss_mb or 0.0, row.max_rss_mb)
            runs[-1] = last._replace(max_rss_mb=peak)
    return found


@dataclass(frozen=True)
class Charge:
    """What allocations were charged: GPU- and CPU-seconds, allocated times elapsed."""

    gpu_s: float = 0.0
    cpu_s: float = 0.0
    allocations: float = 0.0  # how many (a packed trial's share counts its fraction)

    def __add__(self, other: Charge) -> Charge:
        return Charge(
            self.gpu_s + other.gpu_s, self.cpu_s + other.cpu_s, self.allocations + other.allocations
        )

    def share(self, parts: int) -> Charge:
        return Charge(self.gpu_s / parts, self.cpu_s / parts, self.allocations / parts)

    @property
    def gpu_hours(self) -> float:
        return self.gpu_s / 3600

    @property
    def cpu_hours(self) -> float:
        return self.cpu_s / 3600


def charge(rows: Iterable[SacctRecord]) -> Charge:
    """The allocations' charge: each one's GPUs and CPUs times its elapsed time."""
    total = Charge()
    for row in rows:
        elapsed = row.elapsed_s or 0
        total = total + Charge(row.gpus * elapsed, row.cpus * elapsed, 1)
    return total
