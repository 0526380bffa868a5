"""The nodes' compact files (parse/compact.py): what they hold, and a collect that takes
some runs' rows from them gives the tables a collect of the text alone gives."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paddle_hpc.collect import collect
from paddle_hpc.core.layout import RunDir
from paddle_hpc.node.gpu import Gpu, sample_line
from paddle_hpc.node.runner import write_compact
from paddle_hpc.parse import compact, jsonl
from paddle_hpc.parse.log_rows import reading
from tests.fakes import make_sweep, write_run

SUITE_LOG = (
    "[2026/01/01 10:00:00] ppocr INFO: epoch: [1/2], global_step: 10, lr: 0.001, loss: 2.5\n"
    "custom 10 f1=0.25\n"
    "BLEU 31.2 @ 10\n"
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "train.py", line 2, in <module>\n'
    "ValueError: lr too high\n"
)


def gpu_lines(node: int, count: int) -> str:
    gpus = [Gpu(node, f"GPU-{node}", 50.0 + i, 1000.0, 16000.0) for i in range(count)]
    return "".join(sample_line([gpu], 1_763_900_000.0 + i, 1) for i, gpu in enumerate(gpus))


def test_a_compact_file_holds_what_the_collector_would_read(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}}, parsers=True)
    metrics = '{"step": 0, "loss": 2.0}\nnot json\n{"step": 1, "loss": 1.0, "acc": 0.5}\n'
    write_run(root, "ra", metrics, SUITE_LOG + TRACEBACK)
    (root / "runs/ra/logs/node0/.attempt").write_text("2")
    (root / "runs/ra/gpu-node0.jsonl").write_text(gpu_lines(0, 3))
    path = compact.write(root, "ra", 0)
    assert path == root / "runs/ra/collected-node0.arrow"
    found = compact.read(str(path))
    assert found.sources == ["runs/ra/metrics.jsonl", "runs/ra/gpu-node0.jsonl"]
    for rel, (size, mtime) in zip(found.sources, found.prints, strict=True):
        stat = (root / rel).stat()
        assert (size, mtime) == (stat.st_size, stat.st_mtime_ns)
    text = jsonl.start([root / rel for rel in found.sources]).result()
    for column in ("file", "step", "no_step", "time", "attempt", "name", "value"):
        assert np.array_equal(getattr(found.rows, column), getattr(text, column), equal_nan=True)
    assert found.rows.names == text.names and found.rows.skipped == {0: (1, 2)}
    log_file = "runs/ra/logs/node0/workerlog.0"
    stat = (root / log_file).stat()
    assert found.logs({log_file}, {log_file: [stat.st_size, stat.st_mtime_ns + 1]}) == {}
    (rows,) = found.logs({log_file}, {log_file: [stat.st_size, stat.st_mtime_ns]}).values()
    assert rows.attempt == 2
    # the suite's line, the sweep's pattern and its parser (the broken one skipped)
    assert rows.metrics == [
        (10, "epoch", 1.0),
        (10, "lr", 0.001),
        (10, "loss", 2.5),
        (10, "f1", 0.25),
        (10, "bleu", 31.2),
    ]
    assert [(f.kind, f.message, f.line) for f in rows.failures] == [
        ("ValueError", "lr too high", 6)
    ]
    assert (found.patterns, found.parsers) == (
        reading({"collect": {"patterns": [r"custom (?P<step>\d+) f1=(?P<f1>\S+)"]}}).pattern_texts,
        ("tests.fakes:bleu_parser", "tests.fakes:broken_parser"),
    )


@pytest.mark.parametrize(
    "content",
    [b"", b"not arrow at all", b"ARROW1\x00\x00garbage", "truncated"],
)
def test_an_unreadable_compact_file_says_so(tmp_path: Path, content: bytes | str) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n' * 50)
    path = compact.write(root, "ra", 0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else bytes(content))
    with pytest.raises(compact.Unreadable):
        compact.read(str(path))


def test_the_nodes_whose_compact_files_may_hold_a_source() -> None:
    assert compact.nodes(
        [
            "runs/r 1/metrics.jsonl",
            "runs/r 1/gpu-node3.jsonl",
            "runs/r 1/logs/node12/workerlog.0",
            "runs/r 1/logs/node2/workerlog.1.gz",
            "runs/r 1/logs.zip/0/node7/workerlog.0",
        ]
    ) == [0, 2, 3, 7, 12]
    assert compact.nodes([]) == []


def damage(path: Path) -> None:
    """A compact file whose batch's message claims more than the file holds."""
    data = bytearray(path.read_bytes())
    at = len(compact.START) + 4  # after the message's continuation marker: its length
    data[at : at + 4] = (1 << 20).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_damaged_batch_is_found_when_the_batches_are_parsed(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    for run_id in ("ra", "rb"):
        write_run(root, run_id, '{"step": 0, "loss": 2.0}\n{"step": 1, "loss": 1.5}\n')
    paths = [compact.write(root, run_id, 0) for run_id in ("ra", "rb")]
    damage(paths[0])
    parts = [(compact.read(str(path)), [0]) for path in paths]  # the header is whole
    rows, bad = compact.rows_of(parts)
    assert bad == [0] and rows.value.tolist() == [2.0, 1.5] and rows.file.tolist() == [0, 0]


def compact_files(root: Path) -> list[Path]:
    return sorted(root.glob("runs/*/collected-node*.arrow"))


def test_tables_from_compact_files_are_the_tables_from_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some runs with compact files, some without, stale ones (metrics logged after the
    run ended, a log written after), a corrupt one; bad lines, attempts, two nodes."""
    runs = {f"r{i}": {"lr": str(0.1 * (i + 1)), "model": "'vit b'"} for i in range(6)}
    root = make_sweep(tmp_path / "sweep", runs, parsers=True)
    bad = '{"step": 0, "loss": 2.0}\n{"step": 1, "loss": "high"}\n{"step": 2, "lo\n'
    write_run(root, "r0", bad + '{"step": 3, "loss": 1.0, "attempt": 2}\n', SUITE_LOG)
    (root / "runs/r0/logs/node0/.attempt").write_text("2")
    write_run(root, "r1", '{"step": 0, "loss": 3.0, "val acc %": 0.1}\n', TRACEBACK, "FAILED")
    write_run(root, "r2", '{"step": 0, "loss": 4.0}\n{"step": 1, "loss": NaN}\n', SUITE_LOG)
    (root / "runs/r2/logs/node1").mkdir()
    (root / "runs/r2/logs/node1/workerlog.0").write_text(TRACEBACK)
    for node in (0, 1):
        (root / f"runs/r2/gpu-node{node}.jsonl").write_text(gpu_lines(node, 4))
    write_run(root, "r3", '{"step": 0, "loss": 5.0}\n', SUITE_LOG)
    write_run(root, "r4", '{"step": 0, "überloss": 6.0}\n', "custom 3 f1=0.5\n")
    for run_id, node in [("r0", 0), ("r1", 0), ("r2", 0), ("r2", 1), ("r4", 0)]:
        write_compact(RunDir(root / "runs" / run_id), node)  # as a node does; r3's was killed
    with (root / "runs/r1/metrics.jsonl").open("a") as late:  # a late evaluation
        late.write('{"step": 9, "eval.acc": 0.75}\n')
    with (root / "runs/r4/logs/node0/workerlog.0").open("a") as log:
        log.write("custom 4 f1=0.75\n")
    damage(root / "runs/r2/collected-node1.arrow")
    assert len(compact_files(root)) == 5

    read_as_text: list[str] = []
    start = jsonl.start

    def spy(paths: list[str], sizes: list[int] | None = None) -> jsonl.Reading:
        read_as_text.extend(os.path.relpath(p, root) for p in paths)
        return start(paths, sizes)

    monkeypatch.setattr(jsonl, "start", spy)
    both = collect(root, out=tmp_path / "both")
    assert sorted(read_as_text) == [
        "runs/r1/metrics.jsonl",  # stale
        "runs/r2/gpu-node1.jsonl",  # in the corrupt one
        "runs/r3/metrics.jsonl",  # none
    ]
    for path in compact_files(root):
        path.unlink()
    read_as_text.clear()
    text = collect(root, out=tmp_path / "text")
    assert len(read_as_text) == 7
    # r0's two files, r1's log, r2's node 0's three, r4's metrics
    assert (both.from_nodes, text.from_nodes) == (7, 0)
    assert both.tables is not None and text.tables is not None
    assert both.skipped == text.skipped == {"runs not started": 1, "bad metric lines": 2}
    for name in ("runs", "metrics", "errors"):
        pd.testing.assert_frame_equal(getattr(both.tables, name), getattr(text.tables, name))
        written = [pd.read_parquet(tmp_path / out / f"{name}.parquet") for out in ("both", "text")]
        pd.testing.assert_frame_equal(*written)
    metrics = both.tables.metrics
    assert set(metrics["name"].astype(str)) >= {"eval.acc", "überloss", "f1", "bleu", "val acc %"}
    assert (metrics["source"] == "runs/r4/logs/node0/workerlog.0").sum() == 2  # both f1 lines
    assert sorted(both.tables.errors["log"]) == [
        "runs/r1/logs/node0/workerlog.0",
        "runs/r2/logs/node1/workerlog.0",
    ]
