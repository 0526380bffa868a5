"""What runs on each node of a run's allocation: paddle.distributed.launch, then exit.

submitit starts one `NodeTask` per node (srun, one task per node). Node 0 records the
run's state in `runs/<run_id>/state.json`, and so does a node whose launcher fails.
A failed launcher raises, so srun (--kill-on-bad-exit) ends the other nodes and Slurm
records the task FAILED.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from paddle_hpc.errors import PaddleHpcError
from paddle_hpc.files import write_json_atomic
from paddle_hpc.launch import build_node_launch

log = logging.getLogger(__name__)
STATE = "state.json"


def paddle_has_cuda() -> bool:
    """Whether the installed Paddle is a CUDA build (paddlepaddle-gpu) with a GPU to use."""
    import paddle

    return bool(paddle.device.is_compiled_with_cuda()) and paddle.device.cuda.device_count() > 0


def write_state(run_dir: Path, state: str, **fields: Any) -> None:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(run_dir / STATE, {"state": state, "time": now, **fields})


def load_run_config(sweep_dir: Path, run_id: str) -> dict[str, Any]:
    path = sweep_dir / "runs" / run_id / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise PaddleHpcError(f"run {run_id}: {path} does not hold a config mapping.")
    return config


def run_node(
    sweep_dir: Path,
    run_id: str,
    config: Mapping[str, Any],
    python: str,
    env: Mapping[str, str],
    cuda: bool,
) -> int:
    """Runs Paddle's launcher for this node; raises PaddleHpcError if it fails."""
    run_dir = sweep_dir / "runs" / run_id
    node = build_node_launch(
        python=python,
        config=config,
        run_id=run_id,
        run_dir=run_dir,
        env=env,
        cuda=cuda,
        resolve=socket.gethostbyname,
    )
    log.info(
        "run %s, node %d of %d: %s mode, %d processes, master %s, logs in %s",
        run_id,
        node.node_rank,
        node.nnodes,
        node.mode,
        node.nproc_per_node,
        node.master,
        node.log_dir,
    )
    job = {"job_id": env.get("SLURM_JOB_ID"), "restarts": int(env.get("SLURM_RESTART_COUNT", 0))}
    if node.node_rank == 0:
        write_state(run_dir, "RUNNING", mode=node.mode, master=node.master, **job)
    node.log_dir.mkdir(parents=True, exist_ok=True)
    returncode = subprocess.run(node.argv, env=node.env, check=False).returncode  # noqa: S603
    # Node 0 records success; the node that failed records the failure, since srun
    # (--kill-on-bad-exit) may end node 0 before it learns of it.
    if returncode != 0 or node.node_rank == 0:
        state = "COMPLETED" if returncode == 0 else "FAILED"
        write_state(
            run_dir, state, returncode=returncode, node=node.node_rank, mode=node.mode, **job
        )
    if returncode != 0:
        raise PaddleHpcError(
            f"run {run_id}: paddle.distributed.launch exited with code {returncode} on node "
            f"{node.node_rank}; see {node.log_dir}/workerlog.*"
        )
    return 0


@dataclass(frozen=True)
class NodeTask:
    """The callable submitit pickles for each array task."""

    sweep_dir: str
    run_id: str
    python: str

    def __call__(self) -> int:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        sweep_dir = Path(self.sweep_dir)
        config = load_run_config(sweep_dir, self.run_id)
        env = dict(os.environ)
        return run_node(sweep_dir, self.run_id, config, self.python, env, paddle_has_cuda())
