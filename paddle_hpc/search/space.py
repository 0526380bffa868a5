"""A search's space, in the grammar of Hydra's Optuna sweeper. Pure: no I/O.

Each swept key becomes an Optuna distribution, as hydra-optuna-sweeper maps it:

- `choice(a, b)` and `a,b`: categorical; `shuffle(range(...))` too (a list or mapping
  is refused: the Optuna sweeper would pass it on as a string);
- `range(start, stop, step)`: integers from start to stop, stop included (the Optuna
  sweeper's reading, not the grid's); floats when any bound or the step is one;
- `interval(low, high)`: floats between them (Hydra reads its bounds as floats);
- `tag(log, interval(low, high))`: the same on a log scale.

Keys whose value is not a sweep are fixed overrides, as in the Optuna sweeper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.plan.grid import parse_override, render_value


def distribution(override: Override) -> BaseDistribution:
    """The distribution of one sweep override; ConfigError when it has none."""
    text = override.input_line or override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        try:
            choices = list(override.sweep_iterator(transformer=Transformer.identity))
        except Exception as exc:  # glob(): Hydra needs its config loader to list options
            raise ConfigError(
                f"{text!r}: {exc}. A search needs its choices listed: choice(a, b)."
            ) from exc
        good = [c for c in choices if isinstance(c, str | int | float | bool)]
        if len(good) < len(choices):
            bad = next(c for c in choices if c not in good)
            raise ConfigError(
                f"{text!r}: a search's choice is a string, number or bool, not "
                f"{bad!r}. Name the variants as config group options instead."
            )
        return CategoricalDistribution(good)
    if isinstance(value, RangeSweep):
        assert value.start is not None and value.stop is not None
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(int(value.start), int(value.end), log=log)
        return FloatDistribution(value.start, value.end, log=log)
    raise ConfigError(f"{text!r}: a search takes choice(), range(), interval() or a,b.")


def split(texts: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """Override texts -> (key -> distribution of the swept ones, the fixed ones). A key
    given again takes its last value, as Hydra's sweepers do."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for text in texts:
        override = parse_override(text)
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            try:
                space[key] = distribution(override)
            except ValueError as exc:  # Optuna's own checks: low > high, log of 0, ...
                raise ConfigError(f"{text!r}: {exc}") from exc
        else:
            fixed[key] = text
    return space, list(fixed.values())


def grid_texts(grid: Mapping[str, Any]) -> list[str]:
    """sweep.grid's entries as override texts: a list is a choice of its values."""
    texts = []
    for key, spec in grid.items():
        if isinstance(spec, str):
            texts.append(f"{key}={spec}")
        elif isinstance(spec, Sequence) and len(spec) > 1:
            texts.append(f"{key}=choice({','.join(render_value(v) for v in spec)})")
        elif isinstance(spec, Sequence) and spec:
            texts.append(f"{key}={render_value(spec[0])}")
        else:
            raise ConfigError(f"sweep.grid.{key} is {spec!r}: give a list of values to search.")
    return texts


def override(key: str, value: Any) -> str:
    """A sampled value as an override that Hydra parses back to the same value."""
    return f"{key}={render_value(value)}"


def probes(space: Mapping[str, BaseDistribution]) -> list[dict[str, Any]]:
    """Two points at the space's corners (every low end, every high end): planned before
    a search starts, so that a value the config cannot take fails at once."""
    low, high = {}, {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            low[key], high[key] = dist.choices[0], dist.choices[-1]
        else:
            assert isinstance(dist, FloatDistribution | IntDistribution)
            low[key], high[key] = dist.low, dist.high
    return [low, high]
