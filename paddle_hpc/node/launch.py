"""The `python -m paddle.distributed.launch` command for one node of one run. Pure.

Takes the node's environment as a mapping and the host-name resolver as a function,
so every case is a unit test with literal inputs. Two Paddle pitfalls shape it:
- `--master` must be an IP address: Paddle starts its rendezvous server only when the
  master equals the IP it computes for its own host (or 127.0.0.1); a host name makes
  every node wait forever.
- With CUDA_VISIBLE_DEVICES set, the CPU build of Paddle takes the node for a GPU node
  and fails; a CPU build runs one gloo process per allocated GPU with it cleared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.core.secret_env import resolve_env_refs, split_secrets
from paddle_hpc.node import container
from paddle_hpc.node.container import PACKAGE, Guest
from paddle_hpc.slurm.parse import expand_nodelist

RUN_MODULE, SECRETS = "run_module.py", "secrets_shim.py"
RUN_MODULE_SHIM = PACKAGE / RUN_MODULE
SECRETS_SHIM = PACKAGE / SECRETS
PORT_BASE, PORT_SPAN = 10000, 20000

# Variables through which a surrounding launch would steer Paddle's launcher.
_PADDLE_LAUNCH_PREFIXES = ("PADDLE_", "FLAGS_selected_")
_KEPT = ("PADDLE_HPC_",)


@dataclass(frozen=True)
class NodeLaunch:
    argv: tuple[str, ...]
    env: dict[str, str]
    mode: str  # "gpu" or "cpu"
    master: str  # ip:port
    node_rank: int
    nnodes: int
    nproc_per_node: int
    log_dir: Path
    # secret variables, kept out of env (Paddle's launcher writes its env to the logs):
    # the node runner writes them to secrets_file, which SECRETS_SHIM reads
    secrets: dict[str, str] = field(default_factory=dict)
    gpus: tuple[str, ...] = ()  # the node's GPUs, as CUDA_VISIBLE_DEVICES or launch.devices


def master_port(job_id: int, configured: int | None) -> int:
    """A port no two running jobs share unless their ids differ by a multiple of 20000."""
    return configured if configured is not None else PORT_BASE + job_id % PORT_SPAN


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """env without the PADDLE_* launch variables that came in from outside."""
    return {
        k: v
        for k, v in env.items()
        if not k.startswith(_PADDLE_LAUNCH_PREFIXES) or k.startswith(_KEPT)
    }


def build_node_launch(
    *,
    python: str,
    config: RunConfig,
    run_id: str,
    run_dir: Path,
    env: Mapping[str, str],
    cuda: bool,
    resolve: Callable[[str], str],
    secrets_file: Path | None = None,
    attempt: int = 1,
    guest: Guest | None = None,
) -> NodeLaunch:
    """The launch command and environment for this node.

    env: the node's environment (Slurm's variables, CUDA_VISIBLE_DEVICES).
    cuda: whether this Paddle build can use CUDA (paddle.is_compiled_with_cuda()).
    resolve: host name -> IP address (socket.gethostbyname).
    secrets_file: where the node runner puts the secrets, if there are any.
    attempt: the run's attempt; from the second (a requeue or a retry) on,
    program.resume_args are added. Its workers see it as PADDLE_HPC_ATTEMPT.
    guest: the image to run the launcher in (cluster.container); `python` is then
    the image's, and the shims are the copy of paddle_hpc the image sees.
    """
    launch, program = config.launch, config.program
    nodes = expand_nodelist(env.get("SLURM_JOB_NODELIST", "")) or ["127.0.0.1"]
    nnodes = int(env.get("SLURM_JOB_NUM_NODES", len(nodes)))
    node_rank = int(env.get("SLURM_NODEID", "0"))
    master = master_address(run_id, nodes[0], int(env.get("SLURM_JOB_ID", "0")), config, resolve)
    out = clean_env(env)
    package = PACKAGE  # the copy of paddle_hpc the launcher's Python sees
    if guest is not None:
        python, package = guest.python, Path(guest.pythonpath) / PACKAGE.name
        out = container.guest_env(out)
    mode, nproc, device_args = devices_of(env, cuda, config)
    if mode == "cpu":
        out.pop("CUDA_VISIBLE_DEVICES", None)
    log_dir = RunDir(run_dir).node_logs(node_rank)
    target = [program.script] if program.script else [str(package / RUN_MODULE), program.module]
    wanted = wanted_env(run_id, config, env)
    out.update(wanted)
    out, secrets = split_secrets(out)
    if secrets:
        target = [str(package / SECRETS), str(secrets_file or "<private file>"), *target]
    paddle = ["--master", master, "--nnodes", str(nnodes), "--rank", str(node_rank)]
    paddle += ["--nproc_per_node", str(nproc), *device_args, "--log_dir", str(log_dir)]
    paddle += ["--job_id", run_id, *map(str, launch.extra_args)]
    script = [*target, *map(str, program.args)]
    script += map(str, program.resume_args if attempt > 1 else ())
    argv: tuple[str, ...] = (python, "-m", "paddle.distributed.launch", *paddle, *script)
    out.update(run_env(run_id, run_dir, attempt))
    if guest is not None:
        container.with_pythonpath(out, guest.pythonpath, wanted)
        argv = tuple(container.command(guest, argv, out, gpu=mode == "gpu"))
    launched = (argv, out, mode, master, node_rank, nnodes, nproc, log_dir, secrets)
    return NodeLaunch(*launched, node_gpus(env, config))


def node_gpus(env: Mapping[str, str], config: RunConfig) -> tuple[str, ...]:
    """The node's GPUs as Slurm names them (indices or UUIDs), or launch.devices."""
    named = config.launch.devices or env.get("CUDA_VISIBLE_DEVICES") or ""
    return tuple(d.strip() for d in named.split(",") if d.strip())


