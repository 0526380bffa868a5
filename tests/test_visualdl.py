"""collect --visualdl: the tables as VisualDL logs, read back with VisualDL's own reader."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
from visualdl import LogReader  # type: ignore[import-untyped]

from paddle_hpc.collect import collect, visualdl
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


def write_vdl(folder: Path, scalars: dict[str, list[tuple[int, float]]], number: int = 1) -> None:
    """A VisualDL log as a training script writes one (VisualDL's own writer)."""
    from visualdl import LogWriter

    name = f"vdlrecords.{1700000000 + number}.log"
    with LogWriter(logdir=str(folder), file_name=name) as writer:
        for tag, points in scalars.items():
            for step, value in points:
                writer.add_scalar(tag, value, step, walltime=1700000000000 + step)


def test_collect_reads_the_visualdl_logs_scripts_wrote(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    (root / "config.yaml").write_text("collect:\n  visualdl: [visualdl, output/vdl]\n")
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n', state="RUNNING")
    write_run(root, "rb", "")
    write_vdl(root / "runs" / "ra" / "visualdl", {"train/lr": [(0, 0.5), (10, 0.25)]})
    # PaddleOCR's folder: Global.save_model_dir=${run:dir}/output, then output/vdl
    write_vdl(root / "runs" / "rb" / "output" / "vdl", {"eval/hmean": [(5, 0.5), (10, 0.75)]})
    (root / "runs" / "rb" / "output" / "vdl" / "vdlrecords.9.log").write_bytes(b"\x00garbage")

    outcome = collect(root)
    assert outcome.tables is not None
    metrics = outcome.tables.metrics
    vdl = metrics[metrics["source"].astype(str).str.contains("vdlrecords")]
    rows = sorted(zip(vdl["run_id"], vdl["name"], vdl["step"], vdl["value"], strict=True))
    assert rows == [
        ("ra", "train/lr", 0, 0.5),  # values a float32 holds exactly: VisualDL keeps those
        ("ra", "train/lr", 10, 0.25),
        ("rb", "eval/hmean", 5, 0.5),
        ("rb", "eval/hmean", 10, 0.75),
    ]
    assert vdl["time"].min() == pd.Timestamp(1700000000000, unit="ms", tz="UTC")
    assert outcome.skipped == {"unreadable VisualDL logs": 1}
    runs = outcome.tables.runs
    assert runs.at["rb", "final.eval/hmean"] == 0.75 and runs.at["ra", "final.loss"] == 2.0

    again = collect(root)  # nothing changed: nothing parsed
    assert again.tables is None or again.parsed == 0
    # a running run writes another file: found, and only it is parsed
    write_vdl(root / "runs" / "ra" / "visualdl", {"train/lr": [(20, 0.125)]}, number=2)
    third = collect(root)
    assert third.tables is not None and third.parsed == 1
    lr = third.tables.metrics[third.tables.metrics["name"] == "train/lr"]
    assert sorted(lr["step"]) == [0, 10, 20]
