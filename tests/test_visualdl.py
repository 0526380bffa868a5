"""collect --visualdl: the tables as VisualDL logs, read back with VisualDL's own reader."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
from visualdl import LogReader  # type: ignore[import-untyped]

from paddle_hpc.collect import visualdl
from paddle_hpc.collect.tables import ERROR_COLUMNS, METRIC_COLUMNS, Tables
from tests.fakes import make_sweep, write_run

LONG = "eval.bbox.AP_at_IoU=0.50:0.95_area=all" * 2


def scalars(folder: Path) -> dict[str, list[tuple[int, float, int]]]:
    """tag -> (step, value, wall time in ms) as VisualDL reads them."""
    (record,) = folder.glob("vdlrecords.*.log")
    reader = LogReader(file_path=str(record))
    return {
        tag: [(r.id, r.value, r.timestamp) for r in reader.get_data("scalar", tag)]
        for tag in reader.get_tags()["scalar"]
    }


def test_runs_as_visualdl_logs(tmp_path: Path) -> None:
    runs = pd.DataFrame(
        {"optim.lr": [0.1, 0.01], "model": ["res/net", "vit"], "state": ["COMPLETED", "FAILED"]},
        index=pd.Index(["r1", "r2"], name="run_id"),
    )
    rows = [
        ("r1", 1, "loss", 0.5, 1700000001.5, 1, "metrics.jsonl"),
        ("r1", 0, "loss", 1.0, 1700000000.0, 1, "metrics.jsonl"),
        ("r1", 1, LONG, 0.25, float("nan"), 1, "logs/node0/workerlog.0"),
        ("r1", 2, "loss", math.inf, 1700000002.0, 1, "metrics.jsonl"),
        ("r2", 0, "acc", 0.125, 1700000000.0, 1, "metrics.jsonl"),
    ]
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    metrics["time"] = pd.to_datetime(metrics["time"], unit="s", utc=True)  # as collect has it
    tables = Tables(runs, metrics, pd.DataFrame(columns=ERROR_COLUMNS))
    (tmp_path / "visualdl").mkdir()
    (tmp_path / "visualdl" / "stale").mkdir()
    folder = visualdl.write(tables, tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["r1 optim.lr=0.1 model=res_net", "r2 optim.lr=0.01 model=vit"]
    first = scalars(folder / names[0])
    assert first["loss"] == [(0, 1.0, 1700000000000), (1, 0.5, 1700000001500)]  # inf: left out
    assert [(step, value) for step, value, _ in first[LONG]] == [(1, 0.25)]  # no time: now
    assert scalars(folder / names[1]) == {"acc": [(0, 0.125, 1700000000000)]}
    assert not list(tmp_path.glob(".visualdl*"))


def test_the_collect_command_writes_them_once(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    write_run(root, "ra", '{"step": 0, "time": 1700000000.25, "loss": 2.0}\n')
    write_run(root, "rb", '{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n')

    def collect() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "paddle_hpc.collect", str(root), "--visualdl"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert f"visualdl --logdir {root / 'visualdl'}" in collect()
    written = {p.name: p.stat().st_mtime_ns for p in (root / "visualdl").iterdir()}
    assert sorted(written) == ["ra lr=0.1", "rb lr=0.2"]
    assert scalars(root / "visualdl" / "ra lr=0.1") == {"loss": [(0, 2.0, 1700000000250)]}
    assert [v for _, v, _ in scalars(root / "visualdl" / "rb lr=0.2")["loss"]] == [1.0, 0.5]
    collect()  # nothing changed: the folders stay as they were
    assert {p.name: p.stat().st_mtime_ns for p in (root / "visualdl").iterdir()} == written
