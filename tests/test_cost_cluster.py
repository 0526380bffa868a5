"""Cost and wait on the test cluster: the GPU-hours guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_sweep_cluster import queued_jobs, sweep, write_conf

pytestmark = pytest.mark.slurm


def test_a_sweep_over_its_gpu_hours_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('never runs')\n")
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "train.py"},
                "resources": {"nodes": 2, "gpus_per_node": 2, "time": "30"},
                "sweep": {"name": "costly", "grid": {"+x": "range(3)"}, "max_gpu_hours": 5},
            }
        ),
    )
    before = queued_jobs()
    dry = sweep(tmp_path, "--dry-run", "sweep.max_gpu_hours=null")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (
        "# the sweep asks for at most 6.00 GPU-hours (3 task(s) x 2 node(s) x 2 GPU(s)"
        in dry.stdout
    )
    refused = sweep(tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "sweep.max_gpu_hours is 5, and the sweep asks for at most 6.00 GPU-hours" in said
    assert not (tmp_path / "sweeps").exists() and queued_jobs() == before
    fits = sweep(tmp_path, "--dry-run", "resources.time=20")  # 4 GPU-hours
    assert fits.returncode == 0 and "at most 4.00 GPU-hours" in fits.stdout
