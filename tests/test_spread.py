"""A collect's reading spread over processes (collect/spread.py): chunks of about equal
work, forked workers, and tables identical to one process's."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.collect import collect, spread
from paddle_hpc.collect.sources import RunFiles
from tests.fakes import make_sweep, write_run

PARENT = os.getpid()


def run(run_id: str) -> RunFiles:
    base = f"runs/{run_id}"
    return RunFiles(run_id, f"{base}/metrics.jsonl", f"{base}/state.json", ((f"{base}/log", 0, 0),))


def test_runs_are_cut_into_chunks_of_about_equal_work() -> None:
    runs = [run(f"r{i}") for i in range(6)]
    big = spread.LEAST
    sizes = [big, big, 1, big, big, 0]
    files = {}
    for r, size in zip(runs, sizes, strict=True):
        files |= {r.metrics: [size, 1], r.state: [10, 1], r.worker_logs[0][0]: [10, 1]}
    every = set(files)
    assert [[r.run_id for r in c] for c in spread.chunks(runs, every, files, 2)] == [
        ["r0", "r1", "r2"],
        ["r3", "r4", "r5"],
    ]
    quarters = [[r.run_id for r in c] for c in spread.chunks(runs, every, files, 64)]
    assert quarters == [["r0"], ["r1", "r2"], ["r3"], ["r4", "r5"]]  # none under LEAST
    # runs with nothing changed are not read; a small collect is one chunk
    changed = {runs[2].metrics, runs[5].state}
    assert [[r.run_id for r in c] for c in spread.chunks(runs, changed, files, 8)] == [["r2", "r5"]]
    assert spread.chunks(runs, set(), files, 8) == [[]]


def where(item: int) -> tuple[int, int]:
    return item * item, os.getpid()


def fails_in_a_child(item: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("a worker's bug")
    return item + 1


def test_items_are_read_in_forked_children_in_order() -> None:
    results = spread.spread(where, [1, 2, 3])
    assert [value for value, _ in results] == [1, 4, 9]
    pids = [pid for _, pid in results]
    assert pids[0] == PARENT and len(set(pids)) == 3
    # a child that fails leaves its item to this process
    assert spread.spread(fails_in_a_child, [1, 2, 3]) == [2, 3, 4]


def test_a_process_with_other_threads_is_not_forked() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not spread.can_fork()
        assert {pid for _, pid in spread.spread(where, [1, 2])} == {PARENT}
    finally:
        stop.set()
        thread.join()


def test_tables_read_by_several_processes_are_one_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = {f"r{i}": {"lr": str(i)} for i in range(7)}
    root = make_sweep(tmp_path / "sweep", runs, parsers=True)
    for i in range(6):
        lines = "".join(f'{{"step": {s}, "loss": {i + s}}}\n' for s in range(20))
        write_run(root, f"r{i}", lines + ('{"bad\n' if i == 3 else ""), f"custom 3 f1=0.{i}\n")
    monkeypatch.setattr(spread, "LEAST", 1)
    apart = collect(root, out=tmp_path / "apart", workers=3)
    alone = collect(root, out=tmp_path / "alone", workers=1)
    assert (apart.workers, alone.workers) == (3, 1)
    assert apart.tables is not None and alone.tables is not None
    assert apart.skipped == alone.skipped == {"runs not started": 1, "bad metric lines": 1}
    for name in ("runs", "metrics", "errors"):
        pd.testing.assert_frame_equal(getattr(apart.tables, name), getattr(alone.tables, name))
    assert len(apart.tables.metrics) == 6 * 20 + 6
