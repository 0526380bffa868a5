"""paddle_hpc's own config groups as typed dataclasses. No Hydra here: compute nodes read
a run's resolved config.yaml into a `RunConfig` without importing it. `plan/config.py`
registers these with Hydra and OmegaConf, which check keys and types at compose time.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from paddle_hpc.core import runstate

# Slurm end states a run may be retried after (sweep.retry_on, `retry --state`).
RETRYABLE = (
    runstate.FAILED,
    runstate.NODE_FAIL,
    runstate.PREEMPTED,
    runstate.OUT_OF_MEMORY,
    runstate.TIMEOUT,
    runstate.BOOT_FAIL,
)


class Executor(enum.Enum):
    auto = "auto"
    slurm = "slurm"
    local = "local"


@dataclass
class ProgramConfig:
    script: str | None = None  # a .py file, relative to cwd (below) when set, else to the
    # directory the sweep starts in
    module: str | None = None  # or a module, run as `python -m module`
    # may interpolate: ["--lr", "${optim.lr}", "--output_dir", "${run:dir}/output"]
    args: list[str] = field(default_factory=list)
    cwd: str | None = None  # the folder the program runs in, e.g. the suite's repository
    # added to args when a run starts again (a requeue or retry): a suite's own resume
    # option, e.g. ["-o", "Global.checkpoints=${run:dir}/output/latest"]
    resume_args: list[str] = field(default_factory=list)


@dataclass
class ResourcesConfig:
    nodes: int = 1
    gpus_per_node: int = 0
    # a packed trial's share: 0.5 runs two trials per GPU, 2 gives each trial two GPUs
    # (sweep.trials_per_task > 1); default: each trial in turn gets the whole allocation
    gpus_per_trial: float | None = None
    mps: bool = False  # start CUDA MPS for the task, so that packed trials share GPUs well
    cpus_per_task: int | None = None
    mem: str | None = None  # Slurm's --mem, e.g. "16G"
    time: str = "01:00:00"  # Slurm's --time
    signal_before: int = 90  # seconds before the time limit the job is told to stop
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict[str, Any] = field(default_factory=dict)  # any other sbatch option


@dataclass
class RetryGrowConfig:
    """What a retry of a run that ran out of memory or time asks for (backend/grow.py)."""

    mem: float = 1.0  # an OUT_OF_MEMORY run's retry asks for this times its memory
    time: float = 1.0  # a TIMEOUT run's retry asks for this times its time limit
    max_mem: str | None = None  # no more than this per node, e.g. "256G"
    max_time: str | None = None  # no longer than this, e.g. "2-00:00:00"


@dataclass
class StepConfig:
    """A step that follows each run once it completes (sweep.then.<name>), e.g. its
    evaluation on a CPU partition: a program of its own, run once per run in an array
    that Slurm starts task by task after the training array's (aftercorr)."""

    script: str | None = None  # a .py file, as program.script
    module: str | None = None  # or a module, run as `python -m module`
    # may interpolate the run's values and folder: ["--ckpt", "${run:dir}/output"]
    args: list[str] = field(default_factory=list)
    cwd: str | None = None  # the folder it runs in; default: the run's folder
    env: dict[str, str] = field(default_factory=dict)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)  # its own


@dataclass
class SweepConfig:
    dir: str = "sweeps/${sweep.name}"  # relative to the directory the sweep starts in
    name: str = "sweep"
    grid: dict[str, Any] = field(default_factory=dict)  # key -> list or sweep expression
    max_parallel: int = 8  # the %K of the job array
    max_retries: int = 0  # automatic retries of a run that ends in a retry_on state
    max_requeues: int = 3  # requeues of a run that saved a checkpoint when told to stop
    retry_on: list[str] = field(
        default_factory=lambda: [runstate.FAILED, runstate.NODE_FAIL, runstate.PREEMPTED]
    )
    trials_per_task: int = 1  # runs packed into one array task (one node), see packing.py
    # refuse a submission whose tasks ask for more GPU-hours (nodes x GPUs x time limit)
    max_gpu_hours: float | None = None
    retry_grow: RetryGrowConfig = field(default_factory=RetryGrowConfig)
    # a shape whose resources.partition names several goes to the one `sbatch
    # --test-only` expects to start it first (else Slurm picks when each task starts)
    earliest_partition: bool = False
    then: dict[str, StepConfig] = field(default_factory=dict)  # steps after each run


@dataclass
class LaunchConfig:
    nproc_per_node: int | None = None  # default: one process per allocated GPU, else 1
    devices: str | None = None  # default: the GPUs Slurm allocated
    master_port: int | None = None  # default: derived from the Slurm job id
    extra_args: list[str] = field(default_factory=list)  # more paddle.distributed.launch flags
    env: dict[str, str] = field(default_factory=dict)
    # seconds without output (worker logs, metrics.jsonl) after which a run is stopped
    stall_timeout: int | None = None
    gpu_sample_interval: int = 30  # seconds between two samples of each node's GPUs; 0: none
    idle_gpu_timeout: int | None = None  # seconds of every GPU of a node at 0%: stopped, IDLE


class Runtime(enum.Enum):
    auto = "auto"  # the first on the node that can run the image (node/container.py)
    apptainer = "apptainer"
    singularity = "singularity"
    charliecloud = "charliecloud"
    podman = "podman"


@dataclass
class ContainerConfig:
    # an Apptainer .sif, a Charliecloud image folder or SquashFS file, a Podman image name
    image: str | None = None
    runtime: Runtime = Runtime.auto
    python: str = "python3"  # the interpreter inside the image
    binds: list[str] = field(default_factory=list)  # more "SRC" or "SRC:DST" mounts
    flags: list[str] = field(default_factory=list)  # more flags of the runtime's run command


