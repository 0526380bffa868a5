"""An ended run's logs in one file: `runs/<run_id>/logs.zip`.

`clean` moves every log folder of an ended run (each node's worker logs, launcher log
and environment, of every attempt) and its Slurm output files into the run's archive,
so that an ended run costs a few inodes on Lustre or GPFS instead of dozens. Members
are named as the files would be once a later attempt started: the logs of attempt K
are `attempts/K/logs/node<N>/...`, whichever attempt was current, so a retry moves
nothing; Slurm's output files are `slurm/<job>_<task>_<node>_log.out|err`.

Readers see a member through a path that goes through the archive as if it were a
folder, `runs/<id>/logs.zip/attempts/1/logs/node0/workerlog.0`: `read` and
`fingerprint` take such paths (the archive's own size and mtime stand for its
members'), and `entries` lists such a folder.
"""

from __future__ import annotations

import gzip
import os
import re
import zipfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from paddle_hpc.core.layout import ATTEMPTS, LOGS, LOGS_ARCHIVE

_INSIDE = f"/{LOGS_ARCHIVE}/"
_ATTEMPT_LOGS = re.compile(rf"^{ATTEMPTS}/(\d+)/{LOGS}/")


def split(path: str) -> tuple[str, str] | None:
    """('runs/r1/logs.zip', 'attempts/1/logs/node0/workerlog.0') for a path through an
    archive, else None."""
    archive, found, member = path.partition(_INSIDE)
    return (archive + "/" + LOGS_ARCHIVE, member) if found else None


@lru_cache(maxsize=64)
def _names(archive: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    with zipfile.ZipFile(archive) as opened:
        return tuple(opened.namelist())


def names(archive: str | Path) -> tuple[str, ...]:
    """The archive's member names; () when there is none."""
    try:
        stat = os.stat(archive)  # noqa: PTH116 - thousands per collect
        return _names(str(archive), stat.st_size, stat.st_mtime_ns)
    except (OSError, zipfile.BadZipFile):
        return ()


def read(path: str) -> bytes:
    """A member's bytes, by its path through the archive; OSError when missing."""
    where = split(path)
    if where is None:
        raise FileNotFoundError(path)
    try:
        with zipfile.ZipFile(where[0]) as opened:
            return opened.read(where[1])
    except (KeyError, zipfile.BadZipFile) as exc:
        raise FileNotFoundError(f"{path}: {exc}") from exc


def fingerprint(path: str) -> tuple[int, int] | None:
    """A member's or a folder's (size, mtime) are its archive's: members never change."""
    where = split(path)
    if where is None:
        return None
    inside = names(where[0])
    if where[1] not in inside and not any(n.startswith(where[1] + "/") for n in inside):
        return None
    stat = os.stat(where[0])  # noqa: PTH116
    return stat.st_size, stat.st_mtime_ns


def entries(folder: str) -> list[str]:
    """The names directly in a folder through an archive (files and folders)."""
    where = split(folder.rstrip("/") + "/")
    if where is None:
        return []
    prefix = where[1]
    found = {n[len(prefix) :].split("/", 1)[0] for n in names(where[0]) if n.startswith(prefix)}
    return sorted(found - {""})


def latest_logs(run_dir: str | Path) -> str | None:
    """'attempts/K/logs': the member folder of the latest attempt the run's archive
    holds, which is what `logs/` held when `clean` ran."""
    archived = names(f"{run_dir}/{LOGS_ARCHIVE}")
    attempts = [int(m[1]) for n in archived if (m := _ATTEMPT_LOGS.match(n))]
    return f"{ATTEMPTS}/{max(attempts)}/{LOGS}" if attempts else None


def add(archive: Path, files: Iterable[tuple[Path, str]]) -> int:
    """Adds the files (path, member name) to the archive, compressed, and removes them;
    the archive is replaced whole and atomically, so a reader never sees half of it.
    Returns the bytes saved."""
    files = list(files)
    if not files:
        return 0
    before = archive.stat().st_size if archive.exists() else 0
    tmp = archive.with_name(f".{archive.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as target:
            if before:
                with zipfile.ZipFile(archive) as old:
                    taken = {member for _, member in files}
                    for info in old.infolist():
                        if info.filename not in taken:
                            target.writestr(info, old.read(info))
            for path, member in files:
                if path.suffix == ".gz":  # a log an earlier `clean` compressed in place
                    target.writestr(member, gzip.decompress(path.read_bytes()))
                else:
                    target.write(path, member)
        tmp.replace(archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    saved = before + sum(path.stat().st_size for path, _ in files) - archive.stat().st_size
    for path, _ in files:
        path.unlink()
    return saved
