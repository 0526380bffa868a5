"""Where runs run: one interface, a Slurm and a local implementation.

Verbs talk to a `Backend` only: submit runs, read the states of sweeps' runs (for
Slurm one sacct call per refresh, however many sweeps), cancel runs, and find a node's
output. `retry` and extending a sweep are `submit` of the runs that need it.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from paddle_hpc.core import runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import SweepConfig
from paddle_hpc.node import orphans
from paddle_hpc.slurm.parse import TERMINAL_STATES

ENDED_STATES = TERMINAL_STATES | {runstate.PRUNED}  # Slurm's, and a search's pruned runs

__all__ = [
    "ENDED_STATES",
    "NOT_SUBMITTED",
    "TERMINAL_STATES",
    "Backend",
    "RunStatus",
    "Say",
    "backend_for",
    "local_status",
    "states",
]
NOT_SUBMITTED = "NOT_SUBMITTED"


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

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def active(self) -> bool:
        return not self.ended and self.state != NOT_SUBMITTED


def alive(state: RunState) -> bool:
    """Whether a RUNNING state's process group still runs (when it runs on this host)."""
    if state.pgid is None or state.host != socket.gethostname():
        return True
    return orphans.group_running(state.pgid)


def local_status(run: RunEntry, state: RunState | None) -> RunStatus:
    """A local run's status from its state file. Pure but for `alive`."""
    if state is None or state.attempt < run.attempt:
        return RunStatus(run.run_id, run.swept, "PENDING", None, (), "", run.attempt)
    shown = state.state
    reason = state.reason or ""
    if state.retrying:
        shown = "PENDING"
    elif state.state == runstate.RUNNING and not alive(state):
        shown, reason = "FAILED", "its process is gone"
    return RunStatus(
        run.run_id, run.swept, shown, None, ("localhost",), "", state.attempt, reason, state.history
    )


Say = Callable[[str], None]


class Backend(Protocol):
    name: str  # what manifest.json records as the sweep's executor
    runs_here: bool  # whether `submit` runs the runs itself, here, before it returns

    def check(self, manifest: Manifest) -> None:
        """Raises ConfigError when a run asks for what the backend can never give."""
        ...

    def submit(
        self, sweep: SweepDir, config: SweepConfig, run_ids: Sequence[str] | None, say: Say
    ) -> Manifest:
        """Submits the runs not submitted yet among run_ids (default: all), each as its
        next attempt, from the manifest as it is under the sweep's lock; returns the
        saved manifest. A local backend runs them here, now."""
        ...

    def states_of(
        self, sweeps: Sequence[tuple[SweepDir, Manifest]], *, run_files: bool = True
    ) -> list[list[RunStatus]]:
        """Every run's state, per sweep, in manifest order. Without run_files, what the
        runs' own state files add (attempt, reason) is left out: `list` of many sweeps."""
        ...

    def cancel(self, sweep: SweepDir, manifest: Manifest, run_ids: Sequence[str]) -> None: ...

    def node_output(self, sweep: SweepDir, run: RunEntry, node: int, err: bool) -> Path | None:
        """The node's stdout (or stderr) outside the worker logs, if the backend keeps one."""
        ...


def states(backend: Backend, sweep: SweepDir, manifest: Manifest) -> list[RunStatus]:
    (found,) = backend.states_of([(sweep, manifest)])
    return found


def backend_for(executor: str, which: Callable[[str], str | None] = shutil.which) -> Backend:
    """The backend of `cluster.executor`; "auto" is Slurm when sbatch is on the PATH."""
    if executor == "auto":
        executor = "slurm" if which("sbatch") else "local"
    if executor == "local":
        from paddle_hpc.backend.local import LocalBackend

        return LocalBackend()
    from paddle_hpc.backend.slurm import SlurmBackend

    return SlurmBackend()
