"""A planned sweep -> sbatch job arrays, one or more per resource shape, via submitit.

Arrays hold at most MaxArraySize tasks (indices 0..MaxArraySize-1). If any sbatch
fails, the arrays already submitted are cancelled and the manifest says `failed`:
nothing is half-submitted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from paddle_hpc.config import time_limit_minutes
from paddle_hpc.errors import PaddleHpcError, SubmissionError
from paddle_hpc.manifest import ArrayEntry, Manifest, save
from paddle_hpc.node import NodeTask
from paddle_hpc.slurm.client import SlurmClient, sbatch_options
from paddle_hpc.slurm.executor import SeamExecutor, sbatch_script

log = logging.getLogger(__name__)
SLURM_FOLDER = "slurm"
ARRAY_OPTIONS = ("partition", "account", "qos", "constraint", "mem")


def array_parameters(shape: Mapping[str, Any], name: str, max_parallel: int) -> dict[str, Any]:
    """submitit's parameters for an array of one resource shape."""
    resources = shape["resources"]
    extra = {k: resources[k] for k in ARRAY_OPTIONS if resources[k] is not None}
    sbatch_options(resources["sbatch"])  # checks the option names
    extra.update({k: v for k, v in resources["sbatch"].items() if v is not None and v is not False})
    params: dict[str, Any] = {
        "job_name": name,
        "nodes": resources["nodes"],
        "ntasks_per_node": 1,
        "time": time_limit_minutes(resources["time"]),
        "array_parallelism": max_parallel,
        "setup": list(shape["setup"]),
        # A failing node ends the step on every node instead of leaving peers waiting.
        "srun_args": ["--kill-on-bad-exit=1"],
        "wckey": None,
        "additional_parameters": extra,
    }
    if resources["gpus_per_node"]:
        params["gpus_per_node"] = resources["gpus_per_node"]
    if resources["cpus_per_task"] is not None:
        params["cpus_per_task"] = resources["cpus_per_task"]
    return params


def chunks(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def python_for(shape: Mapping[str, Any]) -> str:
    return str(shape["python"] or sys.executable)


def dry_run_script(sweep_dir: Path, manifest: Manifest, shape: int, max_parallel: int) -> str:
    params = array_parameters(manifest.shapes[shape], manifest.name, max_parallel)
    count = sum(1 for r in manifest.runs if r.shape == shape)
    params["map_count"] = count
    return sbatch_script(sweep_dir / SLURM_FOLDER, python_for(manifest.shapes[shape]), params)


def submit(sweep_dir: Path, manifest: Manifest, client: SlurmClient, max_parallel: int) -> Manifest:
    """Submits every run; returns the manifest with job ids, saved as 'submitted'."""
    arrays: list[ArrayEntry] = []
    try:
        limit = client.max_array_size()
        for shape_index, shape in enumerate(manifest.shapes):
            run_ids = [r.run_id for r in manifest.runs if r.shape == shape_index]
            python = python_for(shape)
            for chunk in chunks(run_ids, limit):
                executor = SeamExecutor(sweep_dir / SLURM_FOLDER, client, python)
                executor.update_parameters(**array_parameters(shape, manifest.name, max_parallel))
                tasks = [NodeTask(str(sweep_dir), run_id, python) for run_id in chunk]
                job_id = executor.submit_array_job(tasks)
                log.info("submitted array %s: %d runs", job_id, len(chunk))
                arrays.append(ArrayEntry(job_id, shape_index, chunk))
    except (PaddleHpcError, OSError, ValueError) as exc:
        cancelled = [a.job_id for a in arrays]
        if cancelled:
            client.cancel(cancelled)
        note = f"; cancelled the arrays already submitted: {cancelled}" if cancelled else ""
        save(sweep_dir, replace(manifest, state="failed", error=f"{exc}{note}"))
        raise SubmissionError(f"submitting {sweep_dir} failed: {exc}{note}") from exc
    submitted = manifest.with_arrays(tuple(arrays), "submitted")
    save(sweep_dir, submitted)
    return submitted
