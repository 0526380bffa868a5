"""`python -m paddle_hpc.sweep [-cd DIR] [-cn NAME] [--dry-run] [-f] [OVERRIDE ...]`

Composes the config (Hydra), expands the grid, checks every point, then submits one
sbatch array per resource shape and returns; or runs the runs here, one after the
other, when the executor is local (no sbatch on the PATH, or cluster.executor=local).
Run again on the same sweep directory, it submits only the points not there yet.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from paddle_hpc.backend import backend_for, states
from paddle_hpc.backend.arrays import dry_run_script, python_for
from paddle_hpc.backend.charges import asked, asked_line
from paddle_hpc.backend.submission import preflight, submit_plan
from paddle_hpc.backend.view import SHOWN, exit_code, render, watch
from paddle_hpc.core import packing
from paddle_hpc.core.command import console as make_console
from paddle_hpc.core.command import run
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.core.secret_env import redact_override
from paddle_hpc.node import container
from paddle_hpc.node.launch import build_node_launch
from paddle_hpc.node.step import step_command
from paddle_hpc.plan.build import (
    Plan,
    SearchRequested,
    build_manifest,
    make_plan,
)
from paddle_hpc.plan.config import BUNDLED_CONF, resolve_config_dir


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="paddle-hpc sweep", description=__doc__)
    parser.add_argument(
        "-cd", "--config-dir", help="config folder (default: ./conf, else the bundled example)"
    )
    parser.add_argument(
        "-cn", "--config-name", default="config", help="primary config (default: config)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be submitted; submit nothing"
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="follow the runs until every one ended"
    )
    parser.add_argument("--wait", dest="follow", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="add points to an existing sweep even though its config files changed",
    )
    parser.add_argument(
        "--fit-from",
        type=Path,
        metavar="SWEEP_DIR",
        help="ask for the time limit and memory that fit, by what that sweep's runs used",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optim.lr=1e-3,1e-4")
    return parser.parse_intermixed_args(argv)  # flags anywhere among the overrides


def print_dry_run(
    plan: Plan,
    manifest: Manifest,
    console: Console,
    existing: frozenset[str] = frozenset(),
    config_file: str | None = None,
    queue: str | None = None,
) -> None:
    """What a submission would do: its points, the sbatch script of each array and one
    run's launch command on each node. `existing`: the runs the sweep holds already."""
    new = len(plan.runs) - len(existing)
    console.print(
        f"# dry run: {len(plan.runs)} run(s) ({new} new, {len(existing)} already in the sweep) "
        f"in {len(manifest.shapes)} resource shape(s); sweep directory {plan.sweep_dir} "
        "(not written)",
        markup=False,
    )
    if config_file is not None:
        console.print(f"# config: {config_file}", markup=False)
    most = asked_line(asked(manifest, plan.sweep.trials_per_task))
    console.print(f"# the sweep asks for {most}", markup=False)
    if queue is not None:
        console.print(queue, markup=False)
    console.print("# points:", markup=False)
    for spec in plan.runs:
        seen = "already" if spec.run_id in existing else "new"
        console.print(f"#   {spec.run_id}  {seen:7}  {spec.label}", markup=False)
    for shape in range(len(manifest.shapes)):
        console.print(f"\n# sbatch script of shape {shape}:")
        console.print(dry_run_script(plan.sweep_dir, manifest, shape, plan.sweep))
        if plan.sweep.trials_per_task > 1:
            resources = manifest.shapes[shape]["resources"]
            run_ids = [r.run_id for r in manifest.runs if r.shape == shape]
            packed = packing.describe(
                run_ids,
                plan.sweep.trials_per_task,
                resources["gpus_per_node"],
                resources["gpus_per_trial"],
            )
            console.print("\n".join(f"# {line}" for line in packed), markup=False)
    print_launch(plan, manifest, console)


