"""What the runs' GPUs did, from their nodes' samples (node/gpu.py): the runs table's
GPU columns. Samples are metrics named `sys.gpu.<index>.<what>`, one file per node."""

from __future__ import annotations

import re
from typing import cast

import numpy as np
import pandas as pd

GPU_COLUMNS = (
    "gpu_util",  # percent, the mean of every sample of every GPU of the run
    "gpu_mem_max_mb",  # the most memory any of its GPUs held in a sample
    "gpus_busy",  # per node, the GPUs whose mean utilisation reached BUSY_UTIL; the most
)
SAMPLE = r"^sys\.gpu\.(\d+)\.(util|mem_used_mb)$"
SAMPLES_FILE = re.compile(r"/gpu-node\d+\.jsonl$")  # layout.gpu_samples
BUSY_UTIL = 5.0  # percent: a GPU below this on average did no real work


def from_samples(metrics: pd.DataFrame) -> np.ndarray:
    """Which rows of the metrics table are the nodes' GPU samples, not the script's."""
    if "source" not in metrics:  # a table of the script's metrics alone
        return np.zeros(len(metrics), dtype=bool)
    sources = metrics["source"].astype("category").cat
    files = np.array([bool(SAMPLES_FILE.search(str(s))) for s in sources.categories] + [False])
    return cast(np.ndarray, files[sources.codes.to_numpy()])


def none() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "gpu_util": pd.Series(dtype="float64"),
            "gpu_mem_max_mb": pd.Series(dtype="float64"),
            "gpus_busy": pd.Series(dtype="Int64"),
        }
    )
    frame.index.name = "run_id"
    return cast(pd.DataFrame, frame)


def gpu_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run with GPU samples, GPU_COLUMNS."""
    names = metrics["name"].astype("category").cat
    parts = names.categories.astype(str).str.extract(SAMPLE)
    codes = names.codes.to_numpy()
    rows = from_samples(metrics) & (codes >= 0) & parts[0].notna().to_numpy()[codes]
    if not rows.any():
        return none()
    picked = pd.DataFrame(
        {
            "run_id": metrics["run_id"].astype(str).to_numpy()[rows],
            "source": metrics["source"].astype(str).to_numpy()[rows],
            "gpu": parts[0].to_numpy()[codes[rows]],
            "what": parts[1].to_numpy()[codes[rows]],
            "value": metrics["value"].to_numpy(float)[rows],
        }
    )
    util = picked[picked["what"] == "util"]
    per_gpu = util.groupby(["run_id", "source", "gpu"])["value"].mean()
    busy = (per_gpu >= BUSY_UTIL).groupby(level=["run_id", "source"]).sum()
    frame = pd.DataFrame(
        {
            "gpu_util": util.groupby("run_id")["value"].mean(),
            "gpu_mem_max_mb": picked[picked["what"] == "mem_used_mb"]
            .groupby("run_id")["value"]
            .max(),
            "gpus_busy": busy.groupby(level="run_id").max().astype("Int64"),
        }
    )
    frame.index.name = "run_id"
    return cast(pd.DataFrame, frame[list(GPU_COLUMNS)])


def over_time(metrics: pd.DataFrame, what: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run with samples, its GPUs' `what` over the minutes since its first sample:
    `util` the mean over every GPU of every node, `mem_used_mb` the most any held. Each
    node samples on its own clock, so samples are binned by the sampling interval."""
    names = metrics["name"].astype(str).str.fullmatch(rf"sys\.gpu\.\d+\.{re.escape(what)}")
    rows = metrics[from_samples(metrics) & names.to_numpy()]
    if rows.empty:
        return {}
    seconds = (rows["time"] - rows["time"].min()).dt.total_seconds()
    picked = pd.DataFrame(
        {
            "run_id": rows["run_id"].astype(str).to_numpy(),
            "source": rows["source"].astype(str).to_numpy(),
            "t": seconds.to_numpy(float),
            "value": rows["value"].to_numpy(float),
        }
    ).dropna(subset=["t"])
    picked["t"] -= picked.groupby("run_id")["t"].transform("min")
    times = picked[["run_id", "source", "t"]].drop_duplicates().sort_values(["run_id", "t"])
    gaps = times.groupby(["run_id", "source"])["t"].diff()
    interval = gaps[gaps > 0].groupby(times["run_id"]).median()
    step = picked["run_id"].map(interval).fillna(1.0).to_numpy(float)  # one sample a node
    picked["bin"] = np.round(picked["t"].to_numpy() / step) * step / 60
    binned = picked.groupby(["run_id", "bin"])["value"].agg("mean" if what == "util" else "max")
    return {
        str(run): (group.index.get_level_values("bin").to_numpy(), group.to_numpy())
        for run, group in binned.groupby(level="run_id")
    }
