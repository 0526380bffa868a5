"""The runs table's column per step of sweep.then: `then.<step>`, the step's state
(core/manifest.step_state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, step_state
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
    slurm = {task: record.state for task, record in rows.items()}
    at = list(runs.columns).index("state") + 1
    for offset, name in enumerate(step_names(sweep.config)):
        column = [
            step_state(sweep, manifest, str(run_id), name, str(state), slurm)
            for run_id, state in zip(runs.index, runs["state"], strict=True)
        ]
        runs.insert(
            at + offset, f"{PREFIX}{name}", pd.Series(column, index=runs.index, dtype=object)
        )
    return runs
