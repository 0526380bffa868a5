"""`collect --visualdl`: every run's metrics as VisualDL logs, one folder per run named by
its id and swept values, so that `visualdl --logdir SWEEP_DIR/visualdl` compares runs.

VisualDL (`pip install visualdl`, the `visualdl` extra) is imported only here. The
folder is written beside the old one and swapped in, so a VisualDL server reading it
never sees half a sweep.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from paddle_hpc.collect.tables import Tables, swept_keys
from paddle_hpc.core.errors import PaddleHpcError

FOLDER = "visualdl"


def run_folder(run_id: str, swept: Mapping[str, object]) -> str:
    """'r1a2b3c4d5e optim.lr=0.01 model=vit': a folder name (no '/', which VisualDL
    would take for nesting; at most 200 characters, the id first)."""
    label = " ".join(f"{key}={value}" for key, value in swept.items())
    name = f"{run_id} {label}".strip() if label else run_id
    return re.sub(r"[/\x00]", "_", name)[:200]


def write(tables: Tables, sweep_dir: Path) -> Path:
    """Writes SWEEP_DIR/visualdl from the tables; returns the folder."""
    try:
        from visualdl import LogWriter  # type: ignore[import-untyped]
    except ImportError as exc:
        raise PaddleHpcError(
            "collect --visualdl needs VisualDL: pip install visualdl (or paddle_hpc[visualdl])."
        ) from exc
    target = sweep_dir / FOLDER
    staging = sweep_dir / f".{FOLDER}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    keys = swept_keys(tables.runs)
    metrics = tables.metrics.sort_values(["run_id", "step"], kind="stable")
    for run_id, rows in metrics.groupby("run_id", sort=True):
        swept = {k: tables.runs.at[run_id, k] for k in keys} if run_id in tables.runs.index else {}
        with LogWriter(logdir=str(staging / run_folder(str(run_id), swept))) as writer:
            for row in rows.itertuples(index=False):
                if pd.isna(row.step) or pd.isna(row.value):
                    continue
                walltime = None if pd.isna(row.time) else round(row.time.timestamp() * 1000)
                value = float(row.value)
                if math.isfinite(value):
                    writer.add_scalar(str(row.name), value, int(row.step), walltime=walltime)
    old = sweep_dir / f".{FOLDER}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
