"""`clean` on a sweep whose runs ended here, as their files lie after a run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from paddle_hpc.core.disk import disk_use
from tests.fakes import make_sweep

RUNS = {"rdone": "COMPLETED", "rfail": "FAILED", "rlive": "RUNNING"}


def ended_sweep(root: Path) -> Path:
    sweep = make_sweep(root / "sweep $(x)", {run: {"lr": str(i)} for i, run in enumerate(RUNS)})
    for run, state in RUNS.items():
        run_dir = sweep / "runs" / run
        node = run_dir / "logs" / "node0"
        node.mkdir(parents=True)
        (run_dir / "state.json").write_text(json.dumps({"state": state, "attempt": 1}))
        (run_dir / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
        (node / "workerlog.0").write_text(f"training {run}\n" * 100)
        (node / "envlog.0").write_text("PATH=/usr/bin\n")
        (node / "backup_env.0.json").write_text("{}")
        (node / "environment.json").write_text("{}")
        (run_dir / "checkpoints" / "step-3").mkdir(parents=True)
        (run_dir / "checkpoints" / "step-3" / "model.pdparams").write_bytes(b"w" * 10_000)
    return sweep


def clean(sweep: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paddle_hpc.clean", str(sweep), *flags],
        capture_output=True,
        text=True,
        check=False,
    )


def test_clean_compresses_logs_and_removes_environment_dumps(tmp_path: Path) -> None:
    sweep = ended_sweep(tmp_path)
    before = disk_use(sweep / "runs" / "rdone").inodes
    done = clean(sweep)
    assert done.returncode == 0, done.stderr
    assert "2 ended run(s) of 3: compressed 4 log file(s)" in done.stdout
    assert "4 environment dump(s)" in done.stdout
    node = sweep / "runs" / "rdone" / "logs" / "node0"
    assert sorted(p.name for p in node.iterdir()) == ["environment.json.gz", "workerlog.0.gz"]
    assert gzip.decompress((node / "workerlog.0.gz").read_bytes()) == b"training rdone\n" * 100
    assert disk_use(sweep / "runs" / "rdone").inodes == before - 2
    live = sweep / "runs" / "rlive" / "logs" / "node0"
    assert (live / "envlog.0").exists() and (live / "workerlog.0").exists()  # not ended
    for run in RUNS:  # checkpoints stay without --checkpoints
        assert (sweep / "runs" / run / "checkpoints" / "step-3").is_dir()


def test_clean_checkpoints_of_the_runs_that_did_not_complete(tmp_path: Path) -> None:
    sweep = ended_sweep(tmp_path)
    done = clean(sweep, "--checkpoints")
    assert done.returncode == 0, done.stderr
    assert "the checkpoints of 1 run(s)" in done.stdout
    assert not (sweep / "runs" / "rfail" / "checkpoints").exists()
    assert (sweep / "runs" / "rdone" / "checkpoints" / "step-3" / "model.pdparams").exists()
    assert (sweep / "runs" / "rlive" / "checkpoints" / "step-3").exists()
    again = clean(sweep, "--checkpoints")
    assert again.returncode == 0 and "compressed 0 log file(s)" in again.stdout
