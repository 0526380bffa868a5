"""A sweep larger than the user's queue may hold, fed to Slurm as the queue has room.

Before each submission the Slurm backend reads the caps on the user's queued jobs
(slurm/queue.py) and submits what fits now; the other runs wait in the manifest's
`feed` (their state is WAITING) and a detached feeder, one per sweep, submits them as
earlier tasks end. The feeder holds `SWEEP_DIR/feed.lock`, survives logout, and ends
when the feed is empty. It reads the end markers of the runs in the queue (their
state files) every POLL_S seconds and asks Slurm (`squeue --me`) only when one ended,
or every RECHECK_S seconds for a task that ended without one. Killed, it is started
again by `python -m paddle_hpc.backend.feed SWEEP_DIR`, or by any submission to the
sweep (running the sweep command again, `retry`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from paddle_hpc.backend.run_status import ended_in_submission
from paddle_hpc.core.command import console as make_console
from paddle_hpc.core.errors import SlurmError, SubmissionError
from paddle_hpc.core.files import held, holding
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry, load
from paddle_hpc.core.schema import sweep_config
from paddle_hpc.slurm import SlurmClient, queue

log = logging.getLogger(__name__)
POLL_S = 10.0  # how often the feeder reads the queued runs' state files
SETTLE_S = 60.0  # after a run ended, Slurm may still count its task for this long
RECHECK_S = 300.0  # how often the feeder asks Slurm when no run said it ended
LIMITS_KEEP_S = 600.0  # how long the feeder trusts the limits it read
FAILURES = 5  # submissions in a row failing for another reason than the queue's cap


class Fitter:
    """backend/arrays.py's `Fit` by the user's queue caps: the runs that fit now."""

    def __init__(self, client: SlurmClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.clock = client, clock
        self.read_at = -math.inf
        self.enforced = False
        self.associations: list[queue.Association] = []
        self.qos: dict[str, tuple[int | None, int | None]] = {}

    def read_limits(self) -> None:
        if self.clock() - self.read_at < LIMITS_KEEP_S:
            return
        enforce = self.client.show_config().get("AccountingStorageEnforce", "")
        self.enforced = "limits" in enforce or "safe" in enforce
        if self.enforced:
            try:
                self.associations = queue.parse_associations(self.client.associations(user()))
                self.qos = queue.parse_qos(self.client.qos_limits())
            except SlurmError as exc:  # sbatch still refuses what passes a cap
                log.warning("cannot read your queue caps, submitting as if none: %s", exc)
                self.enforced = False
        self.read_at = self.clock()

    def limits(self, manifest: Manifest) -> list[queue.Limits]:
        """What caps each resource shape's jobs."""
        self.read_limits()
        found = []
        for shape in manifest.shapes:
            resources = shape["resources"]
            found.append(
                queue.limits_for(
                    self.associations,
                    self.qos,
                    resources.get("account"),
                    resources.get("qos"),
                    resources.get("partition"),
                )
                if self.enforced
                else queue.Limits("", "", (), ())
            )
        return found

    def __call__(
        self, manifest: Manifest, todo: Sequence[RunEntry], per_task: int
    ) -> tuple[list[RunEntry], tuple[str, ...]]:
        if not todo:
            return [], ()
        limits = self.limits(manifest)
        shapes = sorted({r.shape for r in todo})
        if not any(limits[i].submit for i in shapes):
            return list(todo), ()
        queued = queue.parse_queued(self.client.queued())
        groups = {i: [r for r in todo if r.shape == i] for i in shapes}
        wanted = [(math.ceil(len(groups[i]) / per_task), limits[i]) for i in shapes]
        allowed = queue.tasks_allowed(wanted, queued)
        chosen = {
            r.run_id
            for i, tasks in zip(shapes, allowed, strict=True)
            for r in groups[i][: tasks * per_task]
        }
        named = tuple(sorted({c.named for i in shapes for c in limits[i].submit}))
        return [r for r in todo if r.run_id in chosen], named


def preview(manifest: Manifest, new: Sequence[RunEntry], per_task: int, fit: Fitter) -> str:
    """What the dry run says of the user's queue caps for the runs it would submit."""
    now, caps = fit(manifest, new, per_task)
    running = sorted(
        {c.named for i in {r.shape for r in new} for c in fit.limits(manifest)[i].running}
    )
    said = f"# queue caps: {', '.join(caps) or 'none on queued jobs'}"
    if caps:
        said += f"; {len(now)} run(s) submitted now, {len(new) - len(now)} fed as runs end"
    if running:
        said += f"; running at once: {', '.join(running)}"
    return said


