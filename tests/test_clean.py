"""`clean` on a sweep whose runs ended here, as their files lie after a run; `logs` and
the collector read what it archived."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

from paddle_hpc.core.disk import disk_use
from paddle_hpc.parse import compact
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


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, check=False
    )


def test_clean_archives_an_ended_runs_logs_and_removes_environment_dumps(tmp_path: Path) -> None:
    sweep = ended_sweep(tmp_path)
    (sweep / "runs" / "rfail" / "logs" / "node0" / "workerlog.0").write_text(
        'step 1\nTraceback (most recent call last):\n  File "t.py", line 1\n'
        "ZeroDivisionError: division by zero\n"
    )
    for node in (0, 1):  # as rdone's nodes wrote them when it ended
        compact.write(sweep, "rdone", node)
    collected = run_module("paddle_hpc.collect", sweep)
    assert collected.returncode == 0, collected.stderr
    before = pd.read_parquet(sweep / "results" / "errors.parquet")
    done = clean(sweep)
    assert done.returncode == 0, done.stderr
    assert "2 ended run(s) of 3: archived 4 log file(s)" in done.stdout
    assert "4 environment dump(s)" in done.stdout
    run = sweep / "runs" / "rdone"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "collected-node0.arrow",  # metrics.jsonl's rows; node 1's went with its logs
        "logs.zip",
        "metrics.jsonl",
        "state.json",
    ]
    assert disk_use(run).inodes - disk_use(run / "checkpoints").inodes == 5
    with zipfile.ZipFile(run / "logs.zip") as archive:
        assert sorted(archive.namelist()) == [
            "attempts/1/logs/node0/environment.json",
            "attempts/1/logs/node0/workerlog.0",
        ]
        assert archive.read("attempts/1/logs/node0/workerlog.0") == b"training rdone\n" * 100
    live = sweep / "runs" / "rlive" / "logs" / "node0"
    assert (live / "envlog.0").exists() and (live / "workerlog.0").exists()  # not ended
    for name in RUNS:  # checkpoints stay without --checkpoints
        assert (sweep / "runs" / name / "checkpoints" / "step-3").is_dir()

    shown = run_module("paddle_hpc.logs", sweep, "rdone", "-n", "2")
    assert shown.returncode == 0, shown.stderr
    assert "logs.zip/attempts/1/logs/node0/workerlog.0" in shown.stdout
    assert shown.stdout.count("training rdone") == 2
    failed = run_module("paddle_hpc.logs", sweep, "rfail")
    assert "ZeroDivisionError" in failed.stdout and "the rank that failed" in failed.stdout
    again = run_module("paddle_hpc.collect", sweep)
    assert again.returncode == 0, again.stderr
    after = pd.read_parquet(sweep / "results" / "errors.parquet")
    assert list(after["message"]) == list(before["message"]) == ["division by zero"]
    assert "logs.zip" in after["log"].iloc[0]


def test_an_earlier_attempts_and_an_earlier_cleans_logs_go_in_the_archive(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "s", {"rtwo": {"lr": "1"}})
    run = sweep / "runs" / "rtwo"
    (run / "attempts" / "1" / "logs" / "node0").mkdir(parents=True)
    (run / "attempts" / "1" / "state.json").write_text('{"state": "PREEMPTED", "attempt": 1}')
    (run / "attempts" / "1" / "logs" / "node0" / "workerlog.0").write_text("first try\n")
    (run / "logs" / "node0").mkdir(parents=True)
    (run / "logs" / "node0" / ".attempt").write_text("2")
    with gzip.open(run / "logs" / "node0" / "workerlog.0.gz", "wt") as packed:
        packed.write("second try\n")  # as an earlier version's clean left it
    (run / "state.json").write_text(json.dumps({"state": "COMPLETED", "attempt": 2}))
    done = clean(sweep)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(run / "logs.zip") as archive:
        assert sorted(archive.namelist()) == [
            "attempts/1/logs/node0/workerlog.0",
            "attempts/2/logs/node0/workerlog.0",
        ]
    assert sorted(p.name for p in run.iterdir()) == ["attempts", "logs.zip", "state.json"]
    assert sorted(p.name for p in (run / "attempts" / "1").iterdir()) == ["state.json"]
    assert "second try" in run_module("paddle_hpc.logs", sweep, "rtwo").stdout
    first = run_module("paddle_hpc.logs", sweep, "rtwo", "--attempt", "1")
    assert "first try" in first.stdout, first.stdout + first.stderr
    assert "archived 0 log file(s)" in clean(sweep).stdout


def test_clean_checkpoints_of_the_runs_that_did_not_complete(tmp_path: Path) -> None:
    sweep = ended_sweep(tmp_path)
    done = clean(sweep, "--checkpoints")
    assert done.returncode == 0, done.stderr
    assert "the checkpoints of 1 run(s)" in done.stdout
    assert not (sweep / "runs" / "rfail" / "checkpoints").exists()
    assert (sweep / "runs" / "rdone" / "checkpoints" / "step-3" / "model.pdparams").exists()
    assert (sweep / "runs" / "rlive" / "checkpoints" / "step-3").exists()
    again = clean(sweep, "--checkpoints")
    assert again.returncode == 0 and "archived 0 log file(s)" in again.stdout
