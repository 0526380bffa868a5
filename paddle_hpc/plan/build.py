"""From config and overrides to a checked plan, and the plan to a sweep directory.

Every point is composed, resolved and checked here, before anything reaches Slurm.
The sweep directory's layout is in core/layout.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.core.schema import RunConfig, SweepConfig
from paddle_hpc.node import container
from paddle_hpc.plan import hydra_job
from paddle_hpc.plan.config import (
    ComposedBase,
    check_resolved,
    compose_base,
    config_groups,
    resolving_run,
)
from paddle_hpc.plan.grid import (
    Axis,
    Point,
    check_added,
    expand,
    grid_axes,
    parse_override,
    searched,
)
from paddle_hpc.plan.points import PointResolver, apply_overrides, related, resolved
from paddle_hpc.plan.program import env_texts, keep_env_refs, resolve_programs


@dataclass(frozen=True)
class RunSpec:
    point: Point
    swept: dict[str, str]
    config: dict[str, Any]  # resolved

    @property
    def run_id(self) -> str:
        return self.point.run_id

    @property
    def label(self) -> str:
        """Its swept values: 'optim.lr=0.1 model=vit'."""
        return " ".join(f"{key}={value}" for key, value in self.swept.items()) or "the only run"


@dataclass(frozen=True)
class Plan:
    sweep_dir: Path
    base: dict[str, Any]  # resolved base config
    axes: tuple[Axis, ...]
    runs: tuple[RunSpec, ...]
    executor: str  # as configured: "auto", "slurm" or "local" (the backend resolves it)
    composed: dict[str, Any]  # the base as composed, before any override, unresolved
    cwd: Path = Path()  # where the sweep starts: the runs' working folder by default

    @property
    def sweep(self) -> SweepConfig:
        return RunConfig.of(self.base).sweep


def shape_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """What an array's sbatch script depends on: runs differing here need another array."""
    cluster = config["cluster"]
    return {
        "resources": config["resources"],
        "setup": cluster["setup"],
        "python": cluster["python"],
        "container": cluster["container"],
    }


# Keys that belong to the sweep as a whole: one value for all of its runs.
SWEEP_LEVEL = ("sweep", "cluster.executor")


def is_sweep_level(key: str) -> bool:
    return any(related(key.lstrip("+~"), level) for level in SWEEP_LEVEL)


def make_plan(
    config_dir: Path,
    config_name: str,
    overrides: Sequence[str],
    cwd: Path,
    trials: Sequence[tuple[int, Sequence[str]]] | None = None,
) -> Plan:
    """The checked plan of a grid; or, given trials (number, the trial's overrides), of
    those points of a search: sweep.grid is then not a grid but the search's space,
    and overrides hold only the fixed ones."""
    check_added(overrides)
    groups = config_groups(config_dir)
    hydra_overrides = hydra_settings(overrides)
    overrides = [text for text in overrides if text not in hydra_overrides]
    fixed_groups = tuple(
        text
        for text in overrides
        if parse_override(text).key_or_group in groups
        and not parse_override(text).is_sweep_override()
    )

    def compose(group_choice: tuple[str, ...]) -> ComposedBase:
        if group_choice == fixed_groups or chosen_already(first, group_choice):
            return first
        composed = compose_base(config_dir, config_name, (*group_choice, *hydra_overrides))
        hydra_job.prepare(composed, cwd)
        return composed

    first = compose_base(config_dir, config_name, (*fixed_groups, *hydra_overrides))
    hydra_job.prepare(first, cwd)
    with hydra_job.sweep_job(first.hydra):
        settings = sweep_settings(first, overrides)
        points = None
        if trials is None and settings.search.n_trials > 0:
            raise SearchRequested()
        if trials is None:
            axes = sweep_axes(settings, first.hydra, overrides, first.group_options)
        else:
            found, points = searched(grid_axes({}, overrides, first.group_options), trials)
            axes = tuple(found)
        sweep_dir = (cwd / str(settings.sweep.dir)).resolve()
        runs = resolve_runs(axes, compose, cwd, sweep_dir, points)
        fixed = [a.override(a.choices[0]) for a in axes if not a.swept and not a.is_group]
        base = common_config(apply_overrides(first.config, fixed))
    keep_env_refs(base, {**env_texts(first.config, ()), **env_texts(None, fixed)})
    executor = runs[0].config["cluster"]["executor"]
    composed = OmegaConf.to_container(first.config, resolve=False, enum_to_str=True)
    assert isinstance(composed, dict)
    composed_base = {str(k): v for k, v in composed.items()}
    return Plan(sweep_dir, base, axes, tuple(runs), executor, composed_base, cwd)


