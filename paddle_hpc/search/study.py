"""A search's Optuna study: kept in the sweep directory, so that it outlives the driver.

The study is Optuna's journal file (`search/study.journal`), which needs no database
server and takes appends from one driver at a time (search/driver.py holds a lock). The
sampler and the pruner are instantiated as Hydra instantiates objects (`_target_`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import Direction, SearchConfig

STUDY_NAME = "paddle_hpc"
DEFAULT_PARALLEL = 4
TPE = "optuna.samplers.TPESampler"
JOURNAL = "study.journal"


def search_config(values: Mapping[str, Any]) -> SearchConfig:
    """search.* of a resolved config (the direction as its name)."""
    known = {f.name for f in fields(SearchConfig)}
    config = SearchConfig(**{k: v for k, v in values.items() if k in known})
    config.direction = Direction(str(config.direction))
    return config


def check(config: SearchConfig) -> None:
    """What the types alone cannot check; the message names the key and the fix."""
    for key, value in (
        ("search.n_trials", config.n_trials),
        ("search.parallel", config.parallel),
        ("search.batch_size", config.batch_size),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{key} is {value}; it must be 1 or more.")
    if config.parallel is not None and config.batch_size is not None:
        raise ConfigError(
            f"search.parallel is {config.parallel} and search.batch_size is "
            f"{config.batch_size}: give one. parallel keeps that many trials in flight, "
            "batch_size runs them in batches that wait for their slowest trial."
        )
    if config.poll <= 0:
        raise ConfigError(f"search.poll is {config.poll}; give the seconds between looks (> 0).")
    if not config.objective.startswith(("final.", "best.")):
        raise ConfigError(
            f"search.objective is {config.objective!r}: give a column of the runs table, "
            "final.<metric> (its last logged value) or best.<metric> (a suite's best)."
        )
    built(sampler_spec(config), "search.sampler", 0)
    built(config.pruner, "search.pruner", 0)


def in_flight(config: SearchConfig) -> tuple[int, bool]:
    """How many trials run at once, and whether in batches."""
    if config.batch_size is not None:
        return config.batch_size, True
    return config.parallel or DEFAULT_PARALLEL, False


def to_ask(config: SearchConfig, running: int) -> int:
    """How many trials to ask now, with `running` in flight: up to search.parallel; in
    batches, a batch once the last one has ended."""
    count, batches = in_flight(config)
    if batches:
        return 0 if running else count
    return max(0, count - running)


def report_name(config: SearchConfig) -> str:
    """The logged metric whose values, step by step, the pruner judges."""
    return config.report or config.objective.split(".", 1)[1]


def built(spec: Mapping[str, Any], key: str, seed_offset: int) -> Any:
    """The sampler or pruner of spec ({} gives None); a seed is moved on by seed_offset,
    so that a study continued later does not draw its first points again."""
    if not spec:
        return None
    values = dict(spec)
    if values.get("seed") is not None:
        values["seed"] = int(values["seed"]) + seed_offset
    try:
        return instantiate(values)
    except Exception as exc:
        raise ConfigError(
            f"{key}: cannot make {spec.get('_target_')!r} of {dict(spec)}: {exc}. Give "
            f"{{_target_: optuna.samplers.TPESampler, seed: 0}} or another class of Optuna "
            "with its arguments."
        ) from exc


def sampler_spec(config: SearchConfig) -> dict[str, Any]:
    """search.sampler, TPE when it is {}. Trials are asked while others run, so TPE lies
    constantly (Optuna's `constant_liar`: a running trial counts as a poor one, and the
    next one asked is not drawn beside it) unless it is told otherwise."""
    spec = dict(config.sampler) or {"_target_": TPE}
    if spec.get("_target_") == TPE:
        spec.setdefault("constant_liar", True)
    return spec


def open_study(folder: Path, config: SearchConfig) -> optuna.Study:
    """The sweep's study, created the first time; its sampler and pruner are config's."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
    study = optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction=config.direction.value,
        load_if_exists=True,
    )
    if study.direction.name.lower() != config.direction.value:
        raise ConfigError(
            f"search.direction is {config.direction.value}, but this sweep's study "
            f"{study.direction.name.lower()}s its objective. Keep it, or start another "
            "sweep (sweep.name)."
        )
    study.sampler = built(sampler_spec(config), "search.sampler", len(study.trials))
    study.pruner = built(config.pruner, "search.pruner", 0) or optuna.pruners.NopPruner()
    return study


def objective_value(value: Any) -> float | None:
    """A runs-table cell as the value to tell Optuna; None when there is none."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
