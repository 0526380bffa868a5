"""The per-node launch command, built from literal environments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.launch import RUN_MODULE_SHIM, build_node_launch, clean_env, master_port

CONFIG: dict[str, Any] = {
    "program": {"script": "/home/u/train.py", "module": None, "args": ["--lr", 0.1, "a b"]},
    "launch": {
        "nproc_per_node": None,
        "devices": None,
        "master_port": None,
        "extra_args": [],
        "env": {"NCCL_DEBUG": "INFO"},
    },
}
SLURM = {
    "SLURM_JOB_ID": "40123",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NODEID": "1",
    "CUDA_VISIBLE_DEVICES": "2,3",
    "PADDLE_TRAINER_ENDPOINTS": "10.0.0.1:6170",
    "PADDLE_MASTER": "stale:1",
    "FLAGS_selected_gpus": "0",
    "PADDLE_HPC_KEEP": "yes",
    "PATH": "/usr/bin",
}
IPS = {"gpu07": "10.1.0.7", "gpu08": "10.1.0.8"}


def build(
    config: dict[str, Any] = CONFIG,
    env: dict[str, str] = SLURM,
    cuda: bool = True,
    resolve: Callable[[str], str] = IPS.__getitem__,
    attempt: int = 1,
    secrets_file: Path | None = None,
) -> Any:
    return build_node_launch(
        python="/venv/bin/python",
        config=RunConfig.of(config),
        run_id="rabc",
        run_dir=Path("/s/runs/rabc"),
        env=env,
        cuda=cuda,
        resolve=resolve,
        attempt=attempt,
        secrets_file=secrets_file,
    )


def test_gpu_build_uses_the_allocated_gpus() -> None:
    node = build()
    assert node.mode == "gpu" and node.node_rank == 1 and node.nnodes == 2
    assert node.master == "10.1.0.7:10123"  # the first node's IP; 10000 + 40123 % 20000
    assert node.argv == (
        "/venv/bin/python",
        "-m",
        "paddle.distributed.launch",
        "--master",
        "10.1.0.7:10123",
        "--nnodes",
        "2",
        "--rank",
        "1",
        "--nproc_per_node",
        "2",
        "--devices",
        "2,3",
        "--log_dir",
        "/s/runs/rabc/logs/node1",
        "--job_id",
        "rabc",
        "/home/u/train.py",
        "--lr",
        "0.1",
        "a b",
    )
    assert node.env["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_cpu_build_runs_one_process_per_gpu_without_cuda_visible_devices() -> None:
    node = build(cuda=False)
    assert node.mode == "cpu" and node.nproc_per_node == 2
    assert "--devices" not in node.argv and "CUDA_VISIBLE_DEVICES" not in node.env


def test_cpu_node_without_gpus_runs_one_process() -> None:
    env = {k: v for k, v in SLURM.items() if k != "CUDA_VISIBLE_DEVICES"}
    assert build(env=env, cuda=True).nproc_per_node == 1


def test_outside_paddle_launch_variables_are_cleaned() -> None:
    env = build().env
    assert "PADDLE_TRAINER_ENDPOINTS" not in env and "PADDLE_MASTER" not in env
    assert "FLAGS_selected_gpus" not in env
    assert env["PADDLE_HPC_KEEP"] == "yes" and env["PATH"] == "/usr/bin"
    assert env["PADDLE_HPC_RUN_ID"] == "rabc" and env["PADDLE_HPC_RUN_DIR"] == "/s/runs/rabc"
    assert env["PADDLE_HPC_ATTEMPT"] == "1" and build(attempt=3).env["PADDLE_HPC_ATTEMPT"] == "3"
    assert env["NCCL_DEBUG"] == "INFO"
    assert clean_env({"PADDLE_NNODES": "3", "PADDLE_HPC_X": "1"}) == {"PADDLE_HPC_X": "1"}


def test_configured_launch_values_win() -> None:
    config = {
        **CONFIG,
        "launch": {
            **CONFIG["launch"],
            "nproc_per_node": 1,
            "devices": "3",
            "master_port": 6170,
            "extra_args": ["--log_level", "DEBUG"],
        },
    }
    node = build(config)
    assert node.master == "10.1.0.7:6170" and node.nproc_per_node == 1
    assert node.argv[node.argv.index("--devices") + 1] == "3"
    assert node.argv[-6:-3] == ("--log_level", "DEBUG", "/home/u/train.py")


def test_module_programs_go_through_the_shim() -> None:
    config = {**CONFIG, "program": {"script": None, "module": "pkg.train", "args": []}}
    assert build(config).argv[-2:] == (str(RUN_MODULE_SHIM), "pkg.train")


def test_ports_differ_between_jobs() -> None:
    assert master_port(1, None) != master_port(2, None)
    assert master_port(20001, None) == master_port(1, None)  # the documented wrap
    assert master_port(5, 7000) == 7000


def test_unresolvable_first_node_names_the_run() -> None:
    def fail(host: str) -> str:
        raise OSError("Name or service not known")

    with pytest.raises(PaddleHpcError, match="run rabc: cannot resolve the first node 'gpu07'"):
        build(resolve=fail)


def test_resume_args_come_only_when_the_run_starts_again() -> None:
    config = {
        **CONFIG,
        "program": {**CONFIG["program"], "resume_args": ["-o", "Global.checkpoints=/r/latest"]},
    }
    first = build(config)
    assert first.argv[-3:] == ("--lr", "0.1", "a b")
    again = build(config, attempt=2)
    assert again.argv[-5:] == ("--lr", "0.1", "a b", "-o", "Global.checkpoints=/r/latest")
