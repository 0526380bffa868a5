"""Runs here, one after the other, each on one node with the world size it asked for.

`submit` runs the runs in the foreground. Each run's state file holds its launcher's
process group, so `cancel` from another shell stops it (or marks a run that has not
started, which is then skipped). Automatic retries run again at once, here.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from paddle_hpc.backend import RunStatus, Say, run_status
from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry, update
from paddle_hpc.core.schema import RunConfig, SweepConfig
from paddle_hpc.node import image_digest, orphans
from paddle_hpc.node.ending import retry_left
from paddle_hpc.node.image_digest import ImageId
from paddle_hpc.node.runner import (
    free_port,
    load_run_config,
    materialize,
    paddle_has_cuda,
    run_node,
)
from paddle_hpc.node.signals import STOP_GRACE_S
from paddle_hpc.node.step import run_step


def on_one_node(config: RunConfig) -> RunConfig:
    """The run's config for one node here: all of its processes, a free port."""
    resources, launch = config.resources, config.launch
    per_node = launch.nproc_per_node or max(1, resources.gpus_per_node)
    launch = replace(launch, nproc_per_node=per_node * resources.nodes, master_port=free_port())
    return replace(config, launch=launch)


def local_env(environ: Mapping[str, str]) -> dict[str, str]:
    """This process's environment for a run here: no Slurm job it might be inside of
    steers the launch (nor is requeued by a failing run)."""
    env = {k: v for k, v in environ.items() if not k.startswith("SLURM_")}
    return env | {"SLURM_JOB_NODELIST": "127.0.0.1"}


class LocalBackend:
    name = "local"
    runs_here = True
    accounted = False

    def check(self, manifest: Manifest) -> None:
        """Everything runs here, on one node: nothing to refuse."""

    def preview(
        self, sweep_dir: Path, manifest: Manifest, config: SweepConfig, new: Sequence[RunEntry]
    ) -> tuple[Manifest, str | None]:
        return manifest, None  # no queue

    def submit(
        self, sweep: SweepDir, config: SweepConfig, run_ids: Sequence[str] | None, say: Say
    ) -> Manifest:
        manifest = update(sweep.path, lambda now: replace(now, state="submitted", error=None))
        wanted = set(run_ids) if run_ids is not None else {r.run_id for r in manifest.runs}
        todo = [r for r in manifest.runs if r.run_id in wanted]
        cuda = paddle_has_cuda()
        images = {i: image_digest.of_shape(manifest.shapes[i]) for i in {r.shape for r in todo}}
        for run in todo:
            self._run(sweep, run, cuda, say, images[run.shape])
        return manifest

    def _run(
        self, sweep: SweepDir, run: RunEntry, cuda: bool, say: Say, image: ImageId | None
    ) -> None:
        run_dir = sweep.run(run.run_id)
        materialize(run_dir, sweep.run_configs, run.config_at)
        config = load_run_config(run_dir)
        attempt = run.attempt
        while True:
            before = runstate.read(run_dir.state)
            if before and before.state == runstate.CANCELLED and before.attempt == attempt:
                say(f"run {run.run_id}: cancelled before it started")
                return
            here = on_one_node(config)
            say(
                f"run {run.run_id} (attempt {attempt}): {here.launch.nproc_per_node} processes here"
            )
            env = local_env(os.environ)
            try:
                run_node(
                    sweep.path, run.run_id, here, sys.executable, env, cuda, attempt, image=image
                )
                for name, spec in config.sweep.then.items():  # its steps, one after the other
                    say(f"run {run.run_id}: step {name}")
                    run_step(run_dir, name, spec, sys.executable, env)
                return
            except PaddleHpcError as exc:
                say(f"failed: {exc}")
            after = runstate.read(run_dir.state)
            failed = after is not None and after.state == runstate.FAILED
            if not (failed and retry_left(config, attempt - run.attempt)):
                return
            attempt += 1

    def states_of(
        self,
        sweeps: Sequence[tuple[SweepDir, Manifest]],
        *,
        run_files: bool = True,
        max_age: float = 0.0,
    ) -> list[list[RunStatus]]:
        return [
            [
                run_status(r, None, runstate.read(sweep.run(r.run_id).state), True)
                for r in manifest.runs
            ]
            for sweep, manifest in sweeps
        ]

    def cancel(
        self,
        sweep: SweepDir,
        manifest: Manifest,
        run_ids: Sequence[str],
        pruned: str | None = None,
    ) -> None:
        """Marks each run CANCELLED (PRUNED, with the pruner's reason), then stops its
        launcher's process group if it runs (SIGTERM, SIGKILL after STOP_GRACE_S); the
        run's node runner ends its workers. A run that ended first keeps its own end."""
        wanted = set(run_ids)
        word = runstate.CANCELLED if pruned is None else runstate.PRUNED
        groups = []
        for run in manifest.runs:
            if run.run_id not in wanted:
                continue
            said = runstate.stop(sweep.run(run.run_id).state, run.attempt, None, word, pruned)
            if said is not None and said.pgid is not None and said.host == socket.gethostname():
                groups.append(said.pgid)
        orphans.end_groups(groups, STOP_GRACE_S)

    def node_output(self, sweep: SweepDir, run: RunEntry, node: int, err: bool) -> Path | None:
        return None
