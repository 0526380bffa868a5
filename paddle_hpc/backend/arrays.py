"""Runs of a sweep -> sbatch job arrays, one or more per resource shape, via submitit.

Arrays hold at most MaxArraySize tasks (indices 0..MaxArraySize-1). If any sbatch
fails, the arrays already submitted this time are cancelled and the manifest says
`failed`: nothing is half-submitted. The same path submits a new sweep, the points an
extended sweep adds, and `retry`'s runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from paddle_hpc.core import packing, runstate
from paddle_hpc.core.errors import PaddleHpcError, SubmissionError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import ArrayEntry, Feed, Manifest, RunEntry, load, locked, save
from paddle_hpc.core.schema import ResourcesConfig, StepConfig, SweepConfig
from paddle_hpc.node import image_digest
from paddle_hpc.node.image_digest import ImageId
from paddle_hpc.node.runner import NodeTask
from paddle_hpc.node.step import StepTask
from paddle_hpc.node.trials import TrialsTask
from paddle_hpc.slurm.client import SlurmClient, sbatch_options
from paddle_hpc.slurm.executor import array_executor, sbatch_script
from paddle_hpc.slurm.parse import time_limit_minutes

log = logging.getLogger(__name__)
ARRAY_OPTIONS = ("partition", "account", "qos", "constraint", "mem")
REQUEUED_BY_SLURM = frozenset({runstate.NODE_FAIL, runstate.PREEMPTED, runstate.BOOT_FAIL})


def array_parameters(
    shape: Mapping[str, Any], name: str, sweep: SweepConfig | None = None
) -> dict[str, Any]:
    """submitit's parameters for an array of one resource shape."""
    sweep = sweep or SweepConfig()
    resources = ResourcesConfig(**shape["resources"])
    extra = {k: getattr(resources, k) for k in ARRAY_OPTIONS if getattr(resources, k) is not None}
    sbatch_options(resources.sbatch)  # checks the option names
    extra.update({k: v for k, v in resources.sbatch.items() if v is not None and v is not False})
    if sweep.max_requeues or (sweep.max_retries and REQUEUED_BY_SLURM & set(sweep.retry_on)):
        extra["requeue"] = True  # a preempted task comes back
    minutes = time_limit_minutes(resources.time)
    params: dict[str, Any] = {
        "job_name": name,
        "nodes": resources.nodes,
        "ntasks_per_node": 1,
        "time": "UNLIMITED" if minutes is None else minutes,
        "array_parallelism": sweep.max_parallel,
        "setup": list(shape["setup"]),
        # A failing node ends the step on every node instead of leaving peers waiting.
        "srun_args": ["--kill-on-bad-exit=1"],
        "wckey": None,
        # USR2 this long before the time limit, and on preemption: the node runner turns
        # it into the run's stop request (paddle_hpc.checkpoint.should_stop)
        "signal_delay_s": resources.signal_before,
        "additional_parameters": extra,
    }
    if resources.gpus_per_node:
        params["gpus_per_node"] = resources.gpus_per_node
    if resources.cpus_per_task is not None:
        params["cpus_per_task"] = resources.cpus_per_task
    return params


def python_for(shape: Mapping[str, Any]) -> str:
    return str(shape["python"] or sys.executable)


def dry_run_script(sweep_dir: Path, manifest: Manifest, shape: int, sweep: SweepConfig) -> str:
    params = array_parameters(manifest.shapes[shape], manifest.name, sweep)
    count = sum(1 for r in manifest.runs if r.shape == shape)
    params["map_count"] = len(packing.pack(range(count), sweep.trials_per_task))
    return sbatch_script(SweepDir(sweep_dir).slurm, python_for(manifest.shapes[shape]), params)


def tasks_of(
    sweep_dir: Path,
    runs: Sequence[RunEntry],
    python: str,
    trials_per_task: int,
    image: ImageId | None = None,
) -> list[NodeTask | TrialsTask]:
    """The callable of each array task: one run each, or `trials_per_task` trials."""
    if trials_per_task == 1:
        return [
            NodeTask(str(sweep_dir), r.run_id, python, r.attempt, image, r.config_at) for r in runs
        ]
    return [
        TrialsTask(
            str(sweep_dir),
            tuple(r.run_id for r in group),
            python,
            tuple(r.attempt for r in group),
            image,
            tuple(r.config_at for r in group),
        )
        for group in packing.pack(runs, trials_per_task)
    ]


# Which of the runs to submit now (the others wait for room in the queue), and the
# caps that hold the others back.
Fit = Callable[[Manifest, Sequence[RunEntry], int], tuple[list[RunEntry], tuple[str, ...]]]


