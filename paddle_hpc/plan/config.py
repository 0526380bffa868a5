"""The config schema, and composing a sweep's base config once with Hydra.

The user's config is free-form (optim, model, data, ...) except for paddle_hpc's own
groups below, which are typed dataclasses: a wrong key or type in them fails with
OmegaConf's message naming the full key. The schemas are registered in Hydra's
ConfigStore as `paddle_hpc/<group>` so a config can also list them in its defaults.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from paddle_hpc.core import packing, runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.layout import MANIFEST
from paddle_hpc.core.schema import GROUPS, RETRYABLE
from paddle_hpc.slurm.parse import time_limit_minutes

BUNDLED_CONF = Path(__file__).resolve().parents[2] / "conf"
# the job name compose_base gives Hydra, so that one the config or a `hydra.job.name=`
# override sets can be told apart (plan/hydra_job.py)
UNNAMED = "\0unnamed"


def register_schemas() -> None:
    store = ConfigStore.instance()
    for name, schema in GROUPS.items():
        store.store(group="paddle_hpc", name=name, node=schema)
    if not OmegaConf.has_resolver("run"):
        OmegaConf.register_new_resolver("run", _run_value)


# The run being resolved: `${run:dir}` and `${run:id}` are its folder and id.
RUN_VALUES = ("dir", "id")
_current_run: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("run")


@contextlib.contextmanager
def resolving_run(run_id: str, run_dir: Path) -> Iterator[None]:
    token = _current_run.set({"id": run_id, "dir": str(run_dir)})
    try:
        yield
    finally:
        _current_run.reset(token)


def _run_value(name: str) -> str:
    if name not in RUN_VALUES:
        raise ValueError(f"${{run:{name}}}: a run has {', '.join(RUN_VALUES)}; use ${{run:dir}}")
    values = _current_run.get(None)
    if values is None:  # the sweep's shared config: it has no run of its own
        raise ValueError(f"${{run:{name}}} has a value in a run's config only")
    return values[name]


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
    choices: Mapping[str, str | None]  # config group -> the option composed (None: none)
    hydra: DictConfig | None = None  # {"hydra": Hydra's own node}, as compose gave it


def resolve_config_dir(config_dir: str | None, cwd: Path) -> Path:
    if config_dir is None:
        local = cwd / "conf"
        return local if local.is_dir() else BUNDLED_CONF
    path = (cwd / config_dir).resolve()
    if not path.is_dir():
        raise ConfigError(f"-cd {config_dir!r}: {path} is not a directory. Pass a config folder.")
    return path


def yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """A YAML file the YAML parser refused, in one line: the file, the line, the problem,
    and the usual fix."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    problem = exc.problem or exc.context or "not YAML"
    text = f"{where}: {problem}"
    if mark is not None and "${" in _line(mark.name, mark.line):
        text += (
            ". An interpolation in a [list] or {mapping} must be quoted: "
            "'${...}' (YAML reads { as a mapping)"
        )
    return text + "."


def _line(path: str, number: int) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()[number]
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


def compose_base(
    config_dir: Path, config_name: str, group_overrides: Sequence[str] = ()
) -> ComposedBase:
    """Composes the primary config with the group choices (and `hydra.*` overrides)
    given, then validates it."""
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(
            config_dir=str(config_dir), job_name=UNNAMED, version_base="1.3"
        ):
            cfg = compose(
                config_name=config_name, overrides=list(group_overrides), return_hydra_config=True
            )
            choices = {
                str(group): None if option is None else str(option)
                for group, option in cfg.hydra.runtime.choices.items()
                if not str(group).startswith("hydra/")
            }
            hydra = OmegaConf.masked_copy(cfg, "hydra")
            with open_dict(cfg):  # as compose does without return_hydra_config
                del cfg["hydra"]
            loader = GlobalHydra.instance().config_loader()
            groups = {
                name: tuple(loader.get_group_options(name)) for name in config_groups(config_dir)
            }
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"composing {config_name!r} from {config_dir}: {exc}") from exc
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(yaml_error(exc)) from exc
    except ValueError as exc:  # Hydra's own, e.g. for a config group set to null
        raise ConfigError(
            f"composing {config_name!r} with {' '.join(group_overrides)}: {exc}. A config "
            "group's choice is the name of one of its options; to leave a group out, use "
            "~GROUP (e.g. ~model)."
        ) from exc
    finally:
        GlobalHydra.instance().clear()
    return ComposedBase(validate(cfg), groups, choices, hydra)