def master_address(
    run_id: str, first_node: str, job_id: int, config: RunConfig, resolve: Callable[[str], str]
) -> str:
    """Paddle's --master: the first node's IP address (a name makes every node wait
    forever) and the job's port."""
    try:
        master_ip = resolve(first_node)
    except OSError as exc:
        raise PaddleHpcError(
            f"run {run_id}: cannot resolve the first node {first_node!r} to an IP address "
            f"({exc}); Paddle's --master needs one."
        ) from exc
    return f"{master_ip}:{master_port(job_id, config.launch.master_port)}"


def devices_of(env: Mapping[str, str], cuda: bool, config: RunConfig) -> tuple[str, int, list[str]]:
    """The mode (gpu or cpu), the processes on this node, and the device arguments: a
    CUDA build on a node with GPUs runs one process per device Slurm gave; otherwise
    the CPU build runs without CUDA_VISIBLE_DEVICES (it would take the node for a GPU
    node and fail)."""
    launch = config.launch
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if cuda and visible:
        devices = launch.devices or ",".join(visible)
        return "gpu", launch.nproc_per_node or len(devices.split(",")), ["--devices", devices]
    return "cpu", launch.nproc_per_node or max(1, len(visible)), []


def wanted_env(run_id: str, config: RunConfig, env: Mapping[str, str]) -> dict[str, str]:
    """launch.env, its ${oc.env:...} references resolved from this node's environment."""
    try:
        return {str(k): resolve_env_refs(str(v), env) for k, v in config.launch.env.items()}
    except KeyError as exc:
        raise PaddleHpcError(
            f"run {run_id}: launch.env needs ${{oc.env:{exc.args[0]}}}, and {exc.args[0]} is "
            "not set on this node; export it before `sweep` (sbatch passes it on)."
        ) from exc


def run_env(run_id: str, run_dir: Path, attempt: int) -> dict[str, str]:
    """What a training script reads of its run (paddle_hpc.checkpoint, log_metrics)."""
    return {
        "PADDLE_HPC_RUN_ID": run_id,
        "PADDLE_HPC_RUN_DIR": str(run_dir),
        "PADDLE_HPC_SWEEP_DIR": str(run_dir.parent.parent),
        "PADDLE_HPC_ATTEMPT": str(attempt),
    }
