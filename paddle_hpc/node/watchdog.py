"""Node 0's stall watchdog: a run whose ranks have written nothing for
launch.stall_timeout seconds is stopped; a packed trial also stops once its state file
says CANCELLED."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from paddle_hpc.core import runstate
from paddle_hpc.core.layout import RunDir
from paddle_hpc.node.signals import stop_group

log = logging.getLogger(__name__)


def last_output(run: RunDir, since: float) -> float:
    """When the run last wrote to a worker log (any node) or to metrics.jsonl; `since`
    when it has written nothing yet."""
    newest = since
    paths = [run.metrics, *run.logs.glob("node*/workerlog.*")]
    for path in paths:
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest


class Watchdog(threading.Thread):
    """Node 0's: stops the run once no rank has written anything for `timeout` seconds
    (launch.stall_timeout), and, for a packed trial (`cancelled_in`: its attempt), once
    its state file says CANCELLED (`paddle-hpc cancel` of one trial of a task).
    `on_stall(last)` runs first, with the time of the last output."""

    def __init__(
        self,
        run: RunDir,
        timeout: int | None,
        pgid: int,
        on_stall: Callable[[float], None],
        cancelled_in: int | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.timeout, self.pgid, self.on_stall = run, timeout, pgid, on_stall
        self.cancelled_in = cancelled_in
        self.started = time.time()
        self.stalled: float | None = None
        self._done = threading.Event()

    def run(self) -> None:
        poll = min(5.0, self.timeout / 4) if self.timeout else 5.0
        if self.cancelled_in is not None:
            poll = min(poll, 1.0)
        while not self._done.wait(poll):
            if self.cancelled_in is not None:
                now = runstate.read(self.run_dir.state)
                if now and now.state == runstate.CANCELLED and now.attempt == self.cancelled_in:
                    stop_group(self.pgid)
                    return
            if self.timeout is None:
                continue
            last = last_output(self.run_dir, self.started)
            if time.time() - last >= self.timeout:
                self.stalled = last
                self.on_stall(last)
                stop_group(self.pgid)
                return

    @property
    def stopped_run(self) -> bool:
        return self.stalled is not None

    def stop(self) -> None:
        self._done.set()
