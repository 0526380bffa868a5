"""What a sweep's array tasks were charged and what they used, from sacct's rows: each
task's allocations (a requeued task has one per run), GPU- and CPU-seconds. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from paddle_hpc.slurm.parse import SacctRecord
from paddle_hpc.slurm.usage import cpu_seconds, size_mb

Task = tuple[int, int]  # (array job id, task)


def attempts(
    allocations: Iterable[SacctRecord], used: Mapping[Task, list[Used]] | None = None
) -> dict[Task, list[SacctRecord]]:
    """Each array task's allocations that started, oldest first (a requeued task has
    one per run), from `sacct --allocations --duplicates`; with what the steps' rows
    say they used (`parse_usage`), each ended allocation gets its CPU time and its
    steps' largest MaxRSS. A running allocation, or one the step rows saw in another
    state (running then), keeps None for them."""
    used = used or {}
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


class Used(NamedTuple):
    state: str
    total_cpu_s: float | None
    max_rss_mb: float | None


_TASK = re.compile(r"^(\d+)_(\d+)(?:\.(\S+))?$")


def parse_usage(text: str) -> dict[Task, list[Used]]:
    """`sacct --duplicates --format=USAGE_FIELDS` (steps included) -> per array task,
    each started allocation's state, CPU time (its own row sums its steps') and its
    steps' largest MaxRSS, oldest first: steps follow their allocation's row. Reads
    only those columns: the steps are most of a sweep's rows."""
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].split("|")
    try:
        at = [header.index(name) for name in ("JobID", "State", "Start", "TotalCPU", "MaxRSS")]
    except ValueError:
        return {}  # saved before these columns were asked for
    found: dict[Task, list[Used]] = {}
    for line in lines[1:]:
        values = line.split("|", len(header) - 1)
        if len(values) != len(header) or not (match := _TASK.match(values[at[0]])):
            continue
        runs = found.setdefault((int(match[1]), int(match[2])), [])
        if match[3] is None:
            if values[at[2]] not in ("Unknown", "None", ""):
                state = values[at[1]].partition(" ")[0]
                runs.append(Used(state, cpu_seconds(values[at[3]]), None))
        elif runs and (rss := size_mb(values[at[4]], default_unit="B")) is not None:
            last = runs[-1]
            runs[-1] = last._replace(max_rss_mb=max(last.max_rss_mb or 0.0, rss))
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

    @property
    def gpu_hours(self) -> float:
        return self.gpu_s / 3600

    @property
    def cpu_hours(self) -> float:
        return self.cpu_s / 3600


def charge(rows: Iterable[SacctRecord], parts: int = 1) -> Charge:
    """The allocations' charge: each one's GPUs and CPUs times its elapsed time; a share
    of it, when `parts` runs shared them."""
    gpu_s = cpu_s = count = 0.0
    for row in rows:
        elapsed = row.elapsed_s or 0
        gpu_s += row.gpus * elapsed
        cpu_s += row.cpus * elapsed
        count += 1
    return Charge(gpu_s / parts, cpu_s / parts, count / parts)
