"""The collector's parsers fed literal lines, and collect() on hand-made sweep directories."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from paddle_hpc.collect import collect, collector, load
from paddle_hpc.collect.tables import typed
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.parse import jsonl
from paddle_hpc.parse.log_rows import parsed_metrics
from paddle_hpc.parse.worker_logs import failures, log_metrics
from paddle_hpc.plan.grid import parse_override
from tests.fakes import make_sweep, write_run


def test_a_users_own_pattern() -> None:
    pattern = re.compile(r"it (?P<step>\d+) \| loss=(?P<loss>\S+) ppl=(?P<ppl>\S+)")
    rows = log_metrics(["noise\n", "it 7 | loss=0.5 ppl=1.6\n", "it 8 | loss=x ppl=2\n"], [pattern])
    assert [(r.line, r.step, r.name, r.value) for r in rows] == [
        (2, 7, "loss", 0.5),
        (2, 7, "ppl", 1.6),
        (3, 8, "ppl", 2.0),
    ]
    loose = re.compile(r"at (?P<step>\S+): acc=(?P<acc>\S+)")  # a step group that takes anything
    lines = ["at x: acc=1\n", "at 1.5: acc=2\n", "at 1e300: acc=3\n", "at 4.0: acc=4\n"]
    assert [(r.line, r.step, r.value) for r in log_metrics(lines, [loose])] == [(4, 4, 4.0)]


TRACEBACK = """\
I1123 10:00:00 launch INFO starting
Traceback (most recent call last):
  File "train.py", line 3, in <module>
    main()
  File "train.py", line 2, in main
    raise ValueError("lr too high: 10")
ValueError: lr too high: 10
after
"""

PADDLE_OOM = """\
Traceback (most recent call last):
  File "train.py", line 9, in <module>
    out = model(x)
MemoryError: out of memory

--------------------------------------
C++ Traceback (most recent call last):
--------------------------------------
0   paddle::memory::allocation::Alloc

