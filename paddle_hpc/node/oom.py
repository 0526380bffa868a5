"""Whether the kernel's out-of-memory killer ended processes of this node's step.

Slurm's task/cgroup holds each step in a memory cgroup the size of its --mem; past it,
the kernel kills the largest process (a rank), not necessarily this node runner, and
Slurm calls the step OUT_OF_MEMORY while the job may end FAILED. The runner compares
its cgroups' `oom_kill` counters before and after the launch to say so itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def memory_cgroups(proc_cgroup: str, root: Path = ROOT) -> list[Path]:
    """The memory cgroup folders of a process (`/proc/<pid>/cgroup`), cgroup v1's memory
    hierarchy or else v2's unified one: its own, then each parent up to its Slurm job's."""
    v1 = v2 = None
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            v1 = root / "memory" / path.lstrip("/")
        elif controllers == "":
            v2 = path
    if v1 is not None:
        top, start = root / "memory", v1
    elif v2 is not None:
        top = root / "unified" if (root / "unified").is_dir() else root
        start = top / v2.lstrip("/")
    else:
        return []
    # up to the job's own (Slurm's `job_<id>`): a parent counts other jobs' kills too
    folders = [start]
    for parent in start.parents:
        if folders[-1].name.startswith("job_") or parent == top or top not in parent.parents:
            break
        folders.append(parent)
    return folders if folders[-1].name.startswith("job_") else [start]


def oom_kills(folders: list[Path]) -> int:
    """The most `oom_kill` events any of the cgroups counts (v1 `memory.oom_control`, v2
    `memory.events`); 0 where none can be read."""
    most = 0
    for folder in folders:
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError):
                most = max(most, counter((folder / name).read_text(), "oom_kill"))
    return most


def counter(text: str, name: str) -> int:
    """'oom_kill_disable 0\\nunder_oom 0\\noom_kill 2' -> 2 for 'oom_kill'."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def own_cgroups() -> list[Path]:
    try:
        return memory_cgroups(Path("/proc/self/cgroup").read_text())
    except OSError:
        return []
