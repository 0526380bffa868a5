"""`${hydra:...}` in a run's config: what a Hydra app reads there in a multirun job.

Each run is one job of the multirun: `job.num` is its grid point's index, `job.id`
its run id, `job.override_dirname` and `overrides.task` its overrides,
`runtime.choices` its config groups' options, `runtime.output_dir` its folder and
`job.name` the program's name (a Hydra app's name is its script's), unless the config
or a `hydra.job.name=` override sets one. The rest is Hydra's own node as composed,
with the `hydra.*` overrides of the command line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from paddle_hpc.core import compat
from paddle_hpc.plan.config import UNNAMED, ComposedBase
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.plan.points import interpolations


def job_name(program: DictConfig) -> str:
    """A Hydra app's name is its script's file name without .py."""
    if isinstance(program.get("script"), str):
        return Path(program.script).stem
    if isinstance(program.get("module"), str):
        return str(program.module).rsplit(".", 1)[-1]
    return "app"


def prepare(composed: ComposedBase, cwd: Path) -> None:
    """Sets in its Hydra node what is the same for every job of the sweep."""
    if composed.hydra is None:
        return
    with read_write(composed.hydra), open_dict(composed.hydra):
        node = composed.hydra.hydra
        node.mode = RunMode.MULTIRUN
        node.runtime.cwd = str(cwd)
        if node.job.name == UNNAMED:
            node.job.name = job_name(composed.config.program)


def sweeper_params(hydra: DictConfig | None) -> dict[str, Any]:
    """`hydra.sweeper.params`: key -> sweep expression, as Hydra's BasicSweeper reads it."""
    params = OmegaConf.select(hydra, "hydra.sweeper.params") if hydra is not None else None
    if params is None:
        return {}
    return {str(key): str(value) for key, value in params.items()}


def used(composed: ComposedBase, overrides_use_it: bool) -> DictConfig | None:
    """The Hydra node when the config or the overrides read it, else None."""
    if overrides_use_it or any("${hydra:" in t for t in interpolations(composed.config).values()):
        return composed.hydra
    return None


@contextlib.contextmanager
def sweep_job(hydra: DictConfig | None) -> Iterator[None]:
    """`${hydra:...}` reads `hydra` ({"hydra": ...}) within."""
    previous = compat.set_hydra_config(hydra)
    try:
        yield
    finally:
        compat.set_hydra_config(previous)


def set_job(
    hydra: DictConfig, index: int, run_id: str, overrides: Sequence[str], run_dir: Path
) -> None:
    """Sets the values of one job (run) in `hydra`, in place."""
    parsed = [parse_override(text) for text in overrides]
    with read_write(hydra), open_dict(hydra):
        node = hydra.hydra
        node.job.num = index
        node.job.id = run_id
        node.job.override_dirname = compat.overrides_dirname(parsed, node)
        node.overrides.task = list(overrides)
        node.runtime.output_dir = str(run_dir)