----------------------
Error Message Summary:
----------------------
ResourceExhaustedError: Out of memory error on GPU 0. Cannot allocate 2.0GB memory.
"""


def test_failures_from_a_traceback_and_paddles_error_summary() -> None:
    (found,) = failures(TRACEBACK.splitlines(keepends=True))
    assert (found.line, found.kind, found.message) == (7, "ValueError", "lr too high: 10")
    assert found.traceback.startswith("Traceback") and found.traceback.endswith("lr too high: 10\n")
    python, summary = failures(PADDLE_OOM.splitlines(keepends=True))
    assert python.kind == "OOM" and summary.kind == "OOM" and summary.line == 14
    assert failures(["Traceback (most recent call last):\n", '  File "x"\n']) == []  # cut short


def test_metrics_files_with_bad_truncated_and_blank_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"step": 0, "time": 1.5, "loss": 2.0}\n{"step": 1, "loss": NaN, "acc": 1}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"step": 0, "loss": 1.0}\n'
        "not json\n"
        "\n"
        '{"step": 1, "loss": "high"}\n'
        '["a", "list"]\n'
        '{"step": 2, "loss": 3.0}\n'
        '{"step": 3, "lo'
    )
    cols = jsonl.start([good, bad, tmp_path / "missing.jsonl"]).result()
    rows = [
        (int(f), None if missing else int(s), cols.names[n], v)
        for f, s, missing, n, v in zip(
            cols.file, cols.step, cols.no_step, cols.name, cols.value, strict=True
        )
    ]
    assert rows[:3] == [
        (0, 0, "loss", 2.0),
        (0, 1, "loss", pytest.approx(float("nan"), nan_ok=True)),
        (0, 1, "acc", 1.0),
    ]
    assert rows[3:] == [(1, 0, "loss", 1.0), (1, 2, "loss", 3.0)]
    assert cols.skipped[1] == (4, 2)  # three bad lines and the truncated one; first at line 2
    assert cols.skipped[2] == (0, 0)  # missing: no lines
    assert cols.time[0] == 1_500_000_000 and cols.time[1] == jsonl.NAT  # ns; no time


@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_the_attempt_of_each_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    same = tmp_path / "same.jsonl"  # the same keys on every line: the fast path
    same.write_text(
        '{"step": 0, "time": 1.0, "attempt": 1, "loss": 2.0}\n'
        '{"step": 1, "time": 2.0, "attempt": 2, "loss": 1.0}\n'
    )
    mixed = tmp_path / "mixed.jsonl"  # older lines without it, and ugly ones
    mixed.write_text(
        '{"step": 0, "loss": 3.0}\n'
        '{"step": 1, "attempt": 0, "loss": 3.0}\n'
        '{"step": 2, "attempt": 1.5, "loss": 3.0}\n'
        '{"step": 3, "attempt": -2, "loss": 3.0}\n'
        '{"step": 4, "attempt": "x", "loss": 3.0}\n'
        '{"step": 5, "attempt": 3, "loss": 3.0, "acc": 1.0}\n'
    )
    monkeypatch.setattr(jsonl, "CHUNK", chunk)
    cols = jsonl.start([same, mixed]).result()
    assert cols.names == ["loss", "acc"]  # attempt, like step and time, is no metric
    rows = list(zip(cols.file.tolist(), cols.step.tolist(), cols.attempt.tolist(), strict=True))
    assert rows == [
        (0, 0, 1),
        (0, 1, 2),
        (1, 0, 0),
        (1, 1, 0),
        (1, 2, 0),
        (1, 3, 0),
        (1, 5, 3),
        (1, 5, 3),
    ]
    assert cols.skipped == {1: (1, 5)}  # "x" is not a number: the line is skipped


@pytest.mark.parametrize("chunk", [1, 150, 1 << 20])
def test_metrics_files_read_in_chunks_give_every_row_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    texts = [
        '{"step": 0, "loss": 1.5, "acc": 0.25}\n{"step": 1, "loss": 1.25, "acc": 0.5}\n',
        '{"step": 0, "loss": 2.5, "acc": 0.75}\n{"step": 1, "acc": 0.125, "loss": 2}\n',
        '{"step": 0, "acc": 0.5, "loss": 3.5}\n',  # the same keys in another order
        '{"step": 7, "f1": 0.125}\n{"step": 8, "f1": 0.375, "loss": -1}\n',
        '{"step": 0, "loss": 4.5, "acc": 1}\nbroken\n{"step": 1, "loss": 5.5, "acc": 1}\n',
        '{"step": 0, "loss": 6.5, "acc": 0}\n',
    ]
    paths = []
    for index, text in enumerate(texts):
        paths.append(tmp_path / f"{index}.jsonl")
        paths[-1].write_text(text)
    expected = [
        (index, row["step"], name, float(value))
        for index, text in enumerate(texts)
        for line in text.splitlines()
        if line.startswith("{")
        for row in [json.loads(line)]
        for name, value in row.items()
        if name != "step"
    ]
    monkeypatch.setattr(jsonl, "CHUNK", chunk)
    cols = jsonl.start(paths).result()
    rows = [
        (int(f), int(s), cols.names[n], v)
        for f, s, n, v in zip(cols.file, cols.step, cols.name, cols.value, strict=True)
    ]
    assert [row[:2] for row in rows] == [row[:2] for row in expected]  # file and line order
    assert sorted(rows) == sorted(expected)  # a line's metrics may come in any order
    assert cols.skipped == {4: (1, 2)}


@pytest.mark.parametrize(
    "names",
    [
        ["eval loss", "acc"],
        ["a{b}", "loss"],
        ["x: y", "p, q"],
        ["x:y", "p,q"],
        ["loss ", " lr", "  two  spaces"],
        ["\u00e9val", "\u6307\u6807"],
    ],
)
@pytest.mark.parametrize("compact", [False, True])
def test_metric_names_survive_whatever_they_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str], compact: bool
) -> None:
    """Every line with the same keys (the CSV fast path) and a file of mixed keys (the JSON
    reader) must both give the names as json.loads reads them."""
    dumps = (lambda r: json.dumps(r, separators=(",", ":"))) if compact else json.dumps
    same = tmp_path / "same.jsonl"
    same.write_text(
        "".join(
            dumps({"step": i, **{n: i + k for k, n in enumerate(names)}}) + "\n" for i in range(3)
        )
    )
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(dumps({"step": 0, names[0]: 1}) + "\n" + dumps({"step": 1, "other": 2}) + "\n")
    # the CSV fast path reads it all, unless a key holds a brace, ':' or ',', or an
    # escape (json.dumps writes non-ASCII as \\uXXXX)
    if not set("".join(names)) & set("{}:,") and "".join(names).isascii():

        def json_reader(*args: object) -> None:
            raise AssertionError("the fast path fell back to the JSON reader")

        monkeypatch.setattr(jsonl, "parse_json", json_reader)
    fast = jsonl.start([same]).result()  # alone in its chunk
    assert [fast.names[n] for n in fast.name] == names * 3
    assert fast.value.tolist() == [i + k for i in range(3) for k in range(len(names))]
    monkeypatch.undo()
    slow = jsonl.start([mixed]).result()
    assert [slow.names[n] for n in slow.name] == [names[0], "other"]


@pytest.mark.parametrize("compact", [False, True])
def test_files_that_log_the_same_keys_share_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """Many runs' files in one chunk, the same keys and different values (a sweep's usual
    shape): the CSV fast path reads them all, not pyarrow's JSON reader."""
    dumps = (lambda r: json.dumps(r, separators=(",", ":"))) if compact else json.dumps
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.jsonl"
        path.write_text(
            "".join(dumps({"step": s, "loss": index + s / 10, "acc": -s}) + "\n" for s in range(2))
        )
        paths.append(path)

    def json_reader(*args: object) -> None:
        raise AssertionError("the fast path fell back to the JSON reader")

    monkeypatch.setattr(jsonl, "parse_json", json_reader)
    cols = jsonl.start(paths).result()
    rows = list(zip(cols.file.tolist(), cols.step.tolist(), cols.value.tolist(), strict=True))
    assert rows == [(f, s, v) for f in range(3) for s in range(2) for v in (f + s / 10, -s)]
    assert [cols.names[n] for n in cols.name[:2]] == ["loss", "acc"]