def hydra_settings(overrides: Sequence[str]) -> tuple[str, ...]:
    """The `hydra.*` overrides: Hydra's own settings, composed with the config."""
    found = tuple(text for text in overrides if parse_override(text).is_hydra_override())
    for text in found:
        if parse_override(text).is_sweep_override():
            raise ConfigError(
                f"{text!r}: Hydra's own settings (hydra.*) have one value for the whole "
                "sweep. Give one value."
            )
    return found


def chosen_already(composed: ComposedBase, group_overrides: Sequence[str]) -> bool:
    """Whether every override is a plain `group=option` picking the option `composed`
    has already: composing with it again would give the same config (one Hydra
    compose, about 0.1 s, saved for the first option of a swept group)."""
    for text in group_overrides:
        override = parse_override(text)
        if override.type != OverrideType.CHANGE or override.is_sweep_override():
            return False
        if composed.choices.get(override.key_or_group) != override.value():
            return False
    return True


class SearchRequested(Exception):
    """make_plan of a sweep that searches (search.n_trials): search/driver.py plans it."""


def sweep_settings(first: ComposedBase, overrides: Sequence[str]) -> DictConfig:
    """The base with the command line's own sweep.* and search.* settings applied."""
    settings = [
        o
        for o in map(parse_override, overrides)
        if (is_sweep_level(o.key_or_group) or related(o.key_or_group, "search"))
        and not o.is_sweep_override()
    ]
    try:
        return apply_overrides(first.config, settings)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain(exc)) from exc


def sweep_axes(
    settings: DictConfig,
    hydra: DictConfig | None,
    overrides: Sequence[str],
    group_options: Mapping[str, tuple[str, ...]],
) -> tuple[Axis, ...]:
    """sweep.grid's axes (after the command line's own sweep.* settings), then those of
    `hydra.sweeper.params` (as Hydra's BasicSweeper reads them), then the command
    line's."""
    try:
        grid = OmegaConf.to_container(settings.sweep.grid, resolve=True)
        params = hydra_job.sweeper_params(hydra)
    except OmegaConfBaseException as exc:
        raise ConfigError(explain(exc)) from exc
    assert isinstance(grid, dict)
    entries = {str(k): v for k, v in grid.items()}
    entries.update(params)
    axes = tuple(grid_axes(entries, overrides, group_options))
    for axis in axes:
        if is_sweep_level(axis.key) and len(axis.choices) > 1:
            raise ConfigError(f"{axis.key} cannot be swept: it has one value for the whole sweep.")
    return axes