@dataclass
class ClusterConfig:
    executor: Executor = Executor.auto  # auto: Slurm when sbatch is on the PATH
    setup: list[str] = field(default_factory=list)  # shell lines run first on compute nodes
    python: str | None = None  # the interpreter on compute nodes; default: this one
    # the image each node's launcher runs in (node/container.py); default: none, the host's
    container: ContainerConfig = field(default_factory=ContainerConfig)


@dataclass
class CollectConfig:
    # regexes for worker-log lines: the named group `step`, every other one a metric
    patterns: list[str] = field(default_factory=list)
    parsers: list[str] = field(default_factory=list)  # 'package.module:function' per line
    # folders, relative to a run's, where its script writes VisualDL logs (vdlrecords.*.log)
    visualdl: list[str] = field(default_factory=lambda: ["visualdl"])


class Direction(enum.Enum):
    minimize = "minimize"
    maximize = "maximize"


@dataclass
class SearchConfig:
    """An Optuna search instead of a grid (search/driver.py): on when n_trials is set."""

    n_trials: int = 0  # the study's trials in all; run the sweep again with more to add
    # trials in flight: as one ends (or is pruned), the next is asked and submitted at
    # once; default 4. Or batch_size: that many asked at once, the next batch when all
    # of them have ended. Give one of the two.
    parallel: int | None = None
    batch_size: int | None = None
    # key -> a sweep in Hydra's Optuna sweeper grammar, e.g. "tag(log, interval(1e-4, 0.1))";
    # sweep.grid's entries and the command line's sweeps are searched too
    params: dict[str, str] = field(default_factory=dict)
    objective: str = "final.loss"  # a column of the runs table: final.<metric>, best.<metric>
    direction: Direction = Direction.minimize
    # Optuna's sampler and pruner, as Hydra instantiates them ({} prunes nothing), e.g.
    # {_target_: optuna.pruners.MedianPruner, n_startup_trials: 4, n_warmup_steps: 2}
    sampler: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None}
    )
    pruner: dict[str, Any] = field(default_factory=dict)
    report: str | None = None  # the logged metric the pruner judges; default: the objective's
    poll: float = 10.0  # seconds between looks at the running trials
    trial: int | None = None  # set per run: its trial's number in the study


GROUPS: Mapping[str, type] = {
    "program": ProgramConfig,
    "resources": ResourcesConfig,
    "sweep": SweepConfig,
    "launch": LaunchConfig,
    "cluster": ClusterConfig,
    "collect": CollectConfig,
    "search": SearchConfig,
}


def _group(kind: type[Any], values: Mapping[str, Any] | None) -> Any:
    names = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in (values or {}).items() if k in names})


def sweep_config(values: Mapping[str, Any] | None) -> SweepConfig:
    """A SweepConfig from its values as a config or `asdict` holds them."""
    sweep = dict(values or {})
    sweep["retry_grow"] = _group(RetryGrowConfig, sweep.get("retry_grow"))
    sweep["then"] = {
        str(name): _group(
            StepConfig, {**step, "resources": _group(ResourcesConfig, step.get("resources"))}
        )
        for name, step in (sweep.get("then") or {}).items()
    }
    return _group(SweepConfig, sweep)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RunConfig:
    """A resolved config's own groups, typed; `whole` is all of it (the user's keys too)."""

    program: ProgramConfig
    resources: ResourcesConfig
    sweep: SweepConfig
    launch: LaunchConfig
    cluster: ClusterConfig
    collect: CollectConfig
    whole: Mapping[str, Any]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RunConfig:
        """From a resolved config (enums as their names), as a plan and config.yaml hold it."""
        cluster = dict(config.get("cluster") or {})
        if "executor" in cluster:
            cluster["executor"] = Executor(str(cluster["executor"]))
        container = dict(cluster.get("container") or {})
        if "runtime" in container:
            container["runtime"] = Runtime(str(container["runtime"]))
        cluster["container"] = _group(ContainerConfig, container)
        return cls(
            program=_group(ProgramConfig, config.get("program")),
            resources=_group(ResourcesConfig, config.get("resources")),
            sweep=sweep_config(config.get("sweep")),
            launch=_group(LaunchConfig, config.get("launch")),
            cluster=_group(ClusterConfig, cluster),
            collect=_group(CollectConfig, config.get("collect")),
            whole=config,
        )

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        """A run's resolved config.yaml; ValueError when it holds no config."""
        import yaml  # not for the many readers that never load one

        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise ValueError(f"{path} does not hold a config mapping")
        return cls.of(config)


def step_names(config: Path) -> list[str]:
    """The steps (sweep.then) of a sweep's config.yaml; none if it cannot be read."""
    try:
        return list(RunConfig.load(config).sweep.then)
    except (OSError, ValueError):
        return []


def unknown_key(key: str) -> str | None:
    """The first part of a dotted key under paddle_hpc's groups that their schemas do not
    have (`resources.nope`), or None: a key of the user's own, or below a mapping
    (`resources.sbatch.mail-type`) or a value, is anyone's to add."""
    parts = key.split(".")
    kind: Any = GROUPS.get(parts[0])
    index = 1
    while kind is not None and index < len(parts):
        if parts[index] not in {f.name for f in fields(kind)}:
            return ".".join(parts[: index + 1])
        hint = typing.get_type_hints(kind)[parts[index]]
        index += 1
        if typing.get_origin(hint) is dict and is_dataclass(typing.get_args(hint)[1]):
            kind, index = typing.get_args(hint)[1], index + 1  # sweep.then.<name>.<field>
        else:
            kind = hint if is_dataclass(hint) else None
    return None