@pytest.mark.parametrize(
    ("later", "key"),
    [
        ('{"step": 1, "lo{ss}": 3.0, "acc": 4.0}', "lo{ss}"),  # 'loss' once braces go
        ('{"step": 1, "lo\\"ss": 3.0, "acc": 4.0}', 'lo"ss'),  # an escaped quote
    ],
)
def test_a_later_line_whose_key_differs_only_by_a_brace_or_quote(
    tmp_path: Path, later: str, key: str
) -> None:
    """The first lines decide the keys; a later line whose key would read the same once
    braces and quotes are dropped is still its own metric."""
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0, "loss": 1.0, "acc": 2.0}\n' + later + "\n")
    cols = jsonl.start([path]).result()
    names = [cols.names[n] for n in cols.name]
    rows = zip(cols.step.tolist(), names, cols.value.tolist(), strict=True)
    assert sorted(rows) == [(0, "acc", 2.0), (0, "loss", 1.0), (1, "acc", 4.0), (1, key, 3.0)]


def test_lines_whose_step_is_not_a_whole_number_are_skipped(tmp_path: Path) -> None:
    fast = tmp_path / "fast.jsonl"  # every line the same keys: pyarrow's CSV reader
    fast.write_text(
        '{"step": 0, "loss": 1}\n{"step": 1.5, "loss": 2}\n{"step": 1e300, "loss": 3}\n'
        '{"step": Infinity, "loss": 4}\n{"step": NaN, "loss": 5}\n{"step": 9, "loss": 6}\n'
    )
    mixed = tmp_path / "mixed.jsonl"  # a broken line: read line by line
    mixed.write_text('{"step": 2.5, "loss": 7}\n{"step": 3, "loss": 8, "time": 1e300}\n{broken\n')
    cols = jsonl.start([fast, mixed]).result()
    assert cols.value.tolist() == [1, 5, 6, 8]
    assert cols.step.tolist() == [0, 0, 9, 3]
    assert cols.no_step.tolist() == [False, True, False, False]
    assert cols.time[3] == jsonl.NAT  # a time past what int64 nanoseconds hold
    assert cols.skipped == {0: (3, 2), 1: (2, 1)}


