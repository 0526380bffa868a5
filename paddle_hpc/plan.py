"""From config and overrides to a checked plan, and the plan to a sweep directory.

Every point is composed, resolved and checked here, before anything reaches Slurm.
Layout of a sweep directory:

    config.yaml               the resolved base config
    manifest.json             run id <-> overrides <-> array job id and task
    runs/<run_id>/config.yaml the run's resolved config
    runs/<run_id>/            its logs (workerlog.N per node), metrics.jsonl, state
    slurm/                    submitit's scripts, pickles and Slurm output
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from paddle_hpc.config import (
    ComposedBase,
    apply_overrides,
    check_resolved,
    compose_base,
    config_groups,
)
from paddle_hpc.errors import ConfigError
from paddle_hpc.grid import Axis, Point, expand, grid_axes, parse_override
from paddle_hpc.manifest import Manifest, RunEntry, manifest_path, save

# libyaml's dumper when PyYAML was built with it: several times faster.
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class RunSpec:
    point: Point
    swept: dict[str, str]
    config: dict[str, Any]  # resolved

    @property
    def run_id(self) -> str:
        return self.point.run_id


@dataclass(frozen=True)
class Plan:
    sweep_dir: Path
    base: dict[str, Any]  # resolved base config
    axes: tuple[Axis, ...]
    runs: tuple[RunSpec, ...]
    executor: str  # "slurm" or "local"


def shape_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """What an array's sbatch script depends on: runs differing here need another array."""
    cluster = config["cluster"]
    return {
        "resources": config["resources"],
        "setup": cluster["setup"],
        "python": cluster["python"],
    }


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """cfg as plain, resolved Python values (enums as their names)."""
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def script_path(script: str | None, cwd: Path) -> str | None:
    """program.script made absolute (relative to where the sweep starts), and checked."""
    if script is None:
        return None
    path = (cwd / script).resolve()
    if not path.is_file():
        raise ConfigError(f"program.script is {script!r}, but {path} is not a file.")
    return str(path)


def make_plan(
    config_dir: Path,
    config_name: str,
    overrides: Sequence[str],
    cwd: Path,
    which: Callable[[str], str | None] = shutil.which,
) -> Plan:
    groups = config_groups(config_dir)
    fixed_groups = [
        text
        for text in overrides
        if parse_override(text).key_or_group in groups
        and not parse_override(text).is_sweep_override()
    ]
    bases: dict[tuple[str, ...], ComposedBase] = {
        tuple(fixed_groups): compose_base(config_dir, config_name, fixed_groups)
    }
    first = bases[tuple(fixed_groups)]
    grid = resolved(first.config.sweep.grid)
    axes = tuple(grid_axes(grid, overrides, first.group_options))
    for axis in axes:
        if axis.key.lstrip("+~").startswith("sweep.") and len(axis.choices) > 1:
            raise ConfigError(f"{axis.key} cannot be swept: a sweep has one directory and name.")

    runs = []
    for point in expand(axes):
        group_choice = tuple(o for a, o in zip(axes, point.overrides, strict=True) if a.is_group)
        values = [
            parse_override(o) for a, o in zip(axes, point.overrides, strict=True) if not a.is_group
        ]
        try:
            if group_choice not in bases:
                bases[group_choice] = compose_base(config_dir, config_name, group_choice)
            cfg = apply_overrides(bases[group_choice].config, values)
            config = resolved(cfg)
            check_resolved(config)
            config["program"]["script"] = script_path(config["program"]["script"], cwd)
        except (HydraException, OmegaConfBaseException, ConfigError) as exc:
            raise ConfigError(
                f"run {point.run_id} (grid point {point.index}: {' '.join(point.overrides)}): {exc}"
            ) from exc
        runs.append(RunSpec(point, point.swept(axes), config))
    seen: dict[str, Point] = {}
    for run in runs:
        twin = seen.setdefault(run.run_id, run.point)
        if twin is not run.point:
            raise ConfigError(
                f"grid points {twin.index} and {run.point.index} are the same run "
                f"({' '.join(run.point.overrides)}): remove the repeated value."
            )

    base = resolved(first.config)
    executor = base["cluster"]["executor"]
    if executor == "auto":
        executor = "slurm" if which("sbatch") else "local"
    sweep_dir = (cwd / base["sweep"]["dir"]).resolve()
    return Plan(sweep_dir, base, axes, tuple(runs), executor)


def to_yaml(data: Any) -> str:
    return str(yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True))


def build_manifest(plan: Plan, command: Sequence[str]) -> Manifest:
    """The manifest of a plan, in state 'planned': runs grouped into resource shapes."""
    shapes: list[dict[str, Any]] = []
    keys: dict[str, int] = {}
    entries = []
    for run in plan.runs:
        shape = shape_of(run.config)
        key = json.dumps(shape, sort_keys=True)
        if key not in keys:
            keys[key] = len(shapes)
            shapes.append(shape)
        entries.append(
            RunEntry(run.run_id, run.point.index, run.point.overrides, run.swept, keys[key])
        )
    return Manifest(
        name=plan.base["sweep"]["name"],
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=tuple(command),
        executor=plan.executor,
        axes=tuple(a.key for a in plan.axes if len(a.choices) > 1),
        shapes=tuple(shapes),
        runs=tuple(entries),
    )


def write_plan(plan: Plan, manifest: Manifest) -> None:
    """Writes the sweep directory: configs first, the manifest last."""
    if manifest_path(plan.sweep_dir).exists():
        raise ConfigError(
            f"{plan.sweep_dir} already holds a sweep. Choose another with sweep.dir=... or "
            "sweep.name=..., or remove that directory."
        )
    for run in plan.runs:
        run_dir = plan.sweep_dir / "runs" / run.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(run.config), encoding="utf-8")
    (plan.sweep_dir / "config.yaml").write_text(to_yaml(plan.base), encoding="utf-8")
    save(plan.sweep_dir, manifest)
