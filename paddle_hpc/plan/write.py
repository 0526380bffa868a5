"""A plan written to its sweep directory: the runs' resolved configs, appended to one
file, the base config, and the manifest last (it is what makes a folder a sweep)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, save
from paddle_hpc.plan.build import Plan, RunSpec

# libyaml's dumper when PyYAML was built with it: several times faster.
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(data: Any) -> str:
    return str(yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True))


def configs_as_yaml(configs: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Each config as YAML, as `to_yaml` writes it.

    The runs of a sweep share most top-level sections, and block-style YAML of a
    mapping is its sections' YAML joined, so each distinct section is dumped once.
    """
    dumped: dict[str, str] = {}
    for config in configs:
        parts = []
        for key, value in config.items():
            marker = repr((key, value))
            if marker not in dumped:
                dumped[marker] = to_yaml({key: value})
            parts.append(dumped[marker])
        yield "".join(parts)


def write_runs(sweep_dir: Path, runs: Sequence[RunSpec]) -> dict[str, tuple[int, int]]:
    """Appends the runs' configs to run-configs.yaml, one file rather than a folder and a
    file per run (costly on a shared filesystem); returns each one's (offset, length).
    Under the sweep's lock; read once the manifest that lists them is saved."""
    store = SweepDir(sweep_dir).run_configs
    store.parent.mkdir(parents=True, exist_ok=True)
    found = {}
    with store.open("ab") as out:
        offset = out.tell()
        for run, text in zip(runs, configs_as_yaml(r.config for r in runs), strict=True):
            data = text.encode("utf-8")
            out.write(data)
            found[run.run_id] = (offset, len(data))
            offset += len(data)
    return found


def with_configs(manifest: Manifest, where: Mapping[str, tuple[int, int]]) -> Manifest:
    runs = [
        replace(r, config_at=where[r.run_id]) if r.run_id in where else r for r in manifest.runs
    ]
    return replace(manifest, runs=tuple(runs))


def write_plan(plan: Plan, manifest: Manifest) -> Manifest:
    """Writes a new sweep directory, the manifest (which makes it a sweep) last; returns
    the manifest saved."""
    saved = with_configs(manifest, write_runs(plan.sweep_dir, plan.runs))
    SweepDir(plan.sweep_dir).config.write_text(to_yaml(plan.base), encoding="utf-8")
    save(plan.sweep_dir, saved)
    return saved