def resolve_runs(
    axes: Sequence[Axis],
    compose: Callable[[tuple[str, ...]], ComposedBase],
    cwd: Path,
    sweep_dir: Path,
    points: Sequence[Point] | None = None,
) -> list[RunSpec]:
    """Every point's config, resolved and checked; the first bad point raises."""
    resolvers: dict[tuple[str, ...], PointResolver] = {}
    jobs: dict[tuple[str, ...], hydra_job.Job | None] = {}
    env_bases: dict[tuple[str, ...], dict[str, Any]] = {}
    scripts: dict[tuple[str | None, Path], str | None] = {}
    images: dict[str, str] = {}
    runs = []
    texts = [text for axis in axes for text in axis.choices]
    for point in expand(axes) if points is None else points:
        group_choice = tuple(o for a, o in zip(axes, point.overrides, strict=True) if a.is_group)
        values = [
            a.override(o) for a, o in zip(axes, point.overrides, strict=True) if not a.is_group
        ]
        try:
            if group_choice not in resolvers:
                composed = compose(group_choice)
                resolvers[group_choice] = PointResolver(composed.config)
                jobs[group_choice] = hydra_job.used(composed, texts)
                env_bases[group_choice] = env_texts(composed.config, ())
            run_dir = SweepDir(sweep_dir).run(point.run_id).path
            job = jobs[group_choice]
            if job is not None:
                hydra_job.set_job(job, point.index, point.run_id, point.overrides, run_dir)
            with (
                resolving_run(point.run_id, run_dir),
                hydra_job.sweep_job(job.hydra if job else None),
            ):
                config = resolvers[group_choice].resolve(values)
            check_resolved(config)
            keep_env_refs(config, {**env_bases[group_choice], **env_texts(None, values)})
            workdir, script = resolve_programs(config, cwd, run_dir, scripts)
            image = config["cluster"]["container"]
            if image["image"] is not None:
                shared = [sweep_dir, workdir or cwd, *([Path(script).parent] if script else [])]
                checked = repr((image, shared))
                if checked not in images:
                    images[checked] = container.check(image, cwd, shared)
                image["image"] = images[checked]
        except (HydraException, OmegaConfBaseException, ConfigError) as exc:
            base = resolvers.get(group_choice)
            why = (base and not_in_config(axes, base.base)) or explain(exc)
            raise ConfigError(
                f"run {point.run_id} (grid point {point.index}: {' '.join(point.overrides)}): {why}"
            ) from exc
        runs.append(RunSpec(point, point.swept(axes), config))
    check_distinct(runs)
    return runs


def explain(exc: BaseException) -> str:
    """The error's message and, when Hydra wraps OmegaConf's error, OmegaConf's too."""
    cause = exc.__cause__
    return f"{exc}: {cause}" if cause is not None and str(cause) not in str(exc) else str(exc)


def not_in_config(axes: Sequence[Axis], config: DictConfig) -> str | None:
    """Advice for a sweep.grid key the config does not have, if there is one."""
    for axis in axes:
        changes = axis.in_grid and not axis.is_group and not axis.key.startswith(("+", "~"))
        if changes and OmegaConf.select(config, axis.key, default=_ABSENT) is _ABSENT:
            return (
                f"sweep.grid.{axis.key}: the config has no key {axis.key!r}. Add it to the "
                f"config, or name it '+{axis.key}' in sweep.grid to add it to every run."
            )
    return None


_ABSENT = object()


def check_distinct(runs: Sequence[RunSpec]) -> None:
    """Refuses a grid that holds one run twice."""
    seen: dict[str, Point] = {}
    for run in runs:
        twin = seen.setdefault(run.run_id, run.point)
        if twin is run.point:
            continue
        differ = [o for o in run.point.overrides if o not in twin.overrides]
        why = (
            f"they differ only in {', '.join(o.split('=')[0] for o in differ)}, which says how "
            "a run is submitted, not what it trains: give it one value"
            if differ
            else "remove the repeated value"
        )
        raise ConfigError(
            f"grid points {twin.index} and {run.point.index} are the same run "
            f"{run.run_id} ({' '.join(run.point.overrides)}): {why}."
        )


def common_config(cfg: DictConfig) -> dict[str, Any]:
    """The base with the overrides that every run shares, resolved where it can be: an
    interpolation that only the swept values make resolvable stays as its text."""
    try:
        return resolved(cfg)
    except OmegaConfBaseException:
        container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        assert isinstance(container, dict)
        return {str(k): v for k, v in container.items()}


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
        axes=tuple(a.key for a in plan.axes if a.swept),
        shapes=tuple(shapes),
        runs=tuple(entries),
        extra={"base": plan.composed},
    )
