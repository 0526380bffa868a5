"""Pure parsers of sacct's columns on what a job was given and used: AllocTRES,
TotalCPU, MaxRSS, ReqMem.

Each is tested with literal sacct output in tests/test_slurm_usage.py.
"""

from __future__ import annotations

import functools
import re

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)B?$", re.IGNORECASE)
_MB = {"K": 1 / 1024, "M": 1.0, "": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


@functools.lru_cache(maxsize=256)
def size_mb(text: str, default_unit: str = "M") -> float | None:
    """'320628K', '500M', '16G', '1.50G' -> megabytes; a bare number is in
    `default_unit` (sbatch --mem: megabytes; MaxRSS: bytes, 'B'). None when empty."""
    match = _SIZE.match(text.strip())
    if match is None:
        return None
    unit = match[2].upper() or default_unit
    return float(match[1]) * (1 / 1024**2 if unit == "B" else _MB[unit])


def tres(text: str) -> dict[str, str]:
    """'billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=1G,node=1' -> {name: value}."""
    found: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if sep and name:
            found[name.strip()] = value.strip()
    return found


def tres_count(found: dict[str, str], name: str) -> int:
    """A count in parsed TRES ('gres/gpu', 'cpu', 'node'); 0 when absent."""
    value = found.get(name, "")
    return int(value) if value.isdigit() else 0


@functools.lru_cache(maxsize=256)  # a sweep's tasks share a few shapes
def allocated(text: str) -> tuple[int, int, int]:
    """AllocTRES -> (GPUs, CPUs, nodes)."""
    found = tres(text)
    return tres_count(found, "gres/gpu"), tres_count(found, "cpu"), tres_count(found, "node")


_CPU_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


@functools.lru_cache(maxsize=4096)
def cpu_seconds(text: str) -> float | None:
    """sacct's TotalCPU ('00:04.258', '12:34:56', '2-03:04:05.5') -> seconds."""
    match = _CPU_TIME.match(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


@functools.lru_cache(maxsize=256)
def requested_mb(text: str, cpus: int, nodes: int) -> float | None:
    """ReqMem as memory per node in megabytes: '16000M' (the whole job's, as Slurm 21.08
    and later print it: 8000 MB a node on two nodes), '4000Mn' (per node) or '2000Mc'
    (per CPU), as earlier versions print it."""
    text = text.strip()
    value = size_mb(text.rstrip("cn"))
    if value is None:
        return None
    if text.endswith("n"):
        return value
    if text.endswith("c"):
        return value * cpus / max(nodes, 1)
    return value / max(nodes, 1)
