"""The node runner's signals: Slurm's SIGUSR2 warns that a stop is near (the time
limit, or a preemption); SIGTERM and SIGINT stop (scancel, `paddle-hpc cancel`, the
limit itself) and are passed on to the launcher's process group, SIGKILL after
STOP_GRACE_S."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from paddle_hpc.core import runstate

log = logging.getLogger(__name__)


STOP_GRACE_S = 10.0


class Signals:
    """This process's SIGTERM, SIGINT and SIGUSR2, passed to every listener registered:
    the one run a node runner runs, or each trial a packed task runs at the moment.
    Handlers live in the main thread, installed as the task's first step: Slurm sends
    its stop signal up to a minute before it is due, so it can come while the task is
    still starting. A USR2 stays said: a listener registered after it hears it at once."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.RLock()  # the handler runs in a thread that may hold it
        self._previous: dict[int, Any] = {}
        self.warned = False  # Slurm's USR2 came

    def install(self) -> bool:
        """Installs the handlers (main thread only); False when that is not possible or
        they already are."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return False
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        self.warned = False

    def add(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
            warned = self.warned
        if warned:
            listener(signal.SIGUSR2)

    def remove(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        with self._lock:
            self.warned = self.warned or signum == signal.SIGUSR2
            listeners = list(self._listeners)
        for listener in listeners:
            listener(signum)


SIGNALS = Signals()


class Stop:
    """Passes SIGTERM and SIGINT on to the launcher's process group (SIGKILL after
    STOP_GRACE_S), then calls `stopped(signum)`. Slurm's USR2 (the time limit is near,
    or a preemption) is not passed on: it calls `on_warning`, which writes the run's stop
    request and returns why (TIMEOUT or PREEMPTED), and the launcher ignores it. A
    SIGTERM with no USR2 before it, from `limit_at` on, is the time limit: TIMEOUT."""

    def __init__(
        self,
        on_warning: Callable[[], str] = lambda: runstate.PREEMPTED,
        stopped: Callable[[int], None] = lambda signum: None,
        limit_at: float | None = None,
    ) -> None:
        self.signal: int | None = None
        self.warning: str | None = None  # why Slurm's USR2 came (TIMEOUT, PREEMPTED)
        self._on_warning, self._stopped, self._limit_at = on_warning, stopped, limit_at
        self._proc: subprocess.Popen[bytes] | None = None
        self._installed = False

    def __enter__(self) -> Stop:
        self._installed = SIGNALS.install()
        SIGNALS.add(self.on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        SIGNALS.remove(self.on_signal)
        if self._installed:
            SIGNALS.uninstall()

    def watch(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc

    def _past_limit(self) -> bool:
        return self._limit_at is not None and time.time() >= self._limit_at

    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGUSR2:
            if self.warning is None:
                self.warning = self._on_warning()
            return
        if self.warning is None and signum == signal.SIGTERM and self._past_limit():
            self.warning = runstate.TIMEOUT
        first = self.signal is None
        self.signal = signum
        if self._proc is not None and self._proc.poll() is None:
            stop_group(self._proc.pid, signum)
        if first:
            self._stopped(signum)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def stop_group(pgid: int, signum: int = signal.SIGTERM) -> None:
    """signum to the group now, SIGKILL after STOP_GRACE_S."""
    signal_group(pgid, signum)
    timer = threading.Timer(STOP_GRACE_S, signal_group, (pgid, signal.SIGKILL))
    timer.daemon = True
    timer.start()
