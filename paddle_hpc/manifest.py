"""The sweep manifest: run id <-> overrides <-> array job id and task index.

`SWEEP_DIR/manifest.json`, always written whole and atomically. Its `state` says how
far submission got: `planned` (nothing reached Slurm), `submitted`, or `failed` (with
`error`; any array that had been submitted was cancelled).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from paddle_hpc.errors import PaddleHpcError
from paddle_hpc.files import write_json_atomic

MANIFEST = "manifest.json"
VERSION = 1


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    index: int
    overrides: tuple[str, ...]
    swept: dict[str, str]
    shape: int  # index into Manifest.shapes
    job_id: int | None = None  # the array's job id
    array_task: int | None = None


@dataclass(frozen=True)
class ArrayEntry:
    job_id: int
    shape: int
    run_ids: tuple[str, ...]  # task i runs run_ids[i]


@dataclass(frozen=True)
class Manifest:
    name: str
    created: str
    command: tuple[str, ...]
    executor: str  # slurm or local
    axes: tuple[str, ...]
    shapes: tuple[dict[str, Any], ...]  # the resources of each array shape
    runs: tuple[RunEntry, ...]
    arrays: tuple[ArrayEntry, ...] = ()
    state: str = "planned"
    error: str | None = None
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def with_arrays(self, arrays: tuple[ArrayEntry, ...], state: str) -> Manifest:
        where = {rid: (a.job_id, task) for a in arrays for task, rid in enumerate(a.run_ids)}
        runs = tuple(
            replace(r, job_id=where[r.run_id][0], array_task=where[r.run_id][1])
            if r.run_id in where
            else r
            for r in self.runs
        )
        return replace(self, arrays=arrays, runs=runs, state=state)


def manifest_path(sweep_dir: Path) -> Path:
    return sweep_dir / MANIFEST


def save(sweep_dir: Path, manifest: Manifest) -> None:
    write_json_atomic(manifest_path(sweep_dir), asdict(manifest))


def load(sweep_dir: Path) -> Manifest:
    path = manifest_path(sweep_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PaddleHpcError(
            f"{sweep_dir} is not a sweep directory: it has no {MANIFEST}. "
            "Pass the directory that `python -m paddle_hpc.sweep` printed."
        ) from None
    except json.JSONDecodeError as exc:
        raise PaddleHpcError(
            f"{path} is not valid JSON ({exc}); it was not written by paddle_hpc."
        ) from exc
    if data.get("version") != VERSION:
        raise PaddleHpcError(
            f"{path} has manifest version {data.get('version')}, expected {VERSION}."
        )
    runs = tuple(RunEntry(**{**r, "overrides": tuple(r["overrides"])}) for r in data.pop("runs"))
    arrays = tuple(ArrayEntry(**{**a, "run_ids": tuple(a["run_ids"])}) for a in data.pop("arrays"))
    return Manifest(
        **{
            **data,
            "command": tuple(data["command"]),
            "axes": tuple(data["axes"]),
            "shapes": tuple(data["shapes"]),
        },
        runs=runs,
        arrays=arrays,
    )
