"""Golden files: exactly what reaches Slurm and each node, as a reviewer reads it.

The dry run of a sweep prints the sbatch script of each array and one run's launch
command per node; tests/golden/ holds that text for fixed inputs. After an intended
change, regenerate with `PADDLE_HPC_UPDATE_GOLDEN=1 pytest tests/test_golden.py` and
review the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

import paddle_hpc
from paddle_hpc.plan.build import build_manifest, make_plan
from paddle_hpc.plan.config import BUNDLED_CONF
from paddle_hpc.sweep import print_dry_run

GOLDEN = Path(__file__).parent / "golden"
PYTHON = "cluster.python=/opt/conda/envs/paddle/bin/python"
UGLY = [
    "resources.partition='gpu a100'",
    'resources.account="it\'s"',
    "+resources.sbatch.comment='$(touch pwned) \"x\" `id`'",
    "+resources.sbatch.exclusive=true",
    "resources.mem=16G",
    "cluster.setup=['module load cuda/12.1','source \"/opt/my env/bin/activate\"']",
    "train.seed='$(id)'",
    "sweep.name='my sweep'",
]
# 2 GPUs per task, 4 trials at once, 3 trials to a task
PACKED = [
    "resources.nodes=1",
    "resources.gpus_per_node=2",
    "resources.gpus_per_trial=0.5",
    "sweep.trials_per_task=3",
]


def dry_run(overrides: list[str]) -> str:
    cwd = Path("/home/ana/experiments")  # only written into paths: the example is a module
    plan = make_plan(BUNDLED_CONF, "config", overrides, cwd)
    out = io.StringIO()
    print_dry_run(plan, build_manifest(plan, ["sweep"]), Console(file=out, soft_wrap=True))
    return out.getvalue().replace(str(Path(paddle_hpc.__file__).parent), "<paddle_hpc>")


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("dry_run_example.txt", [PYTHON]),
        ("dry_run_quoting.txt", [PYTHON, *UGLY]),
        ("dry_run_packed.txt", [PYTHON, *PACKED]),
    ],
)
def test_dry_run_matches_golden_file(name: str, overrides: list[str]) -> None:
    text = dry_run(overrides)
    path = GOLDEN / name
    if os.environ.get("PADDLE_HPC_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}; see its docstring"


def test_dry_run_in_a_container_matches_golden_file() -> None:
    """The launch line inside a Charliecloud image folder: the runtime's flags, the
    binds, the image's python, and the shim from the copy of paddle_hpc. The image's
    path is part of each run's config: it is a fixed one."""
    image = Path("/tmp/paddle-hpc-golden/paddle image")
    for folder in ("home", "etc", "ch"):
        (image / folder).mkdir(parents=True, exist_ok=True)
    (image / "etc" / "hosts").write_text("")
    (image / "ch" / "environment").write_text("PATH=/opt/paddle/bin:/usr/bin\n")
    overrides = [
        PYTHON,
        f"cluster.container.image='{image}'",
        "cluster.container.runtime=charliecloud",
        "cluster.container.binds=['/data/sets']",
    ]
    text = dry_run(overrides)
    path = GOLDEN / "dry_run_container.txt"
    if os.environ.get("PADDLE_HPC_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}; see its docstring"
    assert "ch-run --set-env -b /home -b /data/sets -c /home/ana/experiments '/tmp" in text
