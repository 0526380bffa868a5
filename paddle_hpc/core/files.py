"""Writing files other processes read: a temp file in the same folder, then os.replace;
and the lock files that let one writer at a time change them."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import IO, Any

from paddle_hpc.core.errors import PaddleHpcError

_NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


def current_umask() -> int:
    """The process umask, read without changing it: os.umask can only be read by setting
    it, which would race with files created meanwhile in other threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _umask_by_setting()


@cache
def _umask_by_setting() -> int:
    """Only where /proc has no Umask line (not Linux >= 4.7): once, and cached."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_beside(path: Path) -> tuple[int, Path]:
    """An open temp file next to path, with the mode a new file gets (0666 less the umask),
    not mkstemp's 0600: sweep directories are shared with a group."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~current_umask())
    return fd, Path(tmp)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def cache_dir() -> Path:
    """The user's cache folder of paddle_hpc ($XDG_CACHE_HOME/paddle_hpc)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paddle_hpc"


def lock_file(path: Path, what: str) -> int:
    """An exclusive fcntl (POSIX) lock of `path`, created if missing, which NFS and Lustre
    (mounted with `flock`) carry to every host; close the returned fd to release it.
    On a filesystem without locks, an error that says what `what` could lose."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in _NO_LOCKS:
            raise
        raise PaddleHpcError(
            f"{path.parent}: its filesystem does not lock files ({exc.strerror}), and "
            f"{what}. Put sweeps on a filesystem that does (sweep.dir; Lustre: mounted "
            "with -o flock)."
        ) from exc
    return fd


def held(path: Path) -> bool:
    """Whether a process holds `path` with `holding` (a detached driver or feeder)."""
    try:
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


@contextlib.contextmanager
def holding(path: Path) -> Iterator[IO[str] | None]:
    """`path` held, with this process's pid in it, or None when another process holds it."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
