"""The collector on the real test cluster: a running sweep, suite log lines, no Slurm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.collect import collect, load
from paddle_hpc.collect.results import NAMES

pytestmark = pytest.mark.slurm

TRAIN = """\
import time
from paddle_hpc import log_metrics
for step in (10, 20):
    # the line PaddleNLP's examples print, in the worker log
    print(f"global step {step}, epoch: 1, batch: {step}, loss: {1.0 / step:.5f}, "
          "speed: 2.50 step/s", flush=True)
    log_metrics(step=step, acc=step / 100)
    time.sleep(4)
"""


def run(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def test_collect_follows_a_running_sweep_then_works_without_slurm(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "program: {script: train.py}\nx: 0\nresources: {nodes: 1}\nsweep: {name: live}\n"
    )
    submitted = run("-m", "paddle_hpc.sweep", "x=1,2", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    sweep_dir = tmp_path / "sweeps" / "live"

    first = load(sweep_dir)  # while the sweep is pending or running: partial tables
    assert set(first.runs["state"]) <= {"PENDING", "RUNNING", "COMPLETED"}
    assert first.runs["x"].tolist() == [1, 2]

    deadline = time.monotonic() + 180
    while True:
        tables = load(sweep_dir)
        if (tables.runs["state"] == "COMPLETED").all():
            break
        assert time.monotonic() < deadline, tables.runs
        time.sleep(3)
    # the worker log's PaddleNLP lines and metrics.jsonl, per run
    loss = tables.metrics[tables.metrics["name"] == "loss"]
    assert sorted(loss["value"].tolist()) == [0.05, 0.05, 0.1, 0.1]
    assert loss["source"].astype(str).str.endswith("logs/node0/workerlog.0").all()
    assert (tables.runs["final.acc"] == 0.2).all() and (tables.runs["final.speed"] == 2.5).all()
    state = json.loads((sweep_dir / "results" / "collect.json").read_text())
    assert state["final"] is True  # sacct will not be asked again

    # each run's node wrote the rows of its files when the run ended; the tables from
    # them are the tables from the text
    from_nodes = collect(sweep_dir, out=tmp_path / "from-nodes")
    written = sorted(sweep_dir.glob("runs/*/collected-node0.arrow"))
    assert len(written) == 2
    for path in written:
        path.unlink()
    from_text = collect(sweep_dir, out=tmp_path / "from-text")
    files = [*sweep_dir.glob("runs/*/metrics.jsonl"), *sweep_dir.glob("runs/*/logs/*/workerlog.*")]
    assert (from_nodes.from_nodes, from_text.from_nodes) == (len(files), 0)
    assert from_nodes.tables is not None and from_text.tables is not None
    for name in NAMES:
        pd.testing.assert_frame_equal(
            getattr(from_nodes.tables, name), getattr(from_text.tables, name)
        )

    # copied to a machine without Slurm: accounting comes from the saved sacct.txt
    copy = tmp_path / "laptop" / "live"
    shutil.copytree(sweep_dir, copy)
    shutil.rmtree(copy / "results")
    bare = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    offline = run(
        "-m", "paddle_hpc.collect", str(copy), "--sort", "final.acc", cwd=tmp_path, env=bare
    )
    assert offline.returncode == 0, offline.stderr
    assert "COMPLETED 2" in offline.stdout
    assert shutil.which("sacct", path=bare["PATH"]) is None
