"""How an attempt ends, and whether its task comes back: the state a node writes when
its launcher exits, is stopped, stalls or was warned by Slurm, and the policy of
retries (sweep.max_retries) and requeues (sweep.max_requeues). The first word on an
attempt's end stands (`settled`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

from paddle_hpc import checkpoint
from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError, SlurmError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.launch import NodeLaunch
from paddle_hpc.slurm.client import SlurmClient
from paddle_hpc.slurm.parse import time_limit_minutes

log = logging.getLogger(__name__)


# A SIGTERM that comes this close to the time limit (counted from when the node process
# began, a little after the job) without Slurm's USR2 before it is the time limit.
LIMIT_SLACK_S = 15.0


NO_CHECKPOINT = "no checkpoint saved in this attempt (paddle_hpc.checkpoint)"

# A grown retry is submitted from the node: without the job's own variables, which
# sbatch and srun would take as the new job's options.
_JOB_VARIABLES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")
RESUBMIT_TIMEOUT_S = 120


def limit_at(began: float | None, config: RunConfig) -> float | None:
    """From when a SIGTERM is Slurm's time limit for a task whose node process began at
    `began`; None without a limit, or outside Slurm."""
    minutes = time_limit_minutes(config.resources.time)
    if began is None or minutes is None:
        return None
    return began + minutes * 60 - LIMIT_SLACK_S


def warning_reason(started: float, config: RunConfig, now: float) -> str:
    """TIMEOUT when Slurm's signal came about resources.signal_before seconds before the
    time limit (give or take a minute: the limit counts from the job's start, a little
    before this node's), PREEMPTED otherwise."""
    minutes = time_limit_minutes(config.resources.time)
    if minutes is None:
        return runstate.PREEMPTED
    limit_at = started + minutes * 60 - config.resources.signal_before
    return runstate.TIMEOUT if now >= limit_at - 60 else runstate.PREEMPTED


def saved_since(run: RunDir, since: float) -> int | None:
    """The step of a checkpoint saved after `since`, if any."""
    found = checkpoint.latest(run.checkpoints)
    if found is None:
        return None
    try:
        written = (found.path / "state.json").stat().st_mtime
    except OSError:
        return None
    return found.step if written >= since - 1 else None


@dataclass(frozen=True)
class WarnedEnd:
    reason: str  # why Slurm's USR2 came: TIMEOUT or PREEMPTED
    stopped_by: int | None  # the signal that then stopped the launcher, if any
    started: float  # when this attempt's launcher started


def ended_after_warning(
    run: RunDir,
    node: NodeLaunch,
    base: RunState,
    returncode: int,
    warned: WarnedEnd,
    config: RunConfig,
    requeue_task: Callable[[str], None],
) -> int:
    """After Slurm's stop signal: a run that exited cleanly with a checkpoint saved in
    this attempt is requeued to resume from it (node 0 asks, up to sweep.max_requeues);
    one that saved none ends TIMEOUT, or PREEMPTED, which Slurm requeues itself. A run
    stopped by a signal meanwhile ends as `stopped_state` said when the signal came, so
    its state is the same whether or not Slurm's KillWait ended this process first."""
    reason, started = warned.reason, warned.started
    step = saved_since(run, started)
    now = runstate.read(run.state)
    if runstate.settled(now, base.attempt) and node.node_rank != 0:
        return 0 if now is not None and now.state != runstate.FAILED else 1
    if now is not None and runstate.pruned(now, base.attempt):  # the pruner's word stands
        raise PaddleHpcError(f"run {run.path.name}: {now.reason or runstate.PRUNED}")
    if returncode == 0 and step is None:  # it ended by itself in the meantime
        return launcher_ended(run, node, base, returncode, None, config, requeue_task)
    left = requeue_left(base, config)
    if step is not None and returncode == 0 and left:
        state = replace(
            base,
            state=reason,
            returncode=returncode,
            retrying=True,
            reason=f"{reason}: saved step {step}; requeued to resume from it",
        )
        if node.node_rank == 0:
            runstate.write(run.state, state)
            assert base.job is not None
            requeue_task(base.job)
        return 0
    if warned.stopped_by is not None:
        stopped = stopped_state(base, warned.stopped_by, reason, config, step)
        state = replace(stopped, returncode=returncode)
    else:
        if step is None:
            why = NO_CHECKPOINT
        elif returncode != 0:
            why = f"the program did not exit cleanly after saving step {step}"
        else:
            why = "no requeues left (sweep.max_requeues)"
        slurm_requeues = reason == runstate.PREEMPTED and left
        state = replace(
            base,
            state=reason,
            returncode=returncode,
            retrying=slurm_requeues,
            reason=f"{reason}: {why}" + ("; Slurm requeues it" if slurm_requeues else ""),
        )
    if node.node_rank == 0 or returncode != 0:
        runstate.write(run.state, state)
    raise PaddleHpcError(f"run {run.path.name}: {state.reason}")


def stopped_state(
    base: RunState, signum: int, warning: str | None, config: RunConfig, saved: int | None = None
) -> RunState:
    """How an attempt ends that is stopped by `signum`: CANCELLED (scancel, `paddle-hpc
    cancel`), or after Slurm's warning (`warning`) as PREEMPTED or TIMEOUT, with the
    step of the checkpoint `saved` in this attempt, if any; Slurm requeues a preempted
    run while requeues are left. This reason is complete because Slurm's KillWait may
    end the node runner before it says more."""
    name = signal.Signals(signum).name
    if warning is None:
        return replace(base, state=runstate.CANCELLED, reason=f"stopped by {name}")
    requeued = warning == runstate.PREEMPTED and requeue_left(base, config)
    why = f"{warning}: stopped by {name} before it exited; " + (
        NO_CHECKPOINT if saved is None else f"it had saved step {saved}"
    )
    return replace(
        base,
        state=warning,
        retrying=requeued,
        reason=why + ("; Slurm requeues it" if requeued else ""),
    )


def stalled_state(base: RunState, config: RunConfig, timeout: int, last: float) -> RunState:
    """FAILED with reason STALLED and the time of the last output; retrying when
    sweep.retry_on and sweep.max_retries allow another attempt."""
    when = datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds")
    retry = base.job is not None and retry_left(config, base.restarts)
    return replace(
        base,
        state=runstate.FAILED,
        reason=f"{runstate.STALLED}: no output for {timeout} s; the last at {when}",
        retrying=retry,
    )


def idle_state(base: RunState, config: RunConfig, node_rank: int, since: float) -> RunState:
    """FAILED with reason IDLE: the node's GPUs did nothing for launch.idle_gpu_timeout;
    retrying as a stalled run is."""
    when = datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds")
    retry = base.job is not None and retry_left(config, base.restarts)
    timeout = config.launch.idle_gpu_timeout
    return replace(
        base,
        state=runstate.FAILED,
        reason=f"{runstate.IDLE}: every GPU of node {node_rank} at 0% for {timeout} s, "
        f"since {when}",
        retrying=retry,
    )


def stalled_ended(
    run: RunDir, base: RunState, returncode: int, requeue_task: Callable[[str], None]
) -> int:
    """A node after its watchdog (stall or idle GPUs) stopped the run: requeue it when
    the state says so."""
    state = runstate.read(run.state)
    if state is not None and state.retrying and base.job is not None:
        requeue_task(base.job)
    raise PaddleHpcError(
        f"run {run.path.name}: stopped, {state.reason if state else 'by a watchdog'} "
        f"(the launcher exited with code {returncode})"
    )


def launcher_ended(
    run: RunDir,
    node: NodeLaunch,
    base: RunState,
    returncode: int,
    stopped_by: int | None,
    config: RunConfig,
    requeue_task: Callable[[str], None],
    oom_killed: int = 0,
    resubmit: Callable[[RunState], str | None] | None = None,
) -> int:
    """Records how the launcher ended; requeues the task for a retry when one is left.
    `oom_killed`: processes of this node the kernel's out-of-memory killer ended meanwhile.
    An OUT_OF_MEMORY run that sweep.retry_grow grows is not requeued, which would ask
    for the same memory: `resubmit` submits it again with more, before the task ends.
    The first word on an attempt's end stands: `paddle-hpc cancel`, or the node that
    failed first (the others are then stopped by srun, which is no news). Node 0's
    COMPLETED is the exception: it speaks for node 0 only, so a node that fails after
    it (its ranks still running when node 0's ended) makes the attempt FAILED."""
    now = runstate.read(run.state)
    said = now.state if now is not None and runstate.settled(now, base.attempt) else None
    failed_after_node0 = said == runstate.COMPLETED and returncode != 0 and stopped_by is None
    if said is not None and not failed_after_node0:
        returncode = returncode or (0 if said == runstate.COMPLETED else 1)
    elif stopped_by is not None:
        state = stopped_state(base, stopped_by, None, config)
        runstate.write_unless_ended(run.state, replace(state, returncode=returncode))
        returncode = returncode or 1
    elif returncode != 0 or node.node_rank == 0:
        # Node 0 records success; the node that failed records the failure, since srun
        # (--kill-on-bad-exit) may end node 0 before it learns of it.
        ended = runstate.COMPLETED if returncode == 0 else runstate.FAILED
        state = replace(base, state=ended, returncode=returncode)
        if returncode != 0 and oom_killed:
            state = out_of_memory(state, node.node_rank, oom_killed, config)
        retry, grow = retried(config, base, state.state, resubmit is not None)
        if retry:
            how = "resubmitted with more (sweep.retry_grow)" if grow else "requeued"
            state = replace(state, retrying=True, reason=f"{how} for another attempt")
        over = runstate.COMPLETED if returncode != 0 else None  # node 0's, for node 0 only
        if runstate.write_unless_ended(run.state, state, over) and retry:
            assert base.job is not None
            if not grow:
                requeue_task(base.job)
            elif (failed := resubmit(state) if resubmit else None) is not None:
                why = f"{state.state}: its retry with more could not be submitted: {failed}"
                runstate.write(run.state, replace(state, retrying=False, reason=why))
    if returncode != 0:
        raise PaddleHpcError(
            f"run {run.path.name}: paddle.distributed.launch exited with code {returncode} "
            f"on node {node.node_rank}; see {node.log_dir}/workerlog.*"
        )
    return 0


def out_of_memory(state: RunState, node_rank: int, killed: int, config: RunConfig) -> RunState:
    asked = config.resources.mem or "the partition's default"
    return replace(
        state,
        state=runstate.OUT_OF_MEMORY,
        reason=f"{runstate.OUT_OF_MEMORY}: the out-of-memory killer ended {killed} process(es) "
        f"on node {node_rank}, past resources.mem ({asked}) per node",
    )


def fail_to_start(run: RunDir, node_rank: int, state: RunState, reason: str) -> NoReturn:
    """An attempt that cannot start: FAILED, and no retry (it would fail the same way).
    The first node to say so is heard; the others only raise."""
    if node_rank == 0 or not runstate.settled(runstate.read(run.state), state.attempt):
        runstate.write(run.state, replace(state, reason=reason))
    raise PaddleHpcError(f"run {run.path.name}: {reason}")


# End states a node sees itself (its launcher failed), and so requeues its task for.
IN_JOB = frozenset({runstate.FAILED, runstate.OUT_OF_MEMORY})


def requeues_allowed(config: RunConfig) -> int:
    """How often a task may come back: a retry after a failure, or a requeue after Slurm's
    stop signal, a preemption or a node failure."""
    return config.sweep.max_retries + config.sweep.max_requeues


def requeue_left(base: RunState, config: RunConfig) -> bool:
    """Whether this attempt, a Slurm task, may come back once more."""
    return base.job is not None and base.restarts < requeues_allowed(config)


def retried(config: RunConfig, base: RunState, state: str, resubmits: bool) -> tuple[bool, bool]:
    """Whether an attempt of a Slurm task that failed as `state` is retried, and whether
    by a grown submission (`resubmits`: the node can submit one) rather than a requeue.
    Each grown retry is a submission of its own: counted by the earlier attempts."""
    if state == runstate.COMPLETED or base.job is None:
        return False, False
    if resubmits and grows(config, state):
        grow = base.history.count(state) < config.sweep.max_retries
        return grow, grow
    return retry_left(config, base.restarts, state), False


def grows(config: RunConfig, state: str) -> bool:
    """Whether an attempt that ended `state` is retried with more memory, not requeued
    with the same: OUT_OF_MEMORY in sweep.retry_on, and sweep.retry_grow.mem above 1."""
    sweep = config.sweep
    oom = runstate.OUT_OF_MEMORY
    return state == oom and oom in sweep.retry_on and sweep.retry_grow.mem > 1


def resubmit_grown(sweep_dir: Path, run_id: str, job: str, state: RunState) -> str | None:
    """Submits the run again as its next attempt, grown (`paddle-hpc retry`'s rule), from
    this node while its task still runs; None, or why it could not."""
    argv = [sys.executable, "-m", "paddle_hpc.retry", str(sweep_dir), "--ended"]
    argv.append(f"{run_id}:{job}:{state.attempt}:{state.state}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_JOB_VARIABLES)}
    try:
        done = subprocess.run(  # noqa: S603 - no shell; argv from this package
            argv, env=env, capture_output=True, text=True, timeout=RESUBMIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    log.info("run %s: %s", run_id, done.stdout.strip())
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()[-500:]


def retry_left(config: RunConfig, restarts: int, state: str = runstate.FAILED) -> bool:
    """Whether an attempt that ended `state` in its task is retried in it (requeued)."""
    return state in IN_JOB & set(config.sweep.retry_on) and restarts < config.sweep.max_retries


def requeue(client: SlurmClient, job: str) -> None:
    """Asks Slurm to start this task again. Another node may have asked first: fine."""
    try:
        client.requeue(job)
    except SlurmError as exc:
        log.warning("requeue of %s: %s", job, exc.slurm_message)