@pytest.mark.parametrize(
    "text",
    [
        *["0", "-0", "+7", "10", "007", "1.", ".5", "-.5", "1.5e3", "1E-3", "+1e+3", "0e0"],
        *["01.5", "00.", "1_000", "1_0.5", "1e", "e3", ".", "-", "+", "1.2.3", "1e3.5"],
        *["inf", "-inf", "nan", "NaN", "0x10", "1e-3 ", " 1", "\u0661\u0662", "true", "null"],
        *["'1'", "1,2", "[1]", "9" * 30, "1e400", "-1e-400"],
    ],
)
def test_a_swept_value_reads_as_hydra_reads_it(text: str) -> None:
    """The runs table's typed values: plain numbers skip Hydra's parser, so Hydra is
    the oracle for every literal, ugly ones too."""
    try:
        expected = parse_override(f"k={text}").value()
    except ConfigError:
        expected = text
    got = typed("k", text)
    assert type(got) is type(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


def test_collect_builds_the_three_tables_and_is_incremental(tmp_path: Path) -> None:
    root = make_sweep(
        tmp_path,
        {
            "ra": {"lr": "0.1", "model": "'vit b'"},
            "rb": {"lr": "1e-3", "model": "cnn"},
            "rc": {"lr": "2", "model": "cnn"},
        },
    )
    write_run(
        root,
        "ra",
        '{"step": 0, "loss": 2.0}\n{"step": 1, "attempt": 2, "loss": 1.0, "acc": 0.5}\n',
        "epoch: [1/2], global_step: 1, loss: 9.0, lr: 0.1\ncustom 3 f1=0.7\n",
    )
    (root / "runs" / "ra" / "logs" / "node0" / ".attempt").write_text("2")
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n{"ste', TRACEBACK, state="FAILED")

    first = collect(root)
    assert first.tables is not None and first.parsed == 6  # 3 files each for ra, rb
    assert first.skipped == {"runs not started": 1, "bad metric lines": 1}
    runs = first.tables.runs
    assert list(runs.index) == ["ra", "rb", "rc"]
    assert runs["lr"].tolist() == [0.1, 0.001, 2.0] and runs["lr"].dtype == float
    assert runs["model"].tolist() == ["vit b", "cnn", "cnn"]
    assert runs["state"].tolist() == ["COMPLETED", "FAILED", "PENDING"]
    assert runs["restarts"].tolist()[:2] == [1, 1] and pd.isna(runs["restarts"].iloc[2])
    assert runs.loc["ra", "final.loss"] == 1.0  # metrics.jsonl wins over the worker log
    assert runs.loc["ra", "final.f1"] == 0.7 and runs.loc["ra", "final.lr"] == 0.1
    assert runs.loc["rb", "final.loss"] == 3.0 and pd.isna(runs.loc["rb", "final.acc"])
    metrics = first.tables.metrics
    assert len(metrics) == 2 + 1 + 3 + 1 + 1  # ra jsonl, ra 'acc', ra OCR line, ra custom, rb
    assert set(metrics["source"].astype(str)) == {
        "runs/ra/metrics.jsonl",
        "runs/ra/logs/node0/workerlog.0",
        "runs/rb/metrics.jsonl",
    }
    assert metrics["attempt"].dtype == "Int64"
    # min and max where a reader can prune by them (steps, times, values), none for
    # the categorical columns, where a row group holds about every run and name
    written = pq.ParquetFile(root / "results" / "metrics.parquet").metadata.row_group(0)
    stats = {written.column(i).path_in_schema: written.column(i).statistics for i in range(7)}
    assert stats["step"] is not None and stats["step"].max == metrics["step"].max()
    assert stats["time"] is not None and stats["value"] is not None
    assert stats["run_id"] is None and stats["name"] is None and stats["source"] is None
    said = metrics.groupby("source", observed=True)["attempt"].apply(list).to_dict()
    assert said["runs/ra/metrics.jsonl"] == [pd.NA, 2, 2]  # a line without it: not known
    assert said["runs/ra/logs/node0/workerlog.0"] == [2] * 4  # its folder's mark
    assert said["runs/rb/metrics.jsonl"] == [pd.NA]
    (error,) = first.tables.errors.itertuples()
    assert (error.run_id, error.kind, error.node, error.rank, error.line) == (
        "rb",
        "ValueError",
        0,
        0,
        7,
    )
    assert error.log == "runs/rb/logs/node0/workerlog.0"

    assert collect(root).tables is None  # nothing changed: nothing parsed or written
    written = (root / "results" / "metrics.parquet").stat().st_mtime_ns

    write_run(root, "rc", '{"step": 5, "loss": 0.25}\n')
    third = collect(root)
    assert third.tables is not None and third.parsed == 3  # rc's three files only
    assert (root / "results" / "metrics.parquet").stat().st_mtime_ns != written
    again = load(root)
    assert (
        again.runs.loc["rc", "final.loss"] == 0.25 and again.runs.loc["rc", "state"] == "COMPLETED"
    )
    assert len(again.metrics) == len(metrics) + 1 and len(again.errors) == 1
    assert again.runs.loc["ra", "final.f1"] == 0.7  # kept from the first collect's rows
    assert again.metrics["attempt"].dtype == "Int64" and again.metrics["attempt"].max() == 2


def test_csv_output_elsewhere(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "s", {"ra": {"lr": "0.1"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n')
    outcome = collect(root, tmp_path / "out", "csv")
    assert outcome.tables is not None
    assert pd.read_csv(tmp_path / "out" / "runs.csv", index_col=0).loc["ra", "final.loss"] == 2.0
    assert collect(root, tmp_path / "out", "csv").tables is None


def test_a_final_value_is_the_last_one_logged_even_nan(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n{"step": 1, "loss": NaN}\n')
    write_run(root, "rb", '{"step": 0, "loss": 2.0, "acc": 0.1}\n{"step": 1, "loss": 1.5}\n')
    runs = load(root).runs
    assert pd.isna(runs.loc["ra", "final.loss"]) and runs.loc["rb", "final.loss"] == 1.5
    assert runs.loc["rb", "final.acc"] == 0.1 and pd.isna(runs.loc["ra", "final.acc"])


def test_a_restarted_run_has_its_new_worker_logs_found(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n')
    assert collect(root).tables is not None and collect(root).tables is None
    # requeued: the node rewrites state.json, and a new node's launcher writes its log
    (root / "runs" / "ra" / "state.json").write_text('{"state": "RUNNING", "restarts": 1}')
    node1 = root / "runs" / "ra" / "logs" / "node1"
    node1.mkdir()
    (node1 / "workerlog.0").write_text(TRACEBACK)
    tables = collect(root).tables
    assert tables is not None and tables.errors["log"].tolist() == [
        "runs/ra/logs/node1/workerlog.0"
    ]
    assert tables.runs.loc["ra", "state"] == "RUNNING" and tables.runs.loc["ra", "restarts"] == 1


def test_an_ended_runs_logs_are_not_looked_at_but_its_metrics_file_is(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n', "first log\n")
    assert collect(root).tables is not None  # state.json says COMPLETED: the run has ended
    log = root / "runs" / "ra" / "logs" / "node0" / "workerlog.0"
    log.write_text(TRACEBACK)  # nothing writes an ended run's log; if it did, it is not read
    assert collect(root).tables is None
    # an evaluation logged into the ended run afterwards is collected
    with (root / "runs" / "ra" / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 1, "test_acc": 0.75}\n')
    tables = collect(root).tables
    assert tables is not None and tables.runs.loc["ra", "final.test_acc"] == 0.75
    assert tables.errors.empty


def test_a_collect_with_nothing_changed_stops_at_the_check_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n')
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n', state="RUNNING")
    check = root / "results" / "collect-check.json"
    assert collect(root).tables is not None
    assert not check.exists()  # rb's log folders were listed just after they changed
    long_ago = time.time_ns() - 60_000_000_000
    for folder in ("logs", "logs/node0"):
        os.utime(root / "runs" / "rb" / folder, ns=(long_ago, long_ago))
    assert collect(root).tables is None  # listed again, now long after they changed
    assert check.exists()

    def no_scan(*args: object) -> None:
        raise AssertionError("the check file should have answered")

    with monkeypatch.context() as patch:
        patch.setattr(collector, "scan", no_scan)
        assert collect(root).tables is None

    (root / "runs" / "rb" / "logs" / "node0" / "workerlog.1").write_text(TRACEBACK)
    tables = collect(root).tables
    assert tables is not None and tables.errors["log"].tolist() == [
        "runs/rb/logs/node0/workerlog.1"
    ]
    assert not check.exists()  # the folder was listed again just now
    with (root / "runs" / "ra" / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 1, "loss": 1.5}\n')  # into an ended run
    tables = collect(root).tables
    assert tables is not None and tables.runs.loc["ra", "final.loss"] == 1.5
    for folder in ("logs", "logs/node0"):
        os.utime(root / "runs" / "rb" / folder, ns=(long_ago, long_ago))
    assert collect(root).tables is None and check.exists()
    (root / "results" / "metrics.parquet").unlink()  # the tables are part of the check
    tables = collect(root).tables
    assert tables is not None and len(tables.metrics) == 3


def test_after_a_finished_sweep_the_check_holds_only_metrics_and_state_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n', TRACEBACK)
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n', state="FAILED")
    assert collect(root).tables is not None
    saved = json.loads((root / "results" / "collect-check.json").read_text())
    runs = sorted(path for path in saved["paths"] if path.startswith("runs/"))
    assert runs == [f"runs/{r}/{f}" for r in ("ra", "rb") for f in ("metrics.jsonl", "state.json")]
    monkeypatch.setattr(collector, "scan", lambda *args: pytest.fail("scanned"))
    assert collect(root).tables is None


def test_a_users_parser_from_the_config_and_a_broken_one(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}}, parsers=True)
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n', "noise\nBLEU 31.5 @ 500\n")
    tables = load(root)
    bleu = tables.metrics[tables.metrics["name"] == "bleu"]
    assert bleu[["step", "value"]].values.tolist() == [[500, 31.5]]
    assert tables.runs.loc["ra", "final.bleu"] == 31.5  # the broken parser was skipped


def test_a_users_parser_with_a_fractional_step_is_skipped_for_the_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def epochs(line: str) -> dict[str, float]:  # 'ep 1 0.5' -> step 1, then step 1.5
        _, step, value = line.split()
        return {"step": float(step), "val": float(value)}

    def plain(line: str) -> dict[str, float]:
        return {"n": len(line)}

    found = parsed_metrics([epochs, plain], ["ep 1 0.5", "ep 1.5 0.25"], "runs/ra/log")
    assert found == [(None, "n", 8.0), (None, "n", 11.0)]  # nothing kept from `epochs`
    assert "step 1.5 is not a whole number" in caplog.text and "runs/ra/log" in caplog.text
    assert parsed_metrics([epochs], ["ep 3.0 1"], "x") == [(3, "val", 1.0)]


def test_the_command_ranks_runs_and_names_a_missing_column(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    write_run(root, "ra", '{"step": 0, "loss": 2.0}\n')
    write_run(root, "rb", '{"step": 0, "loss": 1.0}\n')
    lowest = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.collect", str(root), "--sort", "-final.loss"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lowest.returncode == 0, lowest.stderr
    assert lowest.stdout.index("│ rb ") < lowest.stdout.index("│ ra ")  # lowest loss first
    missing = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.collect", str(root), "--sort", "final.acc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "no column 'final.acc'" in missing.stderr
    assert "final.loss" in missing.stderr


def test_collectors_running_at_once_leave_valid_tables(tmp_path: Path) -> None:
    runs = {f"r{i:03d}": {"lr": str(i)} for i in range(60)}
    root = make_sweep(tmp_path, runs)
    for run_id in runs:
        lines = "".join(f'{{"step": {s}, "loss": {s / 10}}}\n' for s in range(200))
        write_run(root, run_id, lines)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "paddle_hpc.collect", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert not list((root / "results").glob(".*.tmp"))  # no temp file left behind
    tables = load(root)
    assert len(tables.runs) == 60 and len(tables.metrics) == 60 * 200
    assert (tables.runs["final.loss"] == 19.9).all()
