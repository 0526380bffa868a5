"""The files a sweep's runs wrote, each with a fingerprint (size, mtime) to tell change.

Per run, under `runs/<run_id>/`: `metrics.jsonl`, `state.json`, the worker logs
`logs/node<N>/workerlog.<R>`, and VisualDL logs `<folder>/vdlrecords.<N>.log` in the
folders `collect.visualdl` names. Paths are kept relative to the sweep directory.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddle_hpc.core.layout import METRICS, STATE, rel_run

Fingerprint = tuple[int, int]  # size, mtime in ns
_WORKER_LOG = re.compile(r"^workerlog\.(\d+)(?:\.gz)?$")  # .gz: after `clean`
_NODE_DIR = re.compile(r"^node(\d+)$")
_VISUALDL = re.compile(r"^vdlrecords\.(\d+)\.log$")


@dataclass(frozen=True)
class RunFiles:
    run_id: str
    metrics: str | None  # relative paths, None when missing
    state: str | None
    worker_logs: tuple[tuple[str, int, int], ...]  # (path, node, local rank)
    visualdl: tuple[str, ...] = ()  # VisualDL logs


def fingerprint(path: str | Path) -> Fingerprint | None:
    try:
        stat = os.stat(path)  # noqa: PTH116 - thousands per collect; no Path objects
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def read(path: str) -> bytes:
    """The file's bytes; a .gz file (a log `clean` compressed) as it was before."""
    with open(path, "rb") as handle:  # noqa: PTH123 - thousands per collect; no pathlib layers
        data = handle.read()
    return gzip.decompress(data) if path.endswith(".gz") else data


def prefetch(paths: Iterable[str]) -> None:
    """Asks the kernel to start reading the files now, all at once: files a sweep wrote
    long ago are often no longer cached, and reading thousands of small files one after
    another then waits on the disk for each (0.35 s for 4,000 files here, 0.08 s so)."""
    if not hasattr(os, "posix_fadvise"):  # not on macOS
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


Listings = dict[str, list[Any]]  # folder -> [its mtime in ns, when it was listed, numbers]
SETTLED_NS = 2_000_000_000  # a listing taken this long after the folder changed is trusted


@dataclass
class Found:
    runs: list[RunFiles]
    prints: dict[str, Fingerprint]  # every file found -> its fingerprint
    listings: Listings  # to pass next time
    looked: dict[str, Fingerprint | None]  # metrics and state files stat'ed (None: missing)
    looked_logs: dict[str, dict[str, Fingerprint | None]]  # run id -> log folders and files
    unsettled: set[str]  # runs with a listing that will not be trusted next time


def find(
    sweep_dir: Path,
    run_ids: Iterable[str],
    listings: Listings | None = None,
    ended: Mapping[str, Sequence[int]] | None = None,
    known: Mapping[str, Sequence[int]] | None = None,
    visualdl: Sequence[str] = (),
) -> Found:
    """Each run's files, with what it took to find them.

    A folder whose mtime has not changed since a listing taken well after that mtime
    (so no file can have been added in the same clock tick) is not listed again. The
    folders of a run that had ended (`ended`: run id -> the fingerprint of its final
    state.json) are not even looked at while that state.json is unchanged, nor are
    their worker logs (`known`: path -> the fingerprint seen last time): no worker log
    is written after the launcher is done, and a restart rewrites state.json. Metrics
    files are always looked at: a user may log an evaluation into an ended run. A run
    that never started has no files. VisualDL logs (in the run's `visualdl` folders)
    are found as worker logs are.
    """
    ended = ended or {}
    known = known or {}
    old = listings or {}
    new: Listings = {}
    now = time.time_ns()
    runs = []
    prints: dict[str, Fingerprint] = {}
    looked: dict[str, Fingerprint | None] = {}
    looked_logs: dict[str, dict[str, Fingerprint | None]] = {}
    unsettled: set[str] = set()
    root = str(sweep_dir)

    def look(rel: str, into: dict[str, Fingerprint | None]) -> Fingerprint | None:
        into[rel] = fp = fingerprint(f"{root}/{rel}")
        return fp

    def numbers(rel: str, pattern: re.Pattern[str], done: bool, run_id: str) -> list[int]:
        cached = old.get(rel)
        if done and cached:
            new[rel] = cached
            return list(cached[2])
        if (folder := look(rel, looked_logs.setdefault(run_id, {}))) is None:
            return []
        mtime = folder[1]
        if not (cached and cached[0] == mtime and cached[1] - mtime > SETTLED_NS):
            cached = [mtime, now, _numbered(f"{root}/{rel}", pattern)]
        if cached[1] - mtime <= SETTLED_NS:
            unsettled.add(run_id)
        new[rel] = cached
        return list(cached[2])

    for run_id in run_ids:
        base = rel_run(run_id)
        found: dict[str, str] = {}
        for name in (METRICS, STATE):
            rel = f"{base}/{name}"
            if (fp := look(rel, looked)) is not None:
                prints[rel] = fp
                found[name] = rel
        logs = []
        state = prints.get(f"{base}/{STATE}")
        done = state is not None and tuple(ended.get(run_id, ())) == state
        for node in numbers(f"{base}/logs", _NODE_DIR, done, run_id):
            for rank in numbers(f"{base}/logs/node{node}", _WORKER_LOG, done, run_id):
                rel = f"{base}/logs/node{node}/workerlog.{rank}"
                if done and rel not in known and f"{rel}.gz" in known:
                    rel = f"{rel}.gz"
                last = known.get(rel) if done else None
                fp = (last[0], last[1]) if last else look(rel, looked_logs[run_id])
                if fp is None and not done:
                    rel = f"{rel}.gz"
                    fp = look(rel, looked_logs[run_id])
                if fp is not None:
                    prints[rel] = fp
                    logs.append((rel, node, rank))
        records = []
        for folder in visualdl:
            for number in numbers(f"{base}/{folder}", _VISUALDL, done, run_id):
                rel = f"{base}/{folder}/vdlrecords.{number}.log"
                last = known.get(rel) if done else None
                into = looked_logs.setdefault(run_id, {})
                fp = (last[0], last[1]) if last else look(rel, into)
                if fp is not None:
                    prints[rel] = fp
                    records.append(rel)
        metrics, state_file = found.get(METRICS), found.get(STATE)
        runs.append(RunFiles(run_id, metrics, state_file, tuple(logs), tuple(records)))
    return Found(runs, prints, new, looked, looked_logs, unsettled)


def _numbered(folder: str, pattern: re.Pattern[str]) -> list[int]:
    """The numbers in the names of folder's entries that match pattern, in order."""
    try:
        with os.scandir(folder) as entries:
            return sorted(int(m[1]) for e in entries if (m := pattern.match(e.name)))
    except OSError:
        return []
