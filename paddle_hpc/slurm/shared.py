"""One sacct answer for every watcher of the same jobs on this machine.

Watchers (`sweep -f`, `status -f`, `logs -f`, the search driver, the Hydra launcher's
`wait`) ask Slurm again and again; three terminals watching one sweep would triple
the calls on the controller. Each answer is kept in the user's cache folder, named by
its job list, and a watcher takes one younger than its `max_age` instead of calling;
a lock makes watchers that find it stale wait for the one that calls, then take its
answer. Answers older than an hour are removed as new ones are written. Where the
cache folder cannot be written or locked, each watcher asks for itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.files import cache_dir, lock_file, write_atomic

if TYPE_CHECKING:
    from paddle_hpc.slurm.client import SlurmClient

KEEP_S = 3600.0


def shared_answer(
    job_ids: Sequence[int | str],
    max_age: float,
    ask: Callable[[], str],
    folder: Path | None = None,
) -> str:
    """sacct's text for these jobs: the kept answer when younger than max_age seconds,
    else `ask()`'s, which is kept for the others."""
    folder = folder or cache_dir() / "sacct"
    key = hashlib.sha1(",".join(sorted(map(str, job_ids))).encode()).hexdigest()[:16]
    answer = folder / f"{key}.txt"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = lock_file(folder / f"{key}.lock", "watchers could each call Slurm")
    except (OSError, PaddleHpcError):
        return ask()
    try:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - answer.stat().st_mtime < max_age:
                return answer.read_text(encoding="utf-8")
        text = ask()
        with contextlib.suppress(OSError):  # a full disk: the others ask for themselves
            write_atomic(answer, text)
    finally:
        os.close(fd)
    prune(folder, time.time() - KEEP_S)
    return text


def sacct_text(client: SlurmClient, job_ids: Sequence[int], max_age: float) -> str:
    """sacct's text for the jobs; with max_age, an answer that old that another watcher
    got will do."""
    if max_age > 0 and job_ids:
        return shared_answer(job_ids, max_age, lambda: client.sacct_text(job_ids))
    return client.sacct_text(job_ids)


def prune(folder: Path, before: float) -> None:
    """Removes answers (and their locks) last written before `before`."""
    for path in folder.glob("*.txt"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < before:
                path.unlink()
                path.with_suffix(".lock").unlink()
