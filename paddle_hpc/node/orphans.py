"""Ending what Paddle's launcher leaves behind. Node side: standard library only.

Paddle's launcher starts each worker in a session of its own (`os.setsid`), so no
signal to the launcher's process group reaches them; when the launcher dies before it
has stopped them (a SIGTERM early in its start, a SIGKILL), they train on, re-parented
to init. A child subreaper (Linux's `prctl(PR_SET_CHILD_SUBREAPER)`) gets them
instead: once the launcher has exited, whatever it left is a child of this process,
which ends it. The launcher itself gets SIGTERM when this process dies
(`PR_SET_PDEATHSIG`), so a node runner killed outright leaves no launcher either.
Elsewhere (not Linux) this does nothing.

A packed task runs several launchers at once, one per trial thread, and a trial whose
launcher ends must not end a sibling's. So `Launchers` knows each launcher from its
fork on (starting one and listing the children hold the same lock), and never counts
a process of this one's own session as left behind: every launcher runs in a session
of its own, and so does everything it starts, while what the node runner starts
itself (an image probe, a container's cleanup) runs in its session.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# loaded once, here: a launcher's preexec_fn runs between fork and exec, and a packed
# task forks from several threads, where loading a library could deadlock
_LIBC = _libc()


def _prctl(option: int, value: int) -> bool:
    try:
        return _LIBC is not None and bool(_LIBC.prctl(option, value, 0, 0, 0) == 0)
    except AttributeError:
        return False


def become_subreaper() -> bool:
    """Makes orphaned descendants of this process its children; False where unsupported."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Has this process sent `signum` once its parent is gone (for a child, in
    `preexec_fn`): a launcher whose node runner was killed stops its workers."""
    return _prctl(PR_SET_PDEATHSIG, signum)


def stat_fields(stat: str) -> list[str]:
    """The fields after the name in a /proc/<pid>/stat line (state, ppid, pgrp, ...);
    the name in parentheses may hold spaces and parentheses itself."""
    return stat.rsplit(")", 1)[1].split()


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process here, as its pid and `stat_fields`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields((entry / "stat").read_text(errors="replace"))
        except (OSError, IndexError):
            continue
        if len(fields) > 2:
            yield int(entry.name), fields


def end_groups(pgids: list[int], grace_s: float) -> None:
    """SIGTERM to each process group, SIGKILL to those with a process left after
    grace_s; returns once no group has a running process left."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signum)
        deadline = time.monotonic() + grace_s
        while (pgids := [g for g in pgids if group_running(g)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pgids:
            return


def group_running(pgid: int) -> bool:
    """Whether a process of the group is still running; zombies, which a dead parent
    leaves until init reaps them, do not count (where /proc tells)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc/self/stat").exists():
        return True
    return any(f[2] == str(pgid) and f[0] != "Z" for _, f in processes())


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


class Launchers:
    """The launchers this process runs; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | Path | None,
        preexec_fn: Callable[[], None],
    ) -> subprocess.Popen[bytes]:
        """Starts a launcher in a session of its own, known as one before another
        thread can list this process's children."""
        with self._lock:
            proc = subprocess.Popen(  # noqa: S603
                argv, env=env, cwd=cwd, start_new_session=True, preexec_fn=preexec_fn
            )
            self._pids.add(proc.pid)
        return proc

    def ended(self, pid: int) -> None:
        """The launcher `pid` has exited (and been waited for)."""
        with self._lock:
            self._pids.discard(pid)

    def left(self) -> list[int]:
        """The children of this process that launchers left: neither a launcher still
        running nor in this process's session."""
        me, session = str(os.getpid()), str(os.getsid(0))
        with self._lock:
            return [
                pid
                for pid, fields in processes()
                if fields[1] == me and fields[3] != session and pid not in self._pids
            ]

    def end_left(self, grace_s: float) -> int:
        """SIGTERM to what launchers left, SIGKILL to those still there after grace_s;
        again while ending them leaves orphans of their own. Returns how many."""
        ended = 0
        for _ in range(10):
            pids = self.left()
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
