"""The files a sweep's runs wrote, each with a fingerprint (size, mtime) to tell change.

Per run, under `runs/<run_id>/`: `metrics.jsonl`, `state.json`, and the worker logs
`logs/node<N>/workerlog.<R>`. Paths are kept relative to the sweep directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paddle_hpc.metrics import METRICS_FILE
from paddle_hpc.node import STATE

Fingerprint = tuple[int, int]  # size, mtime in ns
_WORKER_LOG = re.compile(r"^workerlog\.(\d+)$")
_NODE_DIR = re.compile(r"^node(\d+)$")


@dataclass(frozen=True)
class RunFiles:
    run_id: str
    metrics: str | None  # relative paths, None when missing
    state: str | None
    worker_logs: tuple[tuple[str, int, int], ...]  # (path, node, local rank)


def fingerprint(path: str | Path) -> Fingerprint | None:
    try:
        stat = os.stat(path)  # noqa: PTH116 - thousands per collect; no Path objects
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def find(sweep_dir: Path, run_ids: Iterable[str]) -> tuple[list[RunFiles], dict[str, Fingerprint]]:
    """Each run's files and every file's fingerprint. A run that never started has none."""
    runs = []
    prints: dict[str, Fingerprint] = {}
    root = str(sweep_dir)
    for run_id in run_ids:
        base = f"runs/{run_id}"
        found: dict[str, str] = {}
        for name in (METRICS_FILE, STATE):
            rel = f"{base}/{name}"
            if (fp := fingerprint(f"{root}/{rel}")) is not None:
                prints[rel] = fp
                found[name] = rel
        logs = []
        for node, node_dir in _numbered(f"{root}/{base}/logs", _NODE_DIR):
            for rank, _ in _numbered(node_dir, _WORKER_LOG):
                rel = f"{base}/logs/node{node}/workerlog.{rank}"
                if (fp := fingerprint(f"{root}/{rel}")) is not None:
                    prints[rel] = fp
                    logs.append((rel, node, rank))
        runs.append(RunFiles(run_id, found.get(METRICS_FILE), found.get(STATE), tuple(logs)))
    return runs, prints


def _numbered(folder: str, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    """(number, path) of the entries of folder whose names match pattern, by number."""
    try:
        with os.scandir(folder) as entries:
            hits = [(m, e.path) for e in entries if (m := pattern.match(e.name))]
    except OSError:
        return []
    return sorted((int(m[1]), path) for m, path in hits)
