"""GPU sampling and the idle-GPU watchdog on the test cluster. Its nodes have no GPU:
the sweep runs with the stand-in nvidia-smi of tests/fixtures/nvidia-smi on its PATH,
which sbatch passes on to the nodes, as a site's own nvidia-smi is found there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from tests.cluster import assert_nothing_left
from tests.test_gpu import SMI
from tests.test_sweep_cluster import run_module, sweep, write_conf

pytestmark = pytest.mark.slurm

TRAIN = """\
import time
from paddle_hpc import log_metrics
for step in range(10):
    log_metrics(step=step, loss=1.0 / (step + 1))
    time.sleep(1)
"""


def test_gpu_samples_reach_the_runs_table_and_idle_gpus_stop_a_run(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "train.py"},
                "resources": {"gpus_per_node": 2, "time": "5"},
                "launch": {"gpu_sample_interval": 1, "idle_gpu_timeout": 4},
                "sweep": {
                    "name": "gpus",
                    "grid": {"+launch.env.FAKE_SMI_OUTPUT": "busy.csv,idle.csv"},
                },
            }
        ),
    )
    env = {**os.environ, "PATH": f"{SMI}:{os.environ['PATH']}"}
    done = sweep(tmp_path, "--wait", env=env)
    sweep_dir = tmp_path / "sweeps" / "gpus"
    busy, idle = load(sweep_dir).runs
    runs = load_tables(sweep_dir).runs
    assert runs.loc[busy.run_id, "state"] == "COMPLETED", done.stdout + done.stderr
    # GPUs 0 and 1 of the recorded four: Slurm gave the run those two
    assert runs.loc[busy.run_id, "gpu_util"] == pytest.approx((98 + 0) / 2)
    assert runs.loc[busy.run_id, "gpu_mem_max_mb"] == 30518.0
    assert runs.loc[busy.run_id, "gpus_busy"] == 1
    assert "final.sys.gpu.0.util" not in runs.columns and "final.loss" in runs.columns

    assert runs.loc[idle.run_id, "state"] == "FAILED"
    reason = str(runs.loc[idle.run_id, "reason"])
    assert reason.startswith("IDLE: every GPU of node 0 at 0% for 4 s, since "), reason
    assert runs.loc[idle.run_id, "gpu_util"] == 0.0
    errors = load_tables(sweep_dir).errors
    assert errors.loc[errors["run_id"] == idle.run_id, "kind"].tolist() == ["IDLE"]
    status = run_module("paddle_hpc.status", str(sweep_dir))
    assert "IDLE: every GPU of node 0" in status.stdout, status.stdout
    assert_nothing_left(str(tmp_path / "train.py"), (idle.job,))
