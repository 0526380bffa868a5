"""The config schema, and composing a sweep's base config once with Hydra.

The user's config is free-form (optim, model, data, ...) except for paddle_hpc's own
groups below, which are typed dataclasses: a wrong key or type in them fails with
OmegaConf's message naming the full key. The schemas are registered in Hydra's
ConfigStore as `paddle_hpc/<group>` so a config can also list them in its defaults.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from paddle_hpc.errors import ConfigError

BUNDLED_CONF = Path(__file__).resolve().parent.parent / "conf"


class Executor(enum.Enum):
    auto = "auto"
    slurm = "slurm"
    local = "local"


@dataclass
class ProgramConfig:
    script: str | None = None  # a .py file, relative to the directory the sweep starts in
    module: str | None = None  # or a module, run as `python -m module`
    args: list[str] = field(default_factory=list)  # may interpolate: ["--lr", "${optim.lr}"]


@dataclass
class ResourcesConfig:
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem: str | None = None  # Slurm's --mem, e.g. "16G"
    time: str = "01:00:00"  # Slurm's --time
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict[str, Any] = field(default_factory=dict)  # any other sbatch option


@dataclass
class SweepConfig:
    dir: str = "sweeps/${sweep.name}"  # relative to the directory the sweep starts in
    name: str = "sweep"
    grid: dict[str, Any] = field(default_factory=dict)  # key -> list or sweep expression
    max_parallel: int = 8  # the %K of the job array


@dataclass
class LaunchConfig:
    nproc_per_node: int | None = None  # default: one process per allocated GPU, else 1
    devices: str | None = None  # default: the GPUs Slurm allocated
    master_port: int | None = None  # default: derived from the Slurm job id
    extra_args: list[str] = field(default_factory=list)  # more paddle.distributed.launch flags
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ClusterConfig:
    executor: Executor = Executor.auto  # auto: Slurm when sbatch is on the PATH
    setup: list[str] = field(default_factory=list)  # shell lines run first on compute nodes
    python: str | None = None  # the interpreter on compute nodes; default: this one


@dataclass
class CollectConfig:
    # regexes for worker-log lines: the named group `step`, every other one a metric
    patterns: list[str] = field(default_factory=list)
    parsers: list[str] = field(default_factory=list)  # 'package.module:function' per line


GROUPS: Mapping[str, type] = {
    "program": ProgramConfig,
    "resources": ResourcesConfig,
    "sweep": SweepConfig,
    "launch": LaunchConfig,
    "cluster": ClusterConfig,
    "collect": CollectConfig,
}


def register_schemas() -> None:
    store = ConfigStore.instance()
    for name, schema in GROUPS.items():
        store.store(group="paddle_hpc", name=name, node=schema)


def validate(cfg: DictConfig) -> DictConfig:
    """Merges cfg into the schemas; the result is typed and in struct mode."""
    schema = OmegaConf.create({name: OmegaConf.structured(node) for name, node in GROUPS.items()})
    try:
        merged = OmegaConf.merge(schema, cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{exc}\nFix the key in your config or on the command line.") from exc
    assert isinstance(merged, DictConfig)
    OmegaConf.set_struct(merged, True)
    return merged


@dataclass(frozen=True)
class ComposedBase:
    """The base config composed once, and what the grid needs to know about groups."""

    config: DictConfig
    group_options: Mapping[str, tuple[str, ...]]  # config group -> its options


def resolve_config_dir(config_dir: str | None, cwd: Path) -> Path:
    if config_dir is None:
        local = cwd / "conf"
        return local if local.is_dir() else BUNDLED_CONF
    path = (cwd / config_dir).resolve()
    if not path.is_dir():
        raise ConfigError(f"-cd {config_dir!r}: {path} is not a directory. Pass a config folder.")
    return path


def compose_base(
    config_dir: Path, config_name: str, group_overrides: Sequence[str] = ()
) -> ComposedBase:
    """Composes the primary config with the group choices given, then validates it."""
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(group_overrides))
            loader = GlobalHydra.instance().config_loader()
            groups = {
                name: tuple(loader.get_group_options(name)) for name in config_groups(config_dir)
            }
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"composing {config_name!r} from {config_dir}: {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    return ComposedBase(validate(cfg), groups)


def config_groups(config_dir: Path) -> list[str]:
    """Config groups are folders of the config dir, nested ones as 'a/b'."""
    return sorted(
        str(p.relative_to(config_dir))
        for p in config_dir.rglob("*")
        if p.is_dir() and not p.name.startswith((".", "__"))
    )


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_limit_minutes(text: str) -> int:
    """Slurm's --time formats ('30', '1:30:00', '2-12', '2-12:00:00') -> whole minutes."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(text)
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        total_s = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif third is not None:  # HH:MM:SS
        total_s = int(first) * 3600 + int(second) * 60 + int(third)
    elif second is not None:  # MM:SS
        total_s = int(first) * 60 + int(second)
    else:  # MM
        total_s = int(first) * 60
    return max(1, -(-total_s // 60))


def check_resolved(cfg: Mapping[str, Any]) -> None:
    """Checks what the types alone cannot; raises ConfigError naming the key and the fix."""
    program, resources, sweep = cfg["program"], cfg["resources"], cfg["sweep"]
    if (program["script"] is None) == (program["module"] is None):
        raise ConfigError(
            "program: set exactly one of program.script (a .py file) or program.module."
        )
    for name, value, least in (
        ("resources.nodes", resources["nodes"], 1),
        ("resources.gpus_per_node", resources["gpus_per_node"], 0),
        ("sweep.max_parallel", sweep["max_parallel"], 1),
    ):
        if value < least:
            raise ConfigError(f"{name} is {value}; it must be {least} or more.")
    try:
        time_limit_minutes(resources["time"])
    except ValueError:
        raise ConfigError(
            f"resources.time is {resources['time']!r}; use a Slurm time such as '30', "
            "'02:00:00' or '1-12:00:00'."
        ) from None
    for key, value in [*resources.items(), *resources["sbatch"].items()]:
        if isinstance(value, str) and ("\n" in value or "\\" in value):
            raise ConfigError(
                f"resources value {key}={value!r} has a line break or a backslash, which "
                "an #SBATCH line cannot carry; remove it."
            )
