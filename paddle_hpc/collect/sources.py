"""The files a sweep's runs wrote, each with a fingerprint (size, mtime) to tell change.

Per run, under `runs/<run_id>/`: `metrics.jsonl`, `state.json`, the worker logs
`logs/node<N>/workerlog.<R>`, each node's GPU samples `gpu-node<N>.jsonl`, and VisualDL
logs `<folder>/vdlrecords.<N>.log` in the folders `collect.visualdl` names.
Paths are kept relative to the sweep directory.
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

from paddle_hpc.core import archive
from paddle_hpc.core.layout import LOGS, LOGS_ARCHIVE, METRICS, STATE, THEN, gpu_samples, rel_run

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
    gpu: tuple[str, ...] = ()  # its nodes' GPU samples (node/gpu.py)
    then: tuple[str, ...] = ()  # its steps' metrics files (then/<step>/metrics.jsonl)


def fingerprint(path: str | Path) -> Fingerprint | None:
    """(size, mtime); a path through a run's archive (core/archive.py) has its archive's."""
    try:
        stat = os.stat(path)  # noqa: PTH116 - thousands per collect; no Path objects
    except OSError:
        return archive.fingerprint(str(path))
    return stat.st_size, stat.st_mtime_ns


def read(path: str) -> bytes:
    """The file's bytes: a .gz file (compressed by an earlier `clean`) as it was
    before, a path through a run's archive as the member's."""
    if archive.split(path) is not None:
        return archive.read(path)
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
    steps: Sequence[str] = (),
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
    are found as worker logs are. The `steps` (sweep.then) of every run are looked at,
    for they run after it ended.
    """
    finder = _Finder(str(sweep_dir), listings or {}, ended or {}, known or {})
    runs = [finder.run_files(run_id, visualdl, steps) for run_id in run_ids]
    return Found(
        runs, finder.prints, finder.new, finder.looked, finder.looked_logs, finder.unsettled
    )


class _Finder:
    """What `find` found so far, and what it looked at to find it."""

    def __init__(
        self,
        root: str,
        old: Listings,
        ended: Mapping[str, Sequence[int]],
        known: Mapping[str, Sequence[int]],
    ) -> None:
        self.root, self.old, self.ended, self.known = root, old, ended, known
        self.now = time.time_ns()
        self.new: Listings = {}
        self.prints: dict[str, Fingerprint] = {}
        self.looked: dict[str, Fingerprint | None] = {}
        self.looked_logs: dict[str, dict[str, Fingerprint | None]] = {}
        self.unsettled: set[str] = set()

    def look(self, rel: str, into: dict[str, Fingerprint | None]) -> Fingerprint | None:
        into[rel] = fp = fingerprint(f"{self.root}/{rel}")
        return fp

    def numbers(self, rel: str, pattern: re.Pattern[str], done: bool, run_id: str) -> list[int]:
        """The numbers of a folder's files (node<N>, workerlog.<N>), listed again only
        when the folder may have changed since its last listing."""
        cached = self.old.get(rel)
        if done and cached:
            self.new[rel] = cached
            return list(cached[2])
        if (folder := self.look(rel, self.looked_logs.setdefault(run_id, {}))) is None:
            return []
        mtime = folder[1]
        if not (cached and cached[0] == mtime and cached[1] - mtime > SETTLED_NS):
            cached = [mtime, self.now, _numbered(f"{self.root}/{rel}", pattern)]
        if cached[1] - mtime <= SETTLED_NS:
            self.unsettled.add(run_id)
        self.new[rel] = cached
        return list(cached[2])

    def run_files(self, run_id: str, visualdl: Sequence[str], steps: Sequence[str]) -> RunFiles:
        base = rel_run(run_id)
        found: dict[str, str] = {}
        then = []  # the steps' metrics files; their state files are looked at for `check`
        for step in steps:
            for name in (METRICS, STATE):
                rel = f"{base}/{THEN}/{step}/{name}"
                if (fp := self.look(rel, self.looked)) is not None:
                    self.prints[rel] = fp
                    then += [rel] if name == METRICS else []
        for name in (METRICS, STATE):
            rel = f"{base}/{name}"
            if (fp := self.look(rel, self.looked)) is not None:
                self.prints[rel] = fp
                found[name] = rel
        state = self.prints.get(f"{base}/{STATE}")
        done = state is not None and tuple(self.ended.get(run_id, ())) == state
        logs = self.worker_logs(run_id, base, done)
        records = []
        for folder in visualdl:
            for number in self.numbers(f"{base}/{folder}", _VISUALDL, done, run_id):
                rel = f"{base}/{folder}/vdlrecords.{number}.log"
                last = self.known.get(rel) if done else None
                into = self.looked_logs.setdefault(run_id, {})
                fp = (last[0], last[1]) if last else self.look(rel, into)
                if fp is not None:
                    self.prints[rel] = fp
                    records.append(rel)
        gpu = self.gpu_samples(run_id, base, done, sorted({node for _, node, _ in logs}))
        metrics, state_file = found.get(METRICS), found.get(STATE)
        return RunFiles(run_id, metrics, state_file, tuple(logs), tuple(records), gpu, tuple(then))

    def gpu_samples(self, run_id: str, base: str, done: bool, nodes: list[int]) -> tuple[str, ...]:
        """The GPU samples of the nodes that wrote worker logs; of an ended run, the ones
        seen before it ended (nothing samples after the launcher is done)."""
        found = []
        for node in nodes:
            rel = f"{base}/{gpu_samples(node)}"
            last = self.known.get(rel) if done else None
            fp = (last[0], last[1]) if last else None
            if not done:
                fp = self.look(rel, self.looked_logs.setdefault(run_id, {}))
            if fp is not None:
                self.prints[rel] = fp
                found.append(rel)
        return tuple(found)

    def worker_logs(self, run_id: str, base: str, done: bool) -> list[tuple[str, int, int]]:
        """(path, node, local rank) of each worker log, compressed or archived ones too."""
        logs = []
        folder = f"{base}/{LOGS}"
        nodes = self.numbers(folder, _NODE_DIR, done, run_id)
        if not nodes and (inside := archive.latest_logs(f"{self.root}/{base}")) is not None:
            folder = f"{base}/{LOGS_ARCHIVE}/{inside}"  # `clean` archived them
            nodes = self.numbers(folder, _NODE_DIR, done, run_id)
        for node in nodes:
            for rank in self.numbers(f"{folder}/node{node}", _WORKER_LOG, done, run_id):
                rel = f"{folder}/node{node}/workerlog.{rank}"
                if done and rel not in self.known and f"{rel}.gz" in self.known:
                    rel = f"{rel}.gz"
                last = self.known.get(rel) if done else None
                fp = (last[0], last[1]) if last else self.look(rel, self.looked_logs[run_id])
                if fp is None and not done:
                    rel = f"{rel}.gz"
                    fp = self.look(rel, self.looked_logs[run_id])
                if fp is not None:
                    self.prints[rel] = fp
                    logs.append((rel, node, rank))
        return logs


def _numbered(folder: str, pattern: re.Pattern[str]) -> list[int]:
    """The numbers in the names of folder's entries that match pattern, in order."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries]
    except OSError:
        names = archive.entries(folder)
    return sorted(int(m[1]) for name in names if (m := pattern.match(name)))
