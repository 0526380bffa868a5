"""The runs table's column per step of sweep.then: `then.<step>`, the step's state
(core/runstate.step_state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from paddle_hpc.core import runstate
from paddle_hpc.core.layout import STATE, SweepDir
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.schema import step_names
from paddle_hpc.slurm import SacctRecord

PREFIX = "then."


def with_steps(
    runs: pd.DataFrame,
    sweep_dir: Path,
    manifest: Manifest,
    rows: Mapping[tuple[int, int], SacctRecord],
) -> pd.DataFrame:
    """The runs table with a `then.<step>` column after `state` per step of sweep.then."""
    sweep = SweepDir(sweep_dir)
    names = step_names(sweep.config)
    at = list(runs.columns).index("state") + 1
    for offset, name in enumerate(names):
        column = []
        for run_id, state in zip(runs.index, runs["state"], strict=True):
            task = manifest.step_task(str(run_id), name)
            record = rows.get(task) if task is not None else None
            own = runstate.read(sweep.run(str(run_id)).then(name) / STATE)
            slurm = record.state if record else None
            job = manifest.step_job(str(run_id), name)
            column.append(runstate.step_state(own, str(state), slurm, job))
        runs.insert(
            at + offset, f"{PREFIX}{name}", pd.Series(column, index=runs.index, dtype=object)
        )
    return runs
