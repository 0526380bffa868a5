"""A run's attempts on a node: what an attempt is allowed, which Slurm task it is, and
the files of the attempt before it moved to `attempts/<K>/` (metrics carried over up
to the checkpoint the new attempt resumes from)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paddle_hpc import checkpoint
from paddle_hpc.core import layout, runstate
from paddle_hpc.core.errors import SlurmError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.node.image_digest import ImageId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One attempt of a run on this node, and what its task lets it do."""

    number: int
    restarts: int  # earlier attempts in this submission: Slurm's requeues, in-task reruns
    requeue_task: Callable[[str], None]  # asks for Slurm task `job` to run again
    # submits the run again, grown by sweep.retry_grow, from its state; says why not
    resubmit: Callable[[RunState], str | None] | None = None
    devices: str | None = None  # a packed trial's GPUs
    cancellable: bool = False  # a packed trial: stops once its state file says CANCELLED
    image: ImageId | None = None  # the container image as submitted
    began: float | None = None  # when the task's node process began (None: not in Slurm)


def slurm_job(env: Mapping[str, str]) -> str | None:
    """This task as '12_3' (array job id and task), the convention of the runs table."""
    if "SLURM_ARRAY_JOB_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '0')}"
    return env.get("SLURM_JOB_ID")


def keep_earlier_attempt(
    run: RunDir,
    node: int,
    attempt: int,
    job: str | None,
    ended_before: Callable[[str], str | None],
) -> tuple[str, ...]:
    """Moves what an earlier attempt left on this node to `attempts/<K>/` (node 0: its
    state and metrics files too), so that attempt `attempt` (of Slurm task `job`)
    starts clean. Node 0 returns the run's history: how each earlier attempt ended."""
    logs = run.node_logs(node)
    if logs.is_dir():
        try:
            earlier = int((logs / layout.ATTEMPT_MARK).read_text(encoding="ascii"))
        except (OSError, ValueError):
            earlier = max(1, attempt - 1)
        if earlier != attempt:
            target = run.attempt(earlier).node_logs(node)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            logs.rename(target)
    if node != 0:
        return ()
    state = runstate.read(run.state)
    if state is None or state.attempt == attempt:
        return state.history if state is not None else ()
    folder = run.attempt(state.attempt)
    folder.path.mkdir(parents=True, exist_ok=True)
    for path, kept in ((run.metrics, folder.metrics), (run.state, folder.state)):
        if path.exists():
            path.replace(kept)
    if (latest := checkpoint.latest(run.checkpoints)) is not None:
        carry_metrics(folder.metrics, run.metrics, latest.step)
    return (*state.history, ended_as(state, job, ended_before))


def ended_as(state: RunState, job: str | None, ended_before: Callable[[str], str | None]) -> str:
    """How an earlier attempt ended: its own state's word (STALLED or IDLE for one a
    watchdog stopped).
    Slurm's instead for one that never said (killed outright), and for one that took
    Slurm's SIGTERM for a cancel yet came back in the same task `job`: Slurm ended it
    (a node failure), not scancel."""
    requeued = state.state == runstate.CANCELLED and state.job is not None and state.job == job
    if state.state != runstate.RUNNING and not requeued:
        return runstate.stopped_by(state.reason) or state.state
    if state.job is not None:
        try:
            return ended_before(state.job) or runstate.UNKNOWN
        except SlurmError as exc:
            log.warning("how attempt %d ended: %s", state.attempt, exc.slurm_message)
    return runstate.UNKNOWN


def carry_metrics(earlier: Path, into: Path, upto: int) -> None:
    """The rows of an earlier attempt's metrics file up to the checkpoint the new attempt
    resumes from: the run's metrics then hold each step once, as if it had not stopped."""
    try:
        lines = earlier.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return
    kept = []
    for line in lines:
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int) and step <= upto:
            kept.append(line if line.endswith("\n") else line + "\n")
    into.write_text("".join(kept), encoding="utf-8")
