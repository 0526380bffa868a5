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
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from paddle_hpc.core import compat
from paddle_hpc.plan.config import UNNAMED, ComposedBase
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.plan.points import interpolations, related


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


# what differs from job to job; set_job sets those a config reads
JOB_VALUES = ("job.num", "job.id", "job.override_dirname", "overrides.task", "runtime.output_dir")
_READ = re.compile(r"\$\{hydra:([\w.]*)\}")


@dataclass(frozen=True)
class Job:
    hydra: DictConfig  # {"hydra": Hydra's node}
    values: tuple[str, ...]  # of JOB_VALUES, those read


def used(composed: ComposedBase, texts: Sequence[str]) -> Job | None:
    """The Hydra node and the job values read, when the config's interpolations or
    `texts` (the points' overrides) read it; else None."""
    texts = [*interpolations(composed.config).values(), *texts]
    reads = [t for t in texts if "${hydra:" in t]
    if not reads or composed.hydra is None:
        return None
    paths = [m for t in reads for m in _READ.findall(t)]
    if any(t.count("${") > len(_READ.findall(t)) for t in reads):  # nested: may read any
        return Job(composed.hydra, JOB_VALUES)
    return Job(composed.hydra, tuple(v for v in JOB_VALUES if any(related(v, p) for p in paths)))


@contextlib.contextmanager
def sweep_job(hydra: DictConfig | None) -> Iterator[None]:
    """`${hydra:...}` reads `hydra` ({"hydra": ...}) within."""
    previous = compat.set_hydra_config(hydra)
    try:
        yield
    finally:
        compat.set_hydra_config(previous)


def set_job(job: Job, index: int, run_id: str, overrides: Sequence[str], run_dir: Path) -> None:
    """Sets the values of one job (run) that its config reads, in place."""
    with read_write(job.hydra), open_dict(job.hydra):
        node = job.hydra.hydra
        for name in job.values:
            if name == "job.num":
                node.job.num = index
            elif name == "job.id":
                node.job.id = run_id
            elif name == "job.override_dirname":
                parsed = [parse_override(text) for text in overrides]
                node.job.override_dirname = compat.overrides_dirname(parsed, node)
            elif name == "overrides.task":
                node.overrides.task = list(overrides)
            else:
                node.runtime.output_dir = str(run_dir)
