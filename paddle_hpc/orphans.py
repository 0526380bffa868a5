"""Ending what Paddle's launcher leaves behind. Node side: standard library only.

Paddle's launcher starts each worker in a session of its own (`os.setsid`), so no
signal to the launcher's process group reaches them; when the launcher dies before it
has stopped them (a SIGTERM early in its start, a SIGKILL), they train on, re-parented
to init. A child subreaper (Linux's `prctl(PR_SET_CHILD_SUBREAPER)`) gets them
instead: once the launcher has exited, whatever it left is a child of this process,
which ends it. Elsewhere (not Linux) this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Makes orphaned descendants of this process its children; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def parent_of(stat: str) -> int:
    """The parent pid in a /proc/<pid>/stat line (the name in parentheses may hold
    spaces and parentheses itself)."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_of((entry / "stat").read_text(errors="replace")) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _reap(pids: list[int]) -> list[int]:
    """The pids that have not exited yet; the ones that have are reaped."""
    left = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if not done:
            left.append(pid)
    return left


def end_children(grace_s: float) -> int:
    """SIGTERM to every child of this process, SIGKILL to those still there after
    grace_s; again while ending them leaves orphans of their own. Returns how many."""
    ended = 0
    for _ in range(10):
        pids = children(os.getpid())
        if not pids:
            break
        ended += len(pids)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
            deadline = time.monotonic() + grace_s
            while (pids := _reap(pids)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not pids:
                break
        _reap(pids)
    return ended
