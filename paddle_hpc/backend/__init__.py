"""Where runs run: one interface, a Slurm and a local implementation.

Verbs talk to a `Backend` only: submit runs, read the states of sweeps' runs (for
Slurm one sacct call per refresh, however many sweeps), cancel runs, and find a node's
output. `retry` and extending a sweep are `submit` of the runs that need it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from paddle_hpc.backend.run_status import RunStatus, run_status
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.core.schema import SweepConfig

__all__ = [
    "Backend",
    "RunStatus",
    "Say",
    "backend_for",
    "run_status",
    "states",
]


Say = Callable[[str], None]


class Backend(Protocol):
    name: str  # what manifest.json records as the sweep's executor
    runs_here: bool  # whether `submit` runs the runs itself, here, before it returns
    accounted: bool  # whether Slurm's accounting (sacct) records the runs' tasks

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

    def preview(
        self, sweep_dir: Path, manifest: Manifest, config: SweepConfig, new: Sequence[RunEntry]
    ) -> tuple[Manifest, str | None]:
        """What a dry run says of the queue for the `new` runs (the user's caps, when each
        shape would start), and the manifest it would submit (sweep.earliest_partition)."""
        ...

    def states_of(
        self,
        sweeps: Sequence[tuple[SweepDir, Manifest]],
        *,
        run_files: bool = True,
        max_age: float = 0.0,
    ) -> list[list[RunStatus]]:
        """Every run's state, per sweep, in manifest order. Without run_files, what the
        runs' own state files add (attempt, reason) is left out: `list` of many sweeps.
        With max_age, a scheduler's answer this many seconds old, which another watcher
        asked for, will do (slurm/shared.py)."""
        ...

    def cancel(
        self,
        sweep: SweepDir,
        manifest: Manifest,
        run_ids: Sequence[str],
        pruned: str | None = None,
    ) -> None:
        """Stops the runs; each one's state says CANCELLED first (PRUNED with the reason
        `pruned`), unless it ended by itself first."""
        ...

    def node_output(self, sweep: SweepDir, run: RunEntry, node: int, err: bool) -> Path | None:
        """The node's stdout (or stderr) outside the worker logs, if the backend keeps one."""
        ...


# How old an answer of the scheduler a watcher (`-f`, the search driver, the Hydra
# launcher's wait) takes: 6 sacct calls a minute at most, whatever the number of watchers.
WATCH_MAX_AGE_S = 10.0


def states(
    backend: Backend, sweep: SweepDir, manifest: Manifest, max_age: float = 0.0
) -> list[RunStatus]:
    (found,) = backend.states_of([(sweep, manifest)], max_age=max_age)
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
