"""Running the sweep command again on a sweep directory: only new points are added. Pure.

A point is known by its run id (a hash of its overrides), so the same command maps to
the same runs. The configs' own text (the base Hydra composes before any override) must
not have changed: the existing runs would not be what the new ones are compared with.
Keys the overrides set, and `sweep.*`, do not count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.plan.points import related


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c': [1]} -> {'a.b': 1, 'c': [1]}; an empty mapping stays a value."""
    if not isinstance(data, Mapping) or not data:
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= flatten(value, f"{prefix}{key}.")
    return out


def changed_keys(
    old: Mapping[str, Any], new: Mapping[str, Any], overridden: Iterable[str]
) -> list[str]:
    """Dotted keys whose value differs between two base configs, leaving out `sweep.*` and
    every key an override sets (or lies inside of, or holds)."""
    ignored = ["sweep", "search", *(key.lstrip("+~") for key in overridden)]
    a, b = flatten(old), flatten(new)
    return sorted(
        key
        for key in a.keys() | b.keys()
        if a.get(key, ...) != b.get(key, ...) and not any(related(key, i) for i in ignored)
    )


def override_keys(runs: Iterable[RunEntry]) -> set[str]:
    return {text.split("=", 1)[0] for run in runs for text in run.overrides}


def check_base(old: Manifest, new: Manifest, allow_change: bool) -> None:
    before, after = old.extra.get("base"), new.extra.get("base")
    if allow_change or before is None or after is None:
        return
    keys = changed_keys(before, after, override_keys(old.runs) | override_keys(new.runs))
    if keys:
        shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
        raise ConfigError(
            f"the config differs from the one sweep {old.name!r} was submitted with, at "
            f"{shown}: its runs would not be comparable. Restore it, choose another "
            "sweep.name or sweep.dir, or pass --allow-config-change to add the new "
            "points anyway."
        )


def merge(old: Manifest, new: Manifest) -> tuple[Manifest, list[str]]:
    """The old manifest with the new one's points it does not have (their shapes and axes
    added), and the ids of those points."""
    if old.executor != new.executor:
        raise ConfigError(
            f"sweep {old.name!r} ran with cluster.executor={old.executor}; it cannot be "
            f"extended with {new.executor}. Pass cluster.executor={old.executor}."
        )
    known = {run.run_id for run in old.runs}
    shapes = list(old.shapes)
    keys = [json.dumps(shape, sort_keys=True) for shape in shapes]
    added: list[RunEntry] = []
    for run in new.runs:
        if run.run_id in known:
            continue
        key = json.dumps(new.shapes[run.shape], sort_keys=True)
        if key not in keys:
            keys.append(key)
            shapes.append(new.shapes[run.shape])
        added.append(replace(run, index=len(old.runs) + len(added), shape=keys.index(key)))
    axes = (*old.axes, *(a for a in new.axes if a not in old.axes))
    merged = replace(old, axes=axes, shapes=tuple(shapes), runs=old.runs + tuple(added))
    return merged, [run.run_id for run in added]
