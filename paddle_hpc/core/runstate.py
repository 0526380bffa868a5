"""`runs/<run_id>/state.json`: the one record a node writes and every reader reads.

Node 0 writes RUNNING when its launcher starts and COMPLETED or FAILED when it ends; a
node whose launcher fails writes FAILED (srun may end node 0 before it learns of it).
`cancel` writes CANCELLED for a local run. Written atomically; read tolerantly: a
missing, partly written or foreign file reads as None, unknown keys are ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from paddle_hpc.core.files import lock_file, write_json_atomic
from paddle_hpc.core.layout import STATE_LOCK

# Every state name paddle_hpc spells: Slurm's own, and its additions.
PENDING, RUNNING, REQUEUED = "PENDING", "RUNNING", "REQUEUED"
COMPLETED, FAILED, CANCELLED = "COMPLETED", "FAILED", "CANCELLED"
TIMEOUT, PREEMPTED, OUT_OF_MEMORY = "TIMEOUT", "PREEMPTED", "OUT_OF_MEMORY"
NODE_FAIL, BOOT_FAIL, DEADLINE = "NODE_FAIL", "BOOT_FAIL", "DEADLINE"
NOT_SUBMITTED = "NOT_SUBMITTED"  # in the manifest, never submitted
WAITING = "WAITING"  # in the sweep's feed: submitted when the queue has room
UNKNOWN = "UNKNOWN"  # an earlier attempt's end that neither it nor Slurm recorded
STALLED = "STALLED"  # how the reason of a run the stall watchdog stopped begins
IDLE = "IDLE"  # how the reason of a run the idle-GPU watchdog stopped begins
WATCHDOGS = (STALLED, IDLE)
PRUNED = "PRUNED"  # a search's run its pruner stopped

# After these Slurm never runs a task again (unless requeued).
SLURM_ENDED = frozenset(
    {
        BOOT_FAIL,
        CANCELLED,
        COMPLETED,
        DEADLINE,
        FAILED,
        NODE_FAIL,
        OUT_OF_MEMORY,
        PREEMPTED,
        TIMEOUT,
    }
)
ENDED = SLURM_ENDED | {PRUNED}  # a run in one of these has ended
# The words a state file says only once the run's launchers have exited, so its logs no
# longer change; CANCELLED, TIMEOUT and PREEMPTED are written at the signal, while the
# ranks may still write.
LOGS_FINAL = frozenset({COMPLETED, FAILED, PRUNED})


@dataclass(frozen=True)
class RunState:
    state: str  # RUNNING, or how the attempt ended (one of ENDED)
    time: str = ""  # when it was written, ISO 8601 UTC
    attempt: int = 1  # 1 for the first run of this run id; each retry adds one
    job: str | None = None  # Slurm's array task as '12_3'; None for a local run
    restarts: int = 0  # Slurm requeues of this submission (SLURM_RESTART_COUNT)
    returncode: int | None = None  # paddle.distributed.launch's exit code
    node: int | None = None  # the node that wrote the state
    mode: str | None = None  # 'gpu' or 'cpu'
    master: str | None = None  # ip:port
    host: str | None = None  # where the launcher runs
    pgid: int | None = None  # its process group there
    retrying: bool = False  # FAILED, and requeued for another attempt
    reason: str | None = None
    history: tuple[str, ...] = ()  # how each earlier attempt ended, oldest first
    started: str = ""  # when this attempt's launcher started, ISO 8601 UTC
    devices: str | None = None  # a packed trial's GPUs, as Slurm names them ('0', '2,3')


_FIELDS = frozenset(f.name for f in fields(RunState))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def from_dict(data: Any) -> RunState | None:
    """A RunState from what json.loads gave, or None when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        return None
    known = {k: v for k, v in data.items() if k in _FIELDS}
    if "job" not in known and data.get("job_id") is not None:  # written before 'job'
        known["job"] = str(data["job_id"])
    history = known.pop("history", ())
    known["history"] = tuple(str(h) for h in history) if isinstance(history, list) else ()
    try:
        return RunState(**known)
    except TypeError:
        return None


def parse(text: str | bytes) -> RunState | None:
    try:
        return from_dict(json.loads(text))
    except ValueError:
        return None


def pruned(state: RunState | None, attempt: int) -> bool:
    """Whether a run's state file says its current attempt was pruned."""
    return state is not None and state.attempt >= attempt and state.state == PRUNED


def study_state(state: str, ended: bool, objective: float | None) -> str:
    """A search trial's state in its Optuna study, from its run's: COMPLETE once the run
    completed with its objective logged (not NaN), PRUNED, FAIL for any other end."""
    if not ended:
        return "RUNNING"
    if state == PRUNED:
        return "PRUNED"
    if state == COMPLETED and objective is not None and objective == objective:
        return "COMPLETE"
    return "FAIL"


def read(path: Path) -> RunState | None:
    try:
        return parse(path.read_bytes())
    except OSError:
        return None


def write(path: Path, state: RunState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # a run not started has no folder yet
    write_json_atomic(path, asdict(replace(state, time=state.time or now())))


def settled(state: RunState | None, attempt: int) -> bool:
    """Whether `state` already says how `attempt` ended."""
    return state is not None and state.attempt == attempt and state.state != RUNNING


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The run's state lock, a file beside its state file (fcntl, so that it holds
    across the nodes of a shared filesystem too): one writer of an end at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)  # a run not started has no folder yet
    fd = lock_file(path.with_name(STATE_LOCK), "a run's end could be written twice")
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def write_unless_ended(path: Path, state: RunState, over: str | None = None) -> bool:
    """Writes `state` unless the state file already says how its attempt ended: the
    first word on an attempt's end stands, whoever says it (a node, `cancel`, a
    search's pruner); but an end in the state `over` is replaced. Returns whether it
    wrote."""
    with _locked(path):
        now = read(path)
        if settled(now, state.attempt) and not (now is not None and now.state == over):
            return False
        write(path, state)
        return True


def stop(
    path: Path, attempt: int, job: str | None, word: str, reason: str | None
) -> RunState | None:
    """`cancel`'s word (CANCELLED) or a search pruner's (PRUNED) on a run's current
    attempt, said before its processes are stopped so that it is the first word. An
    attempt that ended by itself first keeps its own; one retrying is stopped from
    coming back. Returns the state written (its launcher's `pgid` and `host` when it
    runs), or None when the attempt's own end stands."""
    with _locked(path):
        state = read(path)
        if state is None or state.attempt < attempt:
            said = RunState(word, attempt=attempt, job=job, reason=reason)
        elif state.state != RUNNING and not state.retrying:
            return None
        else:
            said = replace(state, state=word, time="", retrying=False, reason=reason)
        write(path, said)
        return said


def stopped_by(reason: str | None) -> str | None:
    """STALLED or IDLE for a run one of the node's watchdogs stopped, by its reason."""
    return next((w for w in WATCHDOGS if reason and reason.startswith(f"{w}:")), None)


def step_state(
    own: RunState | None, run_state: str, slurm: str | None, task: str | None = None
) -> str:
    """A sweep.then step's state: its state file's once its task (`task`, '12_3', its
    latest submission's) started; before that, Slurm's record of that task if it ended
    unstarted (a node failure, a cancel); CANCELLED when its run ended other than
    COMPLETED (Slurm cancels it: its dependency can never be met); else PENDING."""
    if own is not None and (task is None or own.job == task):
        return own.state
    if slurm is not None and slurm in SLURM_ENDED:
        return slurm
    if run_state in ENDED and run_state != COMPLETED:
        return CANCELLED
    return PENDING
