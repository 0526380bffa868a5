"""paddle_hpc as a Hydra launcher: an existing `@hydra.main` app switches with one override,

    python train.py -m hydra/launcher=paddle_hpc hydra.launcher.nodes=2 \\
        hydra.launcher.gpus_per_node=4 optim.lr=1e-3,1e-4

Hydra's sweeper makes the points; each becomes a paddle_hpc run of the app with that
job's overrides, in a sweep directory at `hydra.sweep.dir` with its manifest, so
`status`, `logs`, `retry` and `collect` work on it. Submission takes paddle_hpc's own
path: arrays per resource shape, Paddle's launcher on every node of each task. By
default `launch` returns once the arrays are queued (each job's return value then
says where its run is); with `hydra.launcher.wait=true` it waits and returns each
job's status and the app's return value, which `SaveReturn` (a Hydra callback added
to each run) keeps in the run's folder.

The plugin itself is `hydra_plugins/paddle_hpc_launcher`, which Hydra finds.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.files import temp_beside
from paddle_hpc.core.schema import (
    CollectConfig,
    ContainerConfig,
    LaunchConfig,
    ProgramConfig,
    ResourcesConfig,
    SweepConfig,
)

if TYPE_CHECKING:
    from paddle_hpc.backend import RunStatus
    from paddle_hpc.core.layout import SweepDir
    from paddle_hpc.core.manifest import RunEntry
    from paddle_hpc.plan.build import Plan, RunSpec

log = logging.getLogger(__name__)
RETURN_FILE = "return.pkl"  # the app's return value, in its run's folder


@dataclass
class PaddleHpcLauncherConf:
    """`hydra.launcher.*`: the resources and settings of paddle_hpc's groups."""

    _target_: str = "hydra_plugins.paddle_hpc_launcher.PaddleHpcLauncher"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str = "01:00:00"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict[str, Any] = field(default_factory=dict)
    signal_before: int = 90
    max_parallel: int = 8
    max_retries: int = 0
    executor: str = "auto"  # auto: Slurm when sbatch is on the PATH, else local
    python: str | None = None
    setup: list[str] = field(default_factory=list)
    nproc_per_node: int | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stall_timeout: int | None = None
    gpu_sample_interval: int = 30
    idle_gpu_timeout: int | None = None
    wait: bool = False  # wait for every run, and return each job's status and value


@dataclass(frozen=True)
class Submitted:
    """A job's return value when `launch` does not wait: where its run is."""

    run_id: str
    job: str
    sweep_dir: str


class SaveReturn(Callback):
    """Keeps the app's return value in its run's folder (global rank 0 only)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        run_dir = os.environ.get("PADDLE_HPC_RUN_DIR")
        if run_dir is None or os.environ.get("PADDLE_TRAINER_ID", "0") != "0":
            return
        if job_return.status != JobStatus.COMPLETED:
            return
        try:
            data = pickle.dumps(job_return.return_value)
        except Exception as exc:
            log.warning("the return value cannot be pickled (%s); not kept", exc)
            return
        target = Path(run_dir) / RETURN_FILE
        fd, tmp = temp_beside(target)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.replace(target)


_PLAIN = re.compile(r"[\w/.:+-]*\Z")


def quoted(text: str) -> str:
    """A value for a Hydra override: as is when plain, else single-quoted."""
    if _PLAIN.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_config(
    launcher: PaddleHpcLauncherConf,
    app: Path,
    cwd: Path,
    sweep_dir: Path,
    name: str,
    overrides: Sequence[str],
    run_dir: Path | None,
) -> dict[str, Any]:
    """The paddle_hpc config of one job: the app with the job's overrides, each rank's
    Hydra output in its own folder of the run (`hydra/rank<N>`), and SaveReturn."""
    args = list(overrides)
    if run_dir is not None:
        rank_dir = quoted(str(run_dir / "hydra")) + "/rank${oc.env:PADDLE_TRAINER_ID,0}"
        args += [
            f"hydra.run.dir={rank_dir}",
            f"+hydra.callbacks.paddle_hpc_return._target_={__name__}.SaveReturn",
        ]
    resources = ResourcesConfig(
        nodes=launcher.nodes,
        gpus_per_node=launcher.gpus_per_node,
        cpus_per_task=launcher.cpus_per_task,
        mem=launcher.mem,
        time=launcher.time,
        signal_before=launcher.signal_before,
        partition=launcher.partition,
        account=launcher.account,
        qos=launcher.qos,
        constraint=launcher.constraint,
        sbatch=dict(launcher.sbatch),
    )
    sweep = SweepConfig(
        dir=str(sweep_dir),
        name=name,
        max_parallel=launcher.max_parallel,
        max_retries=launcher.max_retries,
    )
    launch = LaunchConfig(
        nproc_per_node=launcher.nproc_per_node,
        extra_args=list(launcher.extra_args),
        env=dict(launcher.env),
        stall_timeout=launcher.stall_timeout,
        gpu_sample_interval=launcher.gpu_sample_interval,
        idle_gpu_timeout=launcher.idle_gpu_timeout,
    )
    cluster = {
        "executor": launcher.executor,
        "setup": list(launcher.setup),
        "python": launcher.python,
        "container": {**asdict(ContainerConfig()), "runtime": "auto"},
    }
    return {
        "program": asdict(ProgramConfig(script=str(app), args=args, cwd=str(cwd))),
        "resources": asdict(resources),
        "sweep": asdict(sweep),
        "launch": asdict(launch),
        "cluster": cluster,
        "collect": asdict(CollectConfig()),
        "app": {"overrides": list(overrides)},
    }


def hydra_plan(
    launcher: PaddleHpcLauncherConf,
    app: Path,
    cwd: Path,
    sweep_dir: Path,
    name: str,
    jobs: Sequence[Sequence[str]],
) -> Plan:
    """A paddle_hpc plan of Hydra's jobs; each is checked as `sweep` checks a point."""
    from paddle_hpc.core.layout import SweepDir
    from paddle_hpc.plan.build import Plan, RunSpec
    from paddle_hpc.plan.config import check_resolved
    from paddle_hpc.plan.grid import Axis, Point, run_id

    keys = list(dict.fromkeys(o.split("=", 1)[0] for job in jobs for o in job))
    values: dict[str, list[str]] = {key: [] for key in keys}
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            if value not in values[key]:
                values[key].append(value)
    axes = tuple(Axis(k, tuple(f"{k}={v}" for v in values[k]), False) for k in keys)
    varied = {k for k in keys if len(values[k]) > 1}
    runs = []
    for number, job in enumerate(jobs):
        point = Point(number, run_id(job), tuple(job))
        pairs = [o.split("=", 1) for o in job]
        swept = {pair[0]: pair[1] for pair in pairs if pair[0] in varied and len(pair) == 2}
        run_dir = SweepDir(sweep_dir).run(point.run_id).path
        config = run_config(launcher, app, cwd, sweep_dir, name, job, run_dir)
        try:
            check_resolved(config)
        except PaddleHpcError as exc:
            raise PaddleHpcError(f"hydra.launcher: {exc}") from exc
        runs.append(RunSpec(point, swept, config))
    base = run_config(launcher, app, cwd, sweep_dir, name, (), None)
    return Plan(sweep_dir, base, axes, tuple(runs), launcher.executor, {}, cwd)


class PaddleHpcLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        params.pop("_target_", None)
        self.params = PaddleHpcLauncherConf(**params)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        # imported here: Hydra imports every plugin when any Hydra app starts, each rank
        # of each run too, and these would double what this module costs it
        from paddle_hpc.backend import WATCH_MAX_AGE_S, states
        from paddle_hpc.backend.submission import submit_plan
        from paddle_hpc.backend.view import watch
        from paddle_hpc.core.command import console as make_console
        from paddle_hpc.core.secret_env import redact_override
        from paddle_hpc.plan.build import build_manifest

        assert self.config is not None and self.hydra_context is not None
        hydra = self.config.hydra
        cwd = Path(str(hydra.runtime.cwd))
        sweep_dir = (cwd / str(hydra.sweep.dir)).resolve()
        jobs = [list(job) for job in job_overrides]
        loader = self.hydra_context.config_loader
        configs = [loader.load_sweep_config(self.config, job) for job in jobs]  # checks them
        app = Path(sys.argv[0]).resolve()
        plan = hydra_plan(self.params, app, cwd, sweep_dir, str(hydra.job.name), jobs)
        command = ("python", *map(redact_override, sys.argv))
        console = make_console(stderr=True)
        done = submit_plan(plan, build_manifest(plan, command), console.print)
        manifest, sweep = done.manifest, done.sweep
        console.print(f"paddle_hpc: {len(done.run_ids)} run(s) in {sweep.path}")
        found: dict[str, RunStatus] = {}
        if self.params.wait or done.backend.runs_here:
            if done.backend.runs_here:  # the runs ran in submit
                ended = states(done.backend, sweep, manifest, WATCH_MAX_AGE_S)
            else:
                ended = watch(sweep, manifest, done.backend, console)
            found = {s.run_id: s for s in ended}
        entries = {r.run_id: r for r in manifest.runs}
        name = str(hydra.job.name)
        return [
            _job_return(spec, config, entries[spec.run_id], found.get(spec.run_id), sweep, name)
            for spec, config in zip(plan.runs, configs, strict=True)
        ]


def _job_return(
    spec: RunSpec,
    config: DictConfig,
    entry: RunEntry,
    status: RunStatus | None,
    sweep: SweepDir,
    name: str,
) -> JobReturn:
    """Hydra's record of one job: where its run is (not waited for), the app's return
    value (COMPLETED), or an error that says how it ended and where its logs are."""
    run_dir = sweep.run(spec.run_id).path
    ret = JobReturn(
        overrides=list(spec.point.overrides),
        cfg=config,
        hydra_cfg=config,
        working_dir=str(run_dir),
        task_name=name,
    )
    if status is None:
        job = f"{entry.job_id}_{entry.array_task}" if entry.job_id is not None else ""
        ret.return_value = Submitted(spec.run_id, job, str(sweep.path))
        ret.status = JobStatus.COMPLETED
    elif status.state == runstate.COMPLETED:
        ret.return_value = _saved_return(run_dir)
        ret.status = JobStatus.COMPLETED
    else:
        ret.return_value = PaddleHpcError(
            f"run {spec.run_id} ({' '.join(spec.point.overrides)}) ended {status.state}"
            + (f": {status.reason}" if status.reason else "")
            + f"; see `paddle-hpc logs {sweep.path} {spec.run_id}`"
        )
        ret.status = JobStatus.FAILED
    return ret


def _saved_return(run_dir: Path) -> Any:
    try:
        return pickle.loads((run_dir / RETURN_FILE).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
