"""The one rule for a run's state, which every reader applies (`status`, `list`, the
exporter, the search driver, the runs table): from the run's entry in the manifest, its
task's sacct row (Slurm) and its own state file.

Slurm says how a task ended; a run's state file adds what Slurm cannot know: the
attempt, why it ended, a packed trial's own state, a search's PRUNED. A local run has
no task: its state file and whether its process group still runs say it all.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple

from paddle_hpc.core import packing, runstate
from paddle_hpc.core.manifest import RunEntry
from paddle_hpc.core.runstate import NOT_SUBMITTED, WAITING, RunState
from paddle_hpc.node import orphans
from paddle_hpc.slurm import SacctRecord
from paddle_hpc.slurm.charge import Charge


class RunStatus(NamedTuple):  # a NamedTuple: `list` makes one per run of every sweep
    run_id: str
    swept: dict[str, str]
    state: str
    elapsed_s: int | None
    nodes: tuple[str, ...]
    job: str  # '12_3', or '' when not submitted to Slurm
    attempt: int  # the latest attempt's number (1 for the first)
    reason: str = ""
    history: tuple[str, ...] = ()  # how each earlier attempt ended
    charge: Charge | None = None  # what its allocations were charged (backend/charges.py)

    @property
    def ended(self) -> bool:
        return self.state in runstate.ENDED

    @property
    def active(self) -> bool:
        return not self.ended and self.state != NOT_SUBMITTED


def ended_in_submission(path: Path, run: RunEntry) -> bool:
    """Whether the run's state file (at path) says it ended in its current submission:
    a packed trial whose task goes on, or a fed sweep's run whose task leaves the queue."""
    state = runstate.read(path)
    return (
        state is not None
        and state.attempt >= run.attempt
        and state.state != runstate.RUNNING
        and not state.retrying
    )


def run_status(
    run: RunEntry,
    record: SacctRecord | None,
    state: RunState | None,
    runs_here: bool,
    waiting: bool = False,
) -> RunStatus:
    """The run's status: by the local rule when its backend runs its runs here, else by
    its task's sacct row (None: sacct has no row for it yet) and its state file.
    `waiting`: the run is in the sweep's feed, to be submitted when the queue has room."""
    if runs_here:
        return _local_status(run, state)
    if waiting and run.job_id is None:
        return RunStatus(run.run_id, run.swept, WAITING, None, (), "", run.attempt)
    return _slurm_status(run, record, state)


def _slurm_status(run: RunEntry, record: SacctRecord | None, state: RunState | None) -> RunStatus:
    """A run's status from its task's sacct row and its own state file. Pure.

    A task sacct does not list yet (just submitted) is PENDING; a run never submitted
    is NOT_SUBMITTED.
    """
    attempt = run.attempt
    reason = ""
    history: tuple[str, ...] = ()
    if state is not None and state.attempt >= run.attempt:
        attempt, reason, history = state.attempt, state.reason or "", state.history
    if run.job_id is None:
        return RunStatus(run.run_id, run.swept, NOT_SUBMITTED, None, (), "", run.attempt)
    if runstate.pruned(state, run.attempt) and (record is None or record.state != runstate.RUNNING):
        nodes = record.nodes if record is not None else ()
        elapsed = record.elapsed_s if record is not None and not run.packed else None
        return RunStatus(
            run.run_id,
            run.swept,
            runstate.PRUNED,
            elapsed,
            nodes,
            run.job,
            attempt,
            reason,
            history,
        )
    if run.packed:
        shown, reason = packing.trial_state(record.state if record else None, state, run.attempt)
        nodes = record.nodes if record is not None and shown != runstate.PENDING else ()
        elapsed = (
            packing.trial_elapsed(state)
            if state is not None and state.attempt >= run.attempt
            else None
        )
        return RunStatus(
            run.run_id, run.swept, shown, elapsed, nodes, run.job, attempt, reason, history
        )
    if record is None:
        return RunStatus(
            run.run_id, run.swept, runstate.PENDING, None, (), run.job, attempt, reason, history
        )
    return RunStatus(
        run.run_id,
        run.swept,
        _task_ended(record.state, state, run.attempt),
        record.elapsed_s,
        record.nodes,
        run.job,
        attempt,
        reason,
        history,
    )


def _task_ended(slurm_state: str, state: RunState | None, attempt: int) -> str:
    """When the kernel killed a rank, not the whole step, Slurm says the step ran out
    of memory and the job FAILED: the node said which."""
    oom = state is not None and state.attempt >= attempt and state.state == runstate.OUT_OF_MEMORY
    return runstate.OUT_OF_MEMORY if slurm_state == runstate.FAILED and oom else slurm_state


def alive(state: RunState) -> bool:
    """Whether a RUNNING state's process group still runs (when it runs on this host)."""
    if state.pgid is None or state.host != socket.gethostname():
        return True
    return orphans.group_running(state.pgid)


def _local_status(run: RunEntry, state: RunState | None) -> RunStatus:
    """A local run's status from its state file. Pure but for `alive`."""
    if state is None or state.attempt < run.attempt:
        return RunStatus(run.run_id, run.swept, runstate.PENDING, None, (), "", run.attempt)
    shown = state.state
    reason = state.reason or ""
    if state.retrying:
        shown = runstate.PENDING
    elif state.state == runstate.RUNNING and not alive(state):
        shown, reason = runstate.FAILED, "its process is gone"
    return RunStatus(
        run.run_id, run.swept, shown, None, ("localhost",), "", state.attempt, reason, state.history
    )