def print_launch(plan: Plan, manifest: Manifest, console: Console) -> None:
    """The first run's launch command on each node, for a GPU build."""
    first = plan.runs[0]
    config = RunConfig.of(first.config)
    nodes, gpus = config.resources.nodes, config.resources.gpus_per_node
    devices = [str(i) for i in range(gpus)]
    where = f", in {shlex.quote(config.program.cwd)}" if config.program.cwd else ""
    if plan.sweep.trials_per_task > 1:
        devices = list(packing.slots(devices, config.resources.gpus_per_trial)[0].devices)
        where += ", in slot 0 of its task (its master port is a free one at run time)"
    guest = dry_run_guest(plan, config)
    if guest is not None:
        where += f", in {guest.runtime}'s container of {guest.image}"
    console.print(
        f"# launch command of run {first.run_id} ({first.label}) "
        f"on each node{where}, for a GPU build, as job 12345 on node[1-{nodes}]:"
    )
    for rank in range(nodes):
        env = {
            "SLURM_JOB_ID": "12345",
            "SLURM_JOB_NODELIST": f"node[1-{nodes}]",
            "SLURM_JOB_NUM_NODES": str(nodes),
            "SLURM_NODEID": str(rank),
            "CUDA_VISIBLE_DEVICES": ",".join(devices),
        }
        node = build_node_launch(
            python=python_for(manifest.shapes[0]),
            config=config,
            run_id=first.run_id,
            run_dir=SweepDir(plan.sweep_dir).run(first.run_id).path,
            env=env,
            cuda=True,
            resolve=lambda host: f"<IP of {host}>",
            guest=guest,
        )
        console.print(f"node {rank}: {shlex.join(node.argv)}")
    for name, step in config.sweep.then.items():
        r = step.resources
        console.print(
            f"\n# then {name}: an array of the same tasks, each once its run's task completed "
            f"(--dependency=aftercorr), {r.nodes} node(s), {r.gpus_per_node} GPU(s), time "
            f"{r.time}{f', partition {r.partition}' if r.partition else ''}; for run "
            f"{first.run_id}, in {step.cwd or 'its folder'}:",
            markup=False,
        )
        python = python_for(manifest.shapes[0])
        console.print(shlex.join(step_command(step, python)), markup=False)


def dry_run_guest(plan: Plan, config: RunConfig) -> container.Guest | None:
    """The container a run's launcher would run in; with runtime auto, the first that
    can run the image (a node uses the first it has)."""
    spec = config.cluster.container
    if spec.image is None:
        return None
    runtime = container.compatible(spec.runtime.value, container.image_kind(spec.image))[0]
    workdir = Path(config.program.cwd or plan.cwd)
    private = Path("/dev/shm/paddle-hpc-XXXXXXXX")
    script = config.program.script
    return container.guest_for(
        spec, runtime, plan.sweep_dir, workdir, script, private, "paddle-hpc-<run>-n<node>"
    )


def config_named(config_dir: Path, config_name: str, cwd: Path) -> str:
    """The primary config a sweep composes, as the dry run names it."""
    path = config_dir / f"{config_name}.yaml"
    if config_dir == BUNDLED_CONF and not (cwd / "conf").is_dir():
        return f"{path} (the bundled example: there is no ./conf here; pass -cd DIR)"
    return str(path)


def fitted(sweep_dir: Path, overrides: list[str], console: Console) -> list[str]:
    """The overrides with the resources that fit by `sweep_dir`'s runs (collect/fit.py)
    before them; a key the command line sets itself keeps its value."""
    from paddle_hpc.collect import load as load_tables
    from paddle_hpc.collect.fit import fit_sweep

    fit = fit_sweep(sweep_dir, load_tables(sweep_dir).runs)
    mine = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    added = [o for o in fit.overrides() if o.split("=", 1)[0] not in mine]
    said = " ".join(added) if added else "nothing to change"
    console.print(f"fit from {sweep_dir}: {said} ({'; '.join(fit.why)})", markup=False)
    return [*added, *overrides]


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    console = make_console()
    cwd = Path.cwd()
    config_dir = resolve_config_dir(args.config_dir, cwd)
    command = ("python", "-m", "paddle_hpc.sweep", *map(redact_override, argv))
    if args.fit_from is not None:
        args.overrides = fitted(args.fit_from, args.overrides, console)
    try:
        plan = make_plan(config_dir, args.config_name, args.overrides, cwd)
    except SearchRequested:
        from paddle_hpc.search import driver as search

        request = search.Request(
            str(config_dir),
            args.config_name,
            list(args.overrides),
            str(cwd),
            list(command),
            args.allow_config_change,
        )
        return search.start(request, args.follow, args.dry_run, console)
    manifest = build_manifest(plan, command)
    if args.dry_run:
        existing = preflight(plan, manifest, args.allow_config_change)
        new = [r for r in manifest.runs if r.run_id not in existing]
        backend = backend_for(plan.executor)
        manifest, queue = backend.preview(plan.sweep_dir, manifest, plan.sweep, new)
        named = config_named(config_dir, args.config_name, cwd)
        print_dry_run(plan, manifest, console, existing, named, queue)
        return 0
    done = submit_plan(plan, manifest, console.print, args.allow_config_change)
    if not done.run_ids:
        console.print("nothing new to submit")
        return 0
    manifest, sweep = done.manifest, done.sweep
    if done.backend.runs_here:
        found = states(done.backend, sweep, manifest)
    else:
        console.print(f"sweep directory: {sweep.path}")
        console.print(f"status: python -m paddle_hpc.status {shlex.quote(str(sweep.path))}")
        if not args.follow:
            return 0
        found = watch(sweep, manifest, done.backend, console)
    for part in render(manifest, found, every=len(found) <= SHOWN):
        console.print(part)
    return exit_code(found)


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