def user() -> str:
    import getpass

    return os.environ.get("USER") or getpass.getuser()


def running(sweep: SweepDir) -> bool:
    """Whether the sweep's feeder runs."""
    return held(sweep.feed_lock)


def start(sweep: SweepDir) -> int | None:
    """Starts the sweep's feeder detached, unless one runs; returns its pid."""
    if running(sweep):
        return None
    with sweep.feed_log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own module, an argv list
            [sys.executable, "-m", "paddle_hpc.backend.feed", str(sweep.path.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the login shell's hangup
        )
    return process.pid


def waiting_note(sweep: SweepDir, manifest: Manifest) -> str | None:
    """What `status` says of the runs waiting for room in the queue."""
    if manifest.feed is None:
        return None
    caps = ", ".join(manifest.feed.limits) or "the queue's cap"
    who = (
        f"its feeder submits them as earlier runs end (log {sweep.feed_log})"
        if running(sweep)
        else "its feeder is not running: "
        f"`python -m paddle_hpc.backend.feed {sweep.path}` resumes it"
    )
    return f"{len(manifest.feed.run_ids)} run(s) WAITING for room in the queue ({caps}); {who}"


def is_queue_cap(error: SubmissionError) -> bool:
    """Whether sbatch refused for the user's queue cap (which frees up by itself)."""
    text = str(error)
    return "submit limit" in text or "MaxSubmitJob" in text


class Feeder:
    def __init__(
        self,
        sweep: SweepDir,
        client: SlurmClient,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sweep, self.client, self.say, self.clock = sweep, client, say, clock
        self.fit = Fitter(client, clock)
        self.done: set[tuple[str, int]] = set()  # (run, attempt) whose end was read
        self.asked = self.last_end = -math.inf
        self.failures = 0

    def look(self) -> bool:
        """One look: reads new ends, submits what fits if it is time; False when the
        feed is empty."""
        manifest = load(self.sweep.path)
        if manifest.feed is None:
            return False
        for run in manifest.runs:
            key = (run.run_id, run.attempt)
            if (
                run.job_id is not None
                and key not in self.done
                and ended_in_submission(self.sweep.run(run.run_id).state, run)
            ):
                self.done.add(key)
                self.last_end = self.clock()
        now = self.clock()
        since_end, since_ask = now - self.last_end, now - self.asked
        if (
            self.last_end > self.asked
            or (since_end < SETTLE_S and since_ask >= POLL_S)
            or (since_ask >= RECHECK_S)
        ):
            self.asked = now
            self.submit(manifest)
        return True

    def submit(self, manifest: Manifest) -> None:
        from paddle_hpc.backend.arrays import submit

        assert manifest.feed is not None
        config = sweep_config(manifest.feed.sweep)
        try:
            saved, arrays = submit(self.sweep.path, self.client, config, [], self.fit)
        except SubmissionError as exc:
            if is_queue_cap(exc):
                self.say(f"the queue is full after all, waiting: {exc}")
                return
            self.failures += 1
            self.say(f"submitting failed ({self.failures} in a row): {exc}")
            if self.failures >= FAILURES:
                raise
            return
        self.failures = 0
        if arrays:
            runs = sum(len(a.run_ids) for a in arrays)
            left = len(saved.feed.run_ids) if saved.feed else 0
            jobs = ", ".join(str(a.job_id) for a in arrays)
            self.say(f"submitted {runs} run(s) as array job(s) {jobs}; {left} waiting")

    def run(self, sleep: Callable[[float], None] = time.sleep) -> int:
        while self.look():
            sleep(POLL_S)
        self.say("every run of the sweep is submitted")
        return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m paddle_hpc.backend.feed", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    sweep = SweepDir(args.sweep_dir.resolve())
    console = make_console()

    def say(text: str) -> None:
        console.print(f"[{time.strftime('%H:%M:%S')}] {text}", markup=False)

    with holding(sweep.feed_lock) as lock:
        if lock is None:
            say(f"another feeder feeds this sweep ({sweep.feed_lock}); leaving it")
            return 0
        return Feeder(sweep, SlurmClient(), say).run()


if __name__ == "__main__":
    from paddle_hpc.core.command import run

    sys.exit(run(main, sys.argv[1:]))
