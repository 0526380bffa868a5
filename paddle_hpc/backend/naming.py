"""Naming runs and states on the command line. Pure.

A run is named by its id (`r8fe5cf36b6`), a unique prefix of it (`r8fe5`), or its
Slurm array task (`1234_5`, any submission of the run; for a packed task, each of its
trials where several runs may be named). States are Slurm's names,
comma-separated, in any case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import Manifest, RunEntry

_TASK = re.compile(r"^(\d+)_(\d+)$")
STATES = frozenset(
    {
        *runstate.ENDED,
        runstate.PENDING,
        runstate.RUNNING,
        runstate.NOT_SUBMITTED,
        runstate.REQUEUED,
        runstate.WAITING,
    }
)


def runs_of_task(manifest: Manifest, name: str) -> list[RunEntry]:
    """The runs that ran as array task `name` (JOB_TASK) in any submission: one, or a
    packed task's trials."""
    match = _TASK.match(name)
    assert match is not None
    job, task = int(match[1]), int(match[2])
    found = [
        run
        for run in manifest.runs
        if (job, task)
        in {(run.job_id, run.array_task)} | {(s.job_id, s.array_task) for s in run.submissions}
    ]
    if not found:
        raise PaddleHpcError(
            f"no run of sweep {manifest.name!r} ran as array task {name}; "
            "`paddle-hpc status SWEEP_DIR --all` lists each run's task."
        )
    return found


def pick_run(manifest: Manifest, name: str) -> RunEntry:
    if _TASK.match(name):
        found = runs_of_task(manifest, name)
        if len(found) > 1:
            raise PaddleHpcError(
                f"array task {name} runs {len(found)} packed trials ({described(found)}); "
                "name one by its run id."
            )
        return found[0]
    found = [r for r in manifest.runs if r.run_id.startswith(name)] if name else []
    exact = [r for r in found if r.run_id == name]
    if exact:
        return exact[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise PaddleHpcError(
            f"sweep {manifest.name!r} has no run {name!r}; name a run by its id, a unique "
            "prefix of it, or its array task (JOB_TASK), as `paddle-hpc status` shows them."
        )
    shown = ", ".join(r.run_id for r in found[:5]) + (" ..." if len(found) > 5 else "")
    raise PaddleHpcError(
        f"{name!r} is the start of {len(found)} runs ({shown}); give more of the run id."
    )


def pick_runs(manifest: Manifest, names: Iterable[str]) -> list[RunEntry]:
    """The named runs, each once, in the order given; JOB_TASK names every trial of a
    packed task."""
    picked = {
        run.run_id: run
        for name in names
        for run in (
            runs_of_task(manifest, name) if _TASK.match(name) else [pick_run(manifest, name)]
        )
    }
    return list(picked.values())


def parse_states(text: str, allowed: Iterable[str] = STATES) -> frozenset[str]:
    """'failed,TIMEOUT' -> {'FAILED', 'TIMEOUT'}; an unknown name is an error."""
    allowed = frozenset(allowed)
    states = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(states - allowed)
    if unknown or not states:
        raise PaddleHpcError(
            f"--state {text!r}: {', '.join(unknown) or 'no state'} is not one of "
            f"{', '.join(sorted(allowed))}."
        )
    return frozenset(states)


def described(runs: Sequence[RunEntry]) -> str:
    return ", ".join(r.run_id for r in runs[:8]) + (
        f" and {len(runs) - 8} more" if len(runs) > 8 else ""
    )
