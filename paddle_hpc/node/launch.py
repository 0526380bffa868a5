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
    job_id = int(env.get("SLURM_JOB_ID", "0"))
    try:
        master_ip = resolve(nodes[0])
    except OSError as exc:
        raise PaddleHpcError(
            f"run {run_id}: cannot resolve the first node {nodes[0]!r} to an IP address "
            f"({exc}); Paddle's --master needs one."
        ) from exc
    master = f"{master_ip}:{master_port(job_id, launch.master_port)}"

    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    out = clean_env(env)
    if guest is not None:
        python, package = guest.python, Path(guest.pythonpath) / PACKAGE.name
        out = container.guest_env(out)
    else:
        package = PACKAGE
    device_args: list[str] = []
    if cuda and visible:
        mode = "gpu"
        devices = launch.devices or ",".join(visible)
        nproc = launch.nproc_per_node or len(devices.split(","))
        device_args = ["--devices", devices]
    else:
        mode = "cpu"
        nproc = launch.nproc_per_node or max(1, len(visible))
        out.pop("CUDA_VISIBLE_DEVICES", None)

    log_dir = RunDir(run_dir).node_logs(node_rank)
    if program.script is not None:
        target = [program.script]
    else:
        target = [str(package / RUN_MODULE), str(program.module)]
    try:
        wanted = {str(k): resolve_env_refs(str(v), env) for k, v in launch.env.items()}
    except KeyError as exc:
        raise PaddleHpcError(
            f"run {run_id}: launch.env needs ${{oc.env:{exc.args[0]}}}, and {exc.args[0]} is "
            "not set on this node; export it before `sweep` (sbatch passes it on)."
        ) from exc
    out.update(wanted)
    out, secrets = split_secrets(out)
    if secrets:
        target = [str(package / SECRETS), str(secrets_file or "<private file>"), *target]
    argv = (
        python,
        "-m",
        "paddle.distributed.launch",
        "--master",
        master,
        "--nnodes",
        str(nnodes),
        "--rank",
        str(node_rank),
        "--nproc_per_node",
        str(nproc),
        *device_args,
        "--log_dir",
        str(log_dir),
        "--job_id",
        run_id,
        *(str(a) for a in launch.extra_args),
        *target,
        *(str(a) for a in program.args),
        *(str(a) for a in (program.resume_args if attempt > 1 else ())),
    )
    out.update(
        {
            "PADDLE_HPC_RUN_ID": run_id,
            "PADDLE_HPC_RUN_DIR": str(run_dir),
            "PADDLE_HPC_SWEEP_DIR": str(run_dir.parent.parent),
            "PADDLE_HPC_ATTEMPT": str(attempt),
        }
    )
    if guest is not None:
        container.with_pythonpath(out, guest.pythonpath, wanted)
        argv = tuple(container.command(guest, argv, out, gpu=mode == "gpu"))
    return NodeLaunch(argv, out, mode, master, node_rank, nnodes, nproc, log_dir, secrets)
