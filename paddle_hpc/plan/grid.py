"""Sweep overrides -> grid points with stable run ids. Pure: no I/O, no Hydra composition.

Overrides use Hydra's grammar and are parsed by Hydra's own parser: `a=1,2`,
`range(...)`, `choice(...)`, `glob(...)` (config groups only) and `+key=`.
`sweep.grid` entries (key -> list, or a sweep expression string) are swept too; the
grid is their cartesian product, in order: `sweep.grid` keys first, then the
command line's, the last key varying fastest. As in Hydra's BasicSweeper, a key given
again (on the command line, or both ways) keeps its first place and takes the last
values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, OverrideType, ValueType
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import GROUPS, unknown_key


@dataclass(frozen=True)
class Axis:
    """One swept (or fixed) key: the override strings of its values, in order."""

    key: str
    choices: tuple[str, ...]  # full override strings: 'optim.lr=0.001'
    is_group: bool
    # sweep.grid's lists and mappings, as YAML gave them: override text cannot carry
    # every mapping key ('x:y', '1', 'a,b'), so these are applied as values
    values: dict[str, Any] = field(default_factory=dict, compare=False)
    searched: bool = False  # a search's key: swept, whatever its number of choices
    in_grid: bool = False  # given in sweep.grid (or hydra.sweeper.params), not on the command line

    @property
    def swept(self) -> bool:
        return self.searched or len(self.choices) > 1

    def override(self, text: str) -> Override:
        """The override of one of the choices, as Hydra applies it."""
        if text not in self.values:
            return parse_override(text)
        key = self.key.lstrip("+")
        kind = {0: OverrideType.CHANGE, 1: OverrideType.ADD}.get(
            len(self.key) - len(key), OverrideType.FORCE_ADD
        )
        return Override(kind, key, ValueType.ELEMENT, self.values[text], input_line=text)


@dataclass(frozen=True)
class Point:
    index: int
    run_id: str
    overrides: tuple[str, ...]  # one per axis, in axis order

    def swept(self, axes: Sequence[Axis]) -> dict[str, str]:
        """key -> value text, for the axes with more than one choice."""
        return {
            axis.key: override.split("=", 1)[1]
            for axis, override in zip(axes, self.overrides, strict=True)
            if axis.swept
        }


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


@lru_cache(maxsize=65536)
def parse_override(text: str) -> Override:
    """One override, parsed by Hydra (cached: a grid reuses each value many times)."""
    try:
        (override,) = _parser().parse_overrides([text])
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad override {text!r}: {exc}") from exc
    return override


def check_added(overrides: Sequence[str]) -> None:
    """A `+key=...` under paddle_hpc's groups adds only what their schemas have: Hydra
    would add any key, and a typo would be read as nothing, or fail on the node."""
    for text in overrides:
        override = parse_override(text)
        added = override.is_add() or override.is_force_add()
        if added and (bad := unknown_key(override.key_or_group)) is not None:
            raise ConfigError(
                f"{text}: {bad} is not an option of paddle_hpc's (docs/configuration.md "
                f"lists them); check its spelling. Keys of your own go outside "
                f"{', '.join(GROUPS)}."
            )


def render_value(value: Any) -> str:
    """A YAML value as Hydra override text that parses back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, str):
        # Hydra's quoted strings keep backslashes literally, except before a quote
        # or the closing quote, where they are doubled.
        escaped = re.sub(r"(\\*)'", lambda m: m[1] * 2 + "\\'", value)
        escaped = re.sub(r"(\\+)$", lambda m: m[1] * 2, escaped)
        return f"'{escaped}'"
    if isinstance(value, Sequence):
        return "[" + ",".join(render_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{render_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot sweep over a value of type {type(value).__name__}: {value!r}")


def grid_axes(
    grid: Mapping[str, Any],
    overrides: Sequence[str],
    group_options: Mapping[str, Sequence[str]],
) -> list[Axis]:
    """The axes of the sweep: sweep.grid entries, then the command-line overrides."""
    entries: dict[str, list[str]] = {}
    raw: dict[str, dict[str, Any]] = {}
    for key, spec in grid.items():
        if isinstance(spec, str):
            entries[key] = _choices(f"{key}={spec}", group_options)
        elif isinstance(spec, Sequence) and spec:
            values = raw.setdefault(key, {})
            entries[key] = [c for v in spec for c in _grid_choices(key, v, group_options, values)]
        else:
            raise ConfigError(
                f"sweep.grid.{key} is {spec!r}: give a non-empty list of values or a sweep "
                "expression such as '1e-3,1e-4' or 'range(1,4)'."
            )
    for text in overrides:
        key = parse_override(text).get_key_element()
        # as Hydra: the first place, the last values; `+key` is the key a grid sweeps
        place = next((k for k in entries if k.lstrip("+") == key.lstrip("+")), key)
        entries[place] = _choices(text, group_options)
    from_command_line = {parse_override(text).get_key_element().lstrip("+") for text in overrides}
    axes = []
    for key, choices in entries.items():
        group = key.lstrip("+~").split("@")[0]
        values = {t: v for t, v in raw.get(key, {}).items() if t in choices}
        in_grid = key.lstrip("+") not in from_command_line
        axes.append(Axis(key, tuple(choices), group in group_options, values, in_grid=in_grid))
    return axes


def _grid_choices(
    key: str, value: Any, group_options: Mapping[str, Sequence[str]], raw: dict[str, Any]
) -> list[str]:
    """One value of a sweep.grid list: a list or a mapping is kept as YAML gave it (in
    `raw`, by its text); anything else is override text, parsed as Hydra would."""
    if isinstance(value, Mapping | list) and key.lstrip("+~").split("@")[0] not in group_options:
        text = f"{key}={container_text(value)}"
        raw[text] = value
        return [text]
    return _choices(f"{key}={render_value(value)}", group_options)


def _choices(text: str, group_options: Mapping[str, Sequence[str]]) -> list[str]:
    override = parse_override(text)
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [f"{key}={override.get_value_element_as_str()}"]
    if not override.is_discrete_sweep():
        raise ConfigError(
            f"{text!r}: {override.value_type.name if override.value_type else 'this sweep'} "
            "is not a list of values. Use a list, choice(...), range(...) or glob(...)."
        )
    value = override.value()
    if isinstance(value, Glob):
        group = override.key_or_group
        if group not in group_options:
            raise ConfigError(
                f"{text!r}: glob() selects options of a config group, and {group!r} is not "
                f"a group of this config (groups: {', '.join(group_options) or 'none'})."
            )
        names = value.filter(list(group_options[group]))
        if not names:
            raise ConfigError(f"{text!r} matches none of {group!r}'s options.")
        return [f"{key}={name}" for name in names]
    choices = [f"{key}={v}" for v in override.sweep_string_iterator()]
    if not choices:
        raise ConfigError(f"{text!r} sweeps over no value.")
    return choices


def container_text(value: Any) -> str:
    """A list or mapping as override text: Hydra's when it reads back the same, else JSON
    (stable, and unique per value; such a value is applied as it is, not parsed)."""
    text = render_value(value)
    try:
        if parse_override(f"x={text}").value() == value:
            return text
    except ConfigError:
        pass
    return json.dumps(value, ensure_ascii=False)


# How a run is submitted, not what it trains: overrides of these keys (and of keys
# inside them) leave its id alone. A search trial's number names its run.
SUBMISSION_KEYS = (
    "cluster",
    "collect",
    "sweep",
    "search",
    *(
        f"resources.{key}"
        for key in [
            "time",
            "signal_before",
            "partition",
            "account",
            "qos",
            "constraint",
            "mem",
            "cpus_per_task",
            "mps",
            "sbatch",
        ]
    ),
)
RUN_KEYS = ("search.trial",)


def names_run(override: str) -> bool:
    """Whether the override counts in its run's id (see SUBMISSION_KEYS)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key in RUN_KEYS or not any(key == k or key.startswith(f"{k}.") for k in SUBMISSION_KEYS)


def run_id(overrides: Sequence[str]) -> str:
    """Stable id of a point: the same overrides of what it trains, in any order, give the
    same id."""
    text = "\n".join(sorted(o for o in overrides if names_run(o)))
    return f"r{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def expand(axes: Sequence[Axis]) -> list[Point]:
    """The cartesian product of the axes, in order, last axis fastest."""
    points = []
    for index, combo in enumerate(itertools.product(*(axis.choices for axis in axes))):
        points.append(Point(index, run_id(combo), tuple(combo)))
    return points


def searched(
    fixed: Sequence[Axis], trials: Sequence[tuple[int, Sequence[str]]]
) -> tuple[list[Axis], list[Point]]:
    """A search's batch: the fixed axes, then one axis per key the trials set (their
    values in trial order), and one point per trial (numbered by the trial), not the
    product of the axes."""
    keys = list(
        dict.fromkeys(parse_override(t).get_key_element() for _, row in trials for t in row)
    )
    by_key = [{parse_override(t).get_key_element(): t for t in row} for _, row in trials]
    for (number, _), row in zip(trials, by_key, strict=True):
        missing = [k for k in keys if k not in row]
        if missing:
            raise ConfigError(f"trial {number} sets no value for {', '.join(missing)}")
    axes = [
        *fixed,
        *(Axis(k, tuple(row[k] for row in by_key), False, searched=True) for k in keys),
    ]
    points = []
    for (number, _), row in zip(trials, by_key, strict=True):
        overrides = (*(a.choices[0] for a in fixed), *(row[k] for k in keys))
        points.append(Point(number, run_id(overrides), overrides))
    return axes, points
