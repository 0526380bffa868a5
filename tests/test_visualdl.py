"""collect --visualdl: the tables as VisualDL logs, read back with VisualDL's own reader."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from visualdl import LogReader  # type: ignore[import-untyped]

from paddle_hpc.collect import visualdl
from paddle_hpc.collect.tables import ERROR_COLUMNS, METRIC_COLUMNS, Tables

LONG = "eval.bbox.AP_at_IoU=0.50:0.95_area=all" * 2


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    (record,) = folder.glob("vdlrecords.*.log")
    reader = LogReader(file_path=str(record))
    return {
        tag: [(r.id, r.value) for r in reader.get_data("scalar", tag)]
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
    tables = Tables(runs, metrics, pd.DataFrame(columns=ERROR_COLUMNS))
    (tmp_path / "visualdl").mkdir()
    (tmp_path / "visualdl" / "stale").mkdir()
    folder = visualdl.write(tables, tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["r1 optim.lr=0.1 model=res_net", "r2 optim.lr=0.01 model=vit"]
    first = scalars(folder / names[0])
    assert first == {"loss": [(0, 1.0), (1, 0.5)], LONG: [(1, 0.25)]}  # inf is left out
    assert scalars(folder / names[1]) == {"acc": [(0, 0.125)]}
    assert not list(tmp_path.glob(".visualdl*"))
