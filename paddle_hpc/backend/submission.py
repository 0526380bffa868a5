"""The one way a plan is submitted, whoever asks (`sweep`, the search driver, the Hydra
launcher): the sweep's backend resolved, the plan written (or its new points added to
the sweep there) under the sweep's lock, the environment recorded the first time, and
the runs not submitted yet submitted, which records their arrays in the manifest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paddle_hpc.backend import Backend, Say, backend_for
from paddle_hpc.backend.charges import asked, asked_line, check_budget
from paddle_hpc.backend.start import estimated
from paddle_hpc.core import index
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, load, locked, save
from paddle_hpc.node.capture import write_sweep_environment
from paddle_hpc.plan import extend
from paddle_hpc.plan.build import Plan
from paddle_hpc.plan.write import with_configs, write_plan, write_runs


@dataclass(frozen=True)
class Submission:
    sweep: SweepDir
    backend: Backend
    manifest: Manifest  # as saved once the runs were submitted (or written, in background)
    run_ids: tuple[str, ...]  # the runs submitted now
    running_here: threading.Thread | None = None  # the local runs, when in background


def checked_backend(plan: Plan, manifest: Manifest) -> tuple[Backend, Manifest]:
    """The sweep's backend, once it has checked the manifest (a partition that does not
    exist, a shape no node fits) and the GPU-hours it asks for (sweep.max_gpu_hours);
    and the manifest with the backend's name."""
    backend = backend_for(plan.executor)
    manifest = replace(manifest, executor=backend.name)
    backend.check(manifest)
    check_budget(asked(manifest, plan.sweep.trials_per_task), plan.sweep.max_gpu_hours)
    return backend, manifest


def preflight(plan: Plan, manifest: Manifest, allow_change: bool = False) -> frozenset[str]:
    """Every check a submission of the plan makes, writing nothing; returns the ids of its
    runs the sweep directory holds already."""
    _, manifest = checked_backend(plan, manifest)
    sweep = SweepDir(plan.sweep_dir)
    if not sweep.manifest.exists():
        return frozenset()
    old = load(sweep.path)
    extend.check_base(old, manifest, allow_change)
    _, added = extend.merge(old, manifest)
    return frozenset(r.run_id for r in plan.runs) - set(added)


def submit_plan(
    plan: Plan, manifest: Manifest, say: Say, allow_change: bool = False, background: bool = False
) -> Submission:
    """Writes and submits a plan (`manifest` is build_manifest's). A backend that runs
    the runs here does so before this returns, or in a thread when `background`."""
    backend, manifest = checked_backend(plan, manifest)
    if backend.accounted:  # Slurm: when each shape would start, in which partition
        manifest, lines = estimated(plan.sweep_dir, manifest, plan.sweep)
        for line in lines:
            say(line)
    sweep = SweepDir(plan.sweep_dir)
    is_new = not sweep.manifest.exists()
    manifest = write(plan, manifest, allow_change, say)
    if is_new:
        write_sweep_environment(sweep.path, code_dir(plan.runs[0].config["program"], plan.cwd))
    planned = {r.run_id for r in plan.runs}
    todo = tuple(
        r.run_id
        for r in manifest.runs
        if r.run_id in planned and r.job_id is None and (is_new or not was_run(sweep, r.run_id))
    )
    if not todo:
        return Submission(sweep, backend, manifest, ())
    if backend.runs_here:
        say(f"no Slurm here: running {len(todo)} runs locally in {sweep.path}")
    else:
        mine = replace(manifest, runs=tuple(r for r in manifest.runs if r.run_id in todo))
        most = asked_line(asked(mine, plan.sweep.trials_per_task))
        say(f"submitting {len(todo)} run(s), which ask for {most}")
    if backend.runs_here and background:
        thread = threading.Thread(
            target=backend.submit, args=(sweep, plan.sweep, todo, say), daemon=True
        )
        thread.start()
        return Submission(sweep, backend, manifest, todo, thread)
    return Submission(sweep, backend, backend.submit(sweep, plan.sweep, todo, say), todo)


def write(plan: Plan, manifest: Manifest, allow_change: bool, say: Say) -> Manifest:
    """Writes the sweep directory, or adds the new points to the one there, under the
    sweep's lock; returns the manifest saved."""
    sweep = SweepDir(plan.sweep_dir)
    with locked(sweep.path):
        if not sweep.manifest.exists():
            saved = write_plan(plan, manifest)
            index.record(sweep.path, manifest.name, manifest.created)
            return saved
        old = load(sweep.path)
        extend.check_base(old, manifest, allow_change)
        merged, added = extend.merge(old, manifest)
        existing = len(plan.runs) - len(added)
        say(f"{len(added)} new point(s), {existing} already in {sweep.path}")
        new_ids = set(added)
        where = write_runs(sweep.path, [r for r in plan.runs if r.run_id in new_ids])
        merged = with_configs(merged, where)
        save(sweep.path, merged)
        return merged


def code_dir(program: dict[str, Any], cwd: Path) -> Path:
    """Where the training code is: program.cwd, the script's folder, or here."""
    if program.get("cwd"):
        return Path(program["cwd"])
    if program.get("script"):
        return Path(program["script"]).parent
    return cwd


def was_run(sweep: SweepDir, run_id: str) -> bool:
    """Whether a run without a Slurm job (a local run) has run: it has a state file."""
    return sweep.run(run_id).state.exists()