def submit(
    sweep_dir: Path,
    client: SlurmClient,
    sweep: SweepConfig,
    run_ids: Sequence[str] | None = None,
    fit: Fit | None = None,
) -> tuple[Manifest, tuple[ArrayEntry, ...]]:
    """Submits the runs not submitted yet (among run_ids, default: all, and the runs the
    sweep's feed holds), each as its next attempt, under the sweep's lock and from the
    manifest as it is then: a run is submitted once whoever asks, and no other writer's
    record is lost. With `fit`, the runs it leaves out wait in the manifest's feed.
    Returns the manifest saved, and the arrays this call submitted."""
    with locked(sweep_dir):
        manifest = load(sweep_dir)
        wanted = set(run_ids) if run_ids is not None else {r.run_id for r in manifest.runs}
        if manifest.feed is not None:
            wanted.update(manifest.feed.run_ids)
        todo = [r for r in manifest.runs if r.run_id in wanted and r.job_id is None]
        now, limits = fit(manifest, todo, sweep.trials_per_task) if fit else (todo, ())
        arrays = _submit_arrays(sweep_dir, manifest, now, client, sweep) if now else ()
        chosen = {r.run_id for r in now}
        left = tuple(r.run_id for r in todo if r.run_id not in chosen)
        settings = {k: v for k, v in asdict(sweep).items() if k != "grid"}
        feed = Feed(left, settings, limits) if left else None
        if not arrays and feed == manifest.feed:
            return manifest, ()
        saved = replace(
            manifest.with_arrays(arrays, "submitted") if arrays else manifest, feed=feed
        )
        save(sweep_dir, saved)
        return saved, arrays


def submit_step(
    sweep_dir: Path,
    client: SlurmClient,
    of: tuple[str, Mapping[str, Any], SweepConfig],
    step: str,
    spec: StepConfig,
    after: int | None,
    run_ids: Sequence[str],
) -> int:
    """Submits the step's array for the runs of the training array `after`: task i runs
    once task i of `after` completed, and is cancelled by Slurm if it does not (None:
    the runs completed already). `of`: the sweep's name, the runs' shape and the
    sweep's config."""
    name, shape, sweep = of
    python = python_for(shape)
    resources = {"resources": asdict(spec.resources), "setup": shape["setup"]}
    params = array_parameters(resources, f"{name}.{step}", sweep)
    if after is not None:
        params["additional_parameters"] |= {
            "dependency": f"aftercorr:{after}",
            "kill_on_invalid_dep": "yes",
        }
    executor = array_executor(SweepDir(sweep_dir).slurm, client, python)
    executor.update_parameters(**params)
    tasks = [StepTask(str(sweep_dir), run_id, step, python) for run_id in run_ids]
    return executor.submit_array_job(tasks)


def resubmit_steps(
    sweep_dir: Path, client: SlurmClient, sweep: SweepConfig, step: str, run_ids: Sequence[str]
) -> tuple[ArrayEntry, ...]:
    """Submits the step again for these runs, which completed: one array per resource
    shape, recorded in the manifest under the sweep's lock."""
    with locked(sweep_dir):
        manifest = load(sweep_dir)
        arrays = []
        for index, shape in enumerate(manifest.shapes):
            ids = tuple(r.run_id for r in manifest.runs if r.shape == index and r.run_id in run_ids)
            if ids:
                of = (manifest.name, shape, sweep)
                job = submit_step(sweep_dir, client, of, step, sweep.then[step], None, ids)
                arrays.append(ArrayEntry(job, index, ids, step=step))
        save(sweep_dir, replace(manifest, arrays=manifest.arrays + tuple(arrays)))
        return tuple(arrays)


def _submit_arrays(
    sweep_dir: Path,
    manifest: Manifest,
    todo: Sequence[RunEntry],
    client: SlurmClient,
    sweep: SweepConfig,
) -> tuple[ArrayEntry, ...]:
    """One array per resource shape and MaxArraySize chunk; if an sbatch fails, cancels
    the arrays already submitted, records the failure and raises SubmissionError."""
    folder = SweepDir(sweep_dir).slurm
    arrays: list[ArrayEntry] = []
    try:
        limit = client.max_array_size()
        k = sweep.trials_per_task
        wanted_shapes = sorted({r.shape for r in todo})
        images = {i: image_digest.of_shape(manifest.shapes[i]) for i in wanted_shapes}
        for shape_index, shape in enumerate(manifest.shapes):
            runs = [r for r in todo if r.shape == shape_index]
            image = images.get(shape_index)
            python = python_for(shape)
            for chunk in [runs[i : i + limit * k] for i in range(0, len(runs), limit * k)]:
                executor = array_executor(folder, client, python)
                executor.update_parameters(**array_parameters(shape, manifest.name, sweep))
                tasks = tasks_of(sweep_dir, chunk, python, k, image)
                job_id = executor.submit_array_job(tasks)
                log.debug("submitted array %s: %d runs", job_id, len(chunk))
                run_ids = tuple(r.run_id for r in chunk)
                record = asdict(image) if image is not None else None
                arrays.append(ArrayEntry(job_id, shape_index, run_ids, k, record))
                for step, spec in sweep.then.items():
                    step_job = submit_step(
                        sweep_dir,
                        client,
                        (manifest.name, shape, sweep),
                        step,
                        spec,
                        job_id,
                        run_ids,
                    )
                    arrays.append(ArrayEntry(step_job, shape_index, run_ids, step=step))
    except (PaddleHpcError, OSError, ValueError) as exc:
        cancelled = [a.job_id for a in arrays]
        if cancelled:
            client.cancel(cancelled)
        note = f"; cancelled the arrays already submitted: {cancelled}" if cancelled else ""
        save(sweep_dir, replace(manifest, state="failed", error=f"{exc}{note}"))
        raise SubmissionError(f"submitting {sweep_dir} failed: {exc}{note}") from exc
    return tuple(arrays)
