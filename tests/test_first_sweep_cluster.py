"""README's first sweep, as a new user runs it: its files, its commands in its order,
on the test cluster."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.core.manifest import load
from tests.test_docs import EXAMPLE, README, code_blocks

pytestmark = pytest.mark.slurm


def readme_commands() -> list[list[str]]:
    """The commands of README's block that submits the first sweep, comments left out."""
    (block,) = [b for b in code_blocks(README, "bash") if "paddle_hpc.sweep --dry-run" in b]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_first_sweep_runs_as_readme_shows(tmp_path: Path) -> None:
    project = tmp_path / "my project"
    shutil.copytree(EXAMPLE, project)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PADDLE_HPC_INDEX": str(tmp_path / "index.jsonl"),
    }
    said, run_id = [], ""
    for argv in readme_commands():
        if "RUN" in argv:
            run_id = load(project / "sweeps" / "first").runs[0].run_id
            argv = [run_id if a == "RUN" else a for a in argv]
        done = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        said.append(done.stdout)
    dry_run, submitted, status, logs, collected = said
    assert "# dry run: 4 run(s) (4 new, 0 already in the sweep)" in dry_run
    assert f"# config: {project / 'conf' / 'config.yaml'}" in dry_run
    assert "submitted 4 runs as array job(s)" in submitted
    assert "COMPLETED 4" in status and "COMPLETED 4" in collected
    assert f"(global rank 0; run {run_id} COMPLETED) <==" in logs

    (script,) = [b for b in code_blocks(README, "python") if "load(" in b]
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"optim\.lr\s+model\.hidden\s+state\s+elapsed_s\s+final\.loss", shown.stdout)
    assert shown.stdout.count("COMPLETED") == 4

    from paddle_hpc.collect import load as load_tables

    tables = load_tables(project / "sweeps" / "first")
    losses = tables.metrics[tables.metrics["name"] == "loss"].groupby("run_id", observed=True)
    for _, rows in losses:
        values = rows.sort_values("step")["value"].tolist()
        assert len(values) == 50 and values[-1] < values[0] / 2, values  # it learns
    for run in load(project / "sweeps" / "first").runs:
        node1 = project / "sweeps" / "first" / "runs" / run.run_id / "logs" / "node1"
        assert (node1 / "workerlog.1").exists()  # global rank 3 of 4
