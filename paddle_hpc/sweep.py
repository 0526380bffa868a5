"""`python -m paddle_hpc.sweep [-cd DIR] [-cn NAME] [--dry-run] [--wait] [OVERRIDE ...]`

Composes the config (Hydra), expands the grid, checks every point, then submits one
sbatch array per resource shape and returns; or runs the runs here, one after the
other, when the executor is local (no sbatch on the PATH, or cluster.executor=local).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from paddle_hpc.cli import run
from paddle_hpc.config import resolve_config_dir
from paddle_hpc.errors import PaddleHpcError
from paddle_hpc.launch import build_node_launch
from paddle_hpc.manifest import Manifest
from paddle_hpc.node import paddle_has_cuda, run_node
from paddle_hpc.plan import Plan, build_manifest, make_plan, write_plan
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.status import read_states, render, watch
from paddle_hpc.submit import dry_run_script, python_for, submit

log = logging.getLogger(__name__)


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
        "--wait", action="store_true", help="wait until every run ended, then show the table"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optim.lr=1e-3,1e-4")
    return parser.parse_args(argv)


def print_dry_run(plan: Plan, manifest: Manifest, console: Console) -> None:
    max_parallel = plan.base["sweep"]["max_parallel"]
    console.print(
        f"# dry run: {len(plan.runs)} runs in {len(manifest.shapes)} resource shape(s); "
        f"sweep directory {plan.sweep_dir} (not written)",
        markup=False,
    )
    for shape in range(len(manifest.shapes)):
        console.print(f"\n# sbatch script of shape {shape}:", markup=False)
        console.print(dry_run_script(plan.sweep_dir, manifest, shape, max_parallel), markup=False)
    first = plan.runs[0]
    nodes = first.config["resources"]["nodes"]
    gpus = first.config["resources"]["gpus_per_node"]
    console.print(
        f"# launch command of run {first.run_id} ({first.label}) "
        f"on each node, for a GPU build, as job 12345 on node[1-{nodes}]:",
        markup=False,
    )
    for rank in range(nodes):
        env = {
            "SLURM_JOB_ID": "12345",
            "SLURM_JOB_NODELIST": f"node[1-{nodes}]",
            "SLURM_JOB_NUM_NODES": str(nodes),
            "SLURM_NODEID": str(rank),
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(gpus)),
        }
        node = build_node_launch(
            python=python_for(manifest.shapes[0]),
            config=first.config,
            run_id=first.run_id,
            run_dir=plan.sweep_dir / "runs" / first.run_id,
            env=env,
            cuda=True,
            resolve=lambda host: f"<IP of {host}>",
        )
        console.print(f"node {rank}: {shlex.join(node.argv)}", markup=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_locally(plan: Plan, console: Console) -> None:
    """Runs every run here, one after the other, on one node with the same world size."""
    cuda = paddle_has_cuda()
    python = sys.executable
    for run_spec in plan.runs:
        config = dict(run_spec.config)
        resources, launch = config["resources"], dict(config["launch"])
        per_node = launch["nproc_per_node"] or max(1, resources["gpus_per_node"])
        launch["nproc_per_node"] = per_node * resources["nodes"]
        launch["master_port"] = free_port()
        config["launch"] = launch
        console.print(
            f"run {run_spec.run_id} ({run_spec.label}): {launch['nproc_per_node']} processes here",
            markup=False,
        )
        try:
            env = {**os.environ, "SLURM_JOB_NODELIST": "127.0.0.1"}
            run_node(plan.sweep_dir, run_spec.run_id, config, python, env, cuda)
        except PaddleHpcError as exc:
            console.print(f"[red]failed:[/] {exc}")


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    console = Console(soft_wrap=True)
    cwd = Path.cwd()
    config_dir = resolve_config_dir(args.config_dir, cwd)
    plan = make_plan(config_dir, args.config_name, args.overrides, cwd)
    command = ("python", "-m", "paddle_hpc.sweep", *argv)
    manifest = build_manifest(plan, command)
    if args.dry_run:
        print_dry_run(plan, manifest, console)
        return 0
    write_plan(plan, manifest)
    client = SlurmClient()
    if plan.executor == "local":
        console.print(
            f"no Slurm here: running {len(plan.runs)} runs locally in {plan.sweep_dir}",
            markup=False,
        )
        run_locally(plan, console)
        statuses = read_states(plan.sweep_dir, manifest, client)
    else:
        manifest = submit(plan.sweep_dir, manifest, client, plan.base["sweep"]["max_parallel"])
        jobs = ", ".join(str(a.job_id) for a in manifest.arrays)
        console.print(f"submitted {len(plan.runs)} runs as array job(s) {jobs}", markup=False)
        console.print(f"sweep directory: {plan.sweep_dir}", markup=False)
        console.print(
            f"status: python -m paddle_hpc.status {shlex.quote(str(plan.sweep_dir))}", markup=False
        )
        if not args.wait:
            return 0
        statuses = watch(plan.sweep_dir, manifest, client, console)
    console.print(render(manifest, statuses))
    return 0 if all(s.state == "COMPLETED" for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
