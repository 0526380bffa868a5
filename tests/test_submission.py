"""The backend owns the executor's name: "auto" is resolved once, when a plan is
submitted, and the manifest records what it became."""

from __future__ import annotations

from pathlib import Path

import pytest

from paddle_hpc.backend import backend_for
from paddle_hpc.backend.submission import code_dir


@pytest.mark.parametrize(
    ("executor", "sbatch", "name", "runs_here"),
    [
        ("auto", None, "local", True),
        ("auto", "/usr/bin/sbatch", "slurm", False),
        ("local", "/usr/bin/sbatch", "local", True),
        ("slurm", None, "slurm", False),  # asked for: its own checks say what is missing
    ],
)
def test_the_executor_is_resolved_by_the_backend(
    executor: str, sbatch: str | None, name: str, runs_here: bool
) -> None:
    backend = backend_for(executor, which=lambda command: sbatch)
    assert (backend.name, backend.runs_here) == (name, runs_here)


def test_the_training_code_is_where_the_program_says() -> None:
    here = Path("/home/ana/exp")
    assert code_dir({"cwd": "/src/a b", "script": "/x/train.py"}, here) == Path("/src/a b")
    assert code_dir({"cwd": None, "script": "/x/y/train.py"}, here) == Path("/x/y")
    assert code_dir({"module": "pkg.train"}, here) == here
