"""A collect's reading spread over the machine's cores: the runs are cut into chunks of
about equal work, one per core, and each chunk but the first is read by a forked
worker process while the collecting process reads the first.

What is left of a collect's reading after the nodes' compact files is per-file Python
work (opening, checking fingerprints, reading headers), which holds the GIL: threads
would not run it at once, processes do. Workers are forked, not spawned: a spawned
one would import pandas and pyarrow again, which takes longer than most collects. A
process with other Python threads running (a notebook's kernel, the exporter) is not
forked, since a thread may hold a lock the child would wait on forever; it reads
every chunk itself."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from paddle_hpc.collect.sources import RunFiles

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
# A forked worker costs its parent the faults of writing to pages they shared, and the
# rows it sends back; on a 2-core machine it paid for 10,000 runs of 100 rows (30,000
# files) and not for 2,000 runs of 1,000 (6,000 files, more rows to send back).
PER_FILE = 64 << 10  # what a file costs besides its bytes, in bytes
LEAST = 512 << 20  # a chunk's least work


def cores() -> int:
    """The cores this process may run on (its affinity: Slurm's and cgroups' cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def run_paths(run: RunFiles) -> list[str]:
    logs = [rel for rel, _, _ in run.worker_logs]
    return [p for p in (run.metrics, run.state) if p] + logs + [*run.visualdl, *run.gpu, *run.then]


def chunks(
    runs: Sequence[RunFiles],
    changed: set[str],
    files: Mapping[str, Sequence[int]],
    workers: int,
) -> list[list[RunFiles]]:
    """The runs with changed files, in order, cut into at most `workers` chunks of
    about equal work (bytes to read, and a cost per file), none less than LEAST."""
    work = [
        (run, sum(files[rel][0] + PER_FILE for rel in run_paths(run) if rel in changed))
        for run in runs
    ]
    work = [(run, weight) for run, weight in work if weight]
    total = sum(weight for _, weight in work)
    count = max(1, min(workers, total // LEAST))
    out: list[list[RunFiles]] = [[] for _ in range(count)]
    done = 0
    for run, weight in work:  # a run goes to the chunk its middle falls in
        out[min(count - 1, (2 * done + weight) * count // (2 * total))].append(run)
        done += weight
    return [chunk for chunk in out if chunk] or [[]]


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def spread(read: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """read(item) for every item, the first here and each other one in a forked child
    when this process can fork safely; in the items' order. A child that fails leaves
    its item to this process, which then reads it (and raises what it raises)."""
    if len(items) < 2 or not can_fork():
        return [read(item) for item in items]
    children: list[tuple[int, int]] = []  # pid, the read end of its pipe
    try:
        for item in items[1:]:
            children.append(_fork(read, item))
        results = [read(items[0])]
        for (pid, fd), item in zip(children, items[1:], strict=True):
            results.append(_result(pid, fd, read, item))
        return results
    finally:
        for pid, fd in children:
            _end(pid, fd)


def _fork(read: Callable[[T], R], item: T) -> tuple[int, int]:
    out, into = os.pipe()
    with warnings.catch_warnings():  # Python 3.12 warns of fork() beside BLAS's threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its result down the pipe, then out without any cleanup
        status = 1
        try:
            os.close(out)
            result = read(item)
            with os.fdopen(into, "wb") as pipe:
                pickle.dump(result, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(into)
    return pid, out


def _result(pid: int, fd: int, read: Callable[[T], R], item: T) -> R:
    try:
        with os.fdopen(os.dup(fd), "rb") as pipe:
            result: R = pickle.load(pipe)
    except (EOFError, pickle.UnpicklingError, OSError):
        log.warning("a collect worker (pid %d) failed; its runs are read here", pid)
        return read(item)
    return result


def _end(pid: int, fd: int) -> None:
    os.close(fd)
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