def config_groups(config_dir: Path) -> list[str]:
    """Config groups: the folders of the config dir that hold a YAML config, nested ones
    as 'a/b'. Hidden folders and sweep directories (a folder with a manifest) are not
    looked into: a project whose config dir holds its sweeps (`-cd .`) has thousands of
    run folders there, none of them a group."""
    groups = []
    for folder, dirs, files in os.walk(config_dir):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith((".", "__")) and not (Path(folder) / d / MANIFEST).exists()
        ]
        if folder != str(config_dir) and any(f.endswith((".yaml", ".yml")) for f in files):
            groups.append(Path(folder).relative_to(config_dir).as_posix())
    return sorted(groups)


def check_idle_timeout(launch: Mapping[str, Any], gpus_per_node: int) -> None:
    """launch.idle_gpu_timeout needs GPUs, and samples far enough apart to tell idle."""
    timeout, interval = launch["idle_gpu_timeout"], launch["gpu_sample_interval"]
    if timeout is None:
        return
    if gpus_per_node == 0:
        raise ConfigError(
            "launch.idle_gpu_timeout is set, and resources.gpus_per_node is 0: there is no "
            "GPU to watch; ask for GPUs or remove the key."
        )
    if interval == 0 or timeout < 2 * interval:
        raise ConfigError(
            f"launch.idle_gpu_timeout is {timeout} s with launch.gpu_sample_interval "
            f"{interval} s; it needs two samples or more: set it to {2 * max(interval, 1)} "
            "s or more, or sample more often."
        )


STEP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def check_steps(sweep: Mapping[str, Any]) -> None:
    """sweep.then: each step's name, program and resources."""
    for name, step in (sweep["then"] or {}).items():
        key = f"sweep.then.{name}"
        if not STEP_NAME.fullmatch(str(name)):
            raise ConfigError(
                f"{key}: a step's name starts with a letter and holds letters, digits, _ "
                "and - only (it names a folder and a job); rename it."
            )
        if (step["script"] is None) == (step["module"] is None):
            raise ConfigError(f"{key}: set exactly one of {key}.script or {key}.module.")
        if sweep["trials_per_task"] > 1:
            raise ConfigError(
                f"{key}: a step follows its run's array task, one run each; "
                f"sweep.trials_per_task is {sweep['trials_per_task']}. Set it to 1, or "
                "run the step inside the trial."
            )
        if step["resources"]["nodes"] < 1:
            raise ConfigError(f"{key}.resources.nodes is {step['resources']['nodes']}; 1 or more.")
        try:
            time_limit_minutes(step["resources"]["time"])
        except ValueError:
            raise ConfigError(
                f"{key}.resources.time is {step['resources']['time']!r}; use a Slurm time "
                "such as '30' or '02:00:00'."
            ) from None


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
        ("sweep.max_retries", sweep["max_retries"], 0),
        ("launch.stall_timeout", cfg["launch"]["stall_timeout"] or 1, 1),
        ("sweep.max_gpu_hours", sweep["max_gpu_hours"] or 0, 0),
        ("launch.gpu_sample_interval", cfg["launch"]["gpu_sample_interval"], 0),
    ):
        if value < least:
            raise ConfigError(f"{name} is {value}; it must be {least} or more.")
    check_idle_timeout(cfg["launch"], resources["gpus_per_node"])
    try:
        time_limit_minutes(resources["time"])
    except ValueError:
        raise ConfigError(
            f"resources.time is {resources['time']!r}; use a Slurm time such as '30', "
            "'02:00:00', '1-12:00:00' or 'UNLIMITED'."
        ) from None
    for key, value in [*resources.items(), *resources["sbatch"].items()]:
        if isinstance(value, str) and ("\n" in value or "\\" in value):
            raise ConfigError(
                f"resources value {key}={value!r} has a line break or a backslash, which "
                "an #SBATCH line cannot carry; remove it."
            )
    packing.check(resources, sweep["trials_per_task"])
    check_steps(sweep)
    for state in sweep["retry_on"]:
        if state == runstate.TIMEOUT:
            raise ConfigError(
                "sweep.retry_on: TIMEOUT is not retried automatically: without a checkpoint a "
                "retry starts from scratch and reaches the same limit. Raise resources.time, "
                "or retry by hand with `paddle-hpc retry SWEEP_DIR --state TIMEOUT`, which "
                "asks for more time with sweep.retry_grow.time."
            )
        if state not in RETRYABLE:
            raise ConfigError(
                f"sweep.retry_on: {state!r} is not an end state to retry; use some of "
                f"{', '.join(s for s in RETRYABLE if s != 'TIMEOUT')}."
            )
