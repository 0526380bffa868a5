"""Collecting synthetic sweeps, as text only and as paddle_hpc's nodes leave them.

Two shapes: 2,000 runs x 1,000 metric rows (2M rows) and 10,000 runs x 100 (1M). Each
is built once as text (each run: metrics.jsonl with loss and acc per step, state.json,
a worker log), then copied, mtimes and all, and each run of the copy gets the compact
file its node writes when it ends, written by the node code itself
(`paddle_hpc.node.runner.write_compact`, timed and reported per run). Then, alternating
in the same run because this machine is shared and noisy, times:

Each case is timed in a fresh process, as a user's `python -m paddle_hpc.collect`
would be (interpreter start and imports not counted):

- a full collect of the text (results removed first), parquet written;
- a full collect of the copy with compact files;
- a second collect with nothing changed;
- the naive baseline: `pandas.read_json(lines=True)` per file, then `pandas.concat`;
- polars, if installed: one `scan_ndjson` over a glob of all files (parsing only), and
  the same scan made into the collector's metrics table (file path per row, one row
  per metric, categoricals, UTC times), written to parquet and handed to pandas: the
  part of a collect polars can do.

    make bench                         # or: .venv/bin/python benchmarks/collect_tables.py

Targets (issue 29, on this 2-core machine): with compact files, a full collect
<= 0.1 of the naive loop and no slower than polars' table; text only, <= 1.25x polars'
table; a collect with nothing changed <= 0.05 s. Also prints how a collect's time
divides (scan, read, tables, write) and how many processes read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from paddle_hpc.collect import collect
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.manifest import Manifest, RunEntry, save
from paddle_hpc.node.runner import write_compact

SHAPES = {"2,000 x 1,000": (2000, 500), "10,000 x 100": (10_000, 50)}  # runs, lines (x2 rows)


def build(root: Path, runs: int, lines: int) -> list[Path]:
    rng = random.Random(0)
    lrs = [f"{0.0001 * (i + 1):.4f}" for i in range(40)]
    sizes = [str(16 * (i + 1)) for i in range(runs // len(lrs))]
    entries = []
    files = []
    for index, (lr, size) in enumerate((lr, size) for lr in lrs for size in sizes):
        run_id = f"r{index:010d}"
        swept = {"optim.lr": lr, "data.batch_size": size}
        entries.append(
            RunEntry(run_id, index, tuple(f"{k}={v}" for k, v in swept.items()), swept, 0)
        )
        run_dir = root / "runs" / run_id
        (run_dir / "logs" / "node0").mkdir(parents=True)
        start = 1_763_900_000.0 + index
        text = [
            json.dumps(
                {
                    "step": step,
                    "time": round(start + step * 0.5, 3),
                    "loss": rng.random(),
                    "acc": rng.random(),
                }
            )
            for step in range(lines)
        ]
        (run_dir / "metrics.jsonl").write_text("\n".join(text) + "\n")
        (run_dir / "state.json").write_text('{"state": "COMPLETED", "restarts": 0}')
        (run_dir / "logs" / "node0" / "workerlog.0").write_text(
            "LAUNCH INFO paddle_hpc: CPU build\nrank 0 of world size 1\n"
        )
        files.append(run_dir / "metrics.jsonl")
    manifest = Manifest(
        "bench",
        "2026-01-01",
        ("bench",),
        "local",
        ("optim.lr", "data.batch_size"),
        ({},),
        tuple(entries),
    )
    save(root, manifest)
    (root / "config.yaml").write_text("sweep: {name: bench}\n")
    return files


def with_compact_files(text: Path, root: Path) -> float:
    """A copy of the text sweep, each run with its node's compact file; seconds per run."""
    shutil.copytree(text, root)  # copy2: the same mtimes
    started = time.perf_counter()
    runs = sorted((root / "runs").iterdir())
    for run in runs:
        write_compact(RunDir(run), 0)
    return (time.perf_counter() - started) / len(runs)


def polars_table(pl: Any, glob: str, out: Path, rows: int) -> pd.DataFrame:
    """The metrics table a collect makes, made by polars from the metrics files."""
    frame = (
        pl.scan_ndjson(glob, include_file_paths="source")
        .with_columns(pl.col("source").cast(pl.Categorical))
        .unpivot(index=["source", "step", "time"], variable_name="name", value_name="value")
        .with_columns(
            pl.col("name").cast(pl.Categorical),
            pl.from_epoch(
                (pl.col("time") * 1e6).cast(pl.Int64), time_unit="us"
            ).dt.replace_time_zone("UTC"),
        )
        .collect()
    )
    frame.write_parquet(out)
    table: pd.DataFrame = frame.to_pandas()
    assert len(table) == rows
    return table


CASES = (
    "collect, text",
    "collect, nodes'",
    "no change",
    "naive pandas",
    "polars scan",
    "polars table",
)


def run_case(case: str, base: Path, runs: int, lines: int, workers: int | None) -> dict[str, Any]:
    """Times one case in this process (a fresh one for each case: the cases leave each
    other memory and threads otherwise); what a collect says of its time, too."""
    rows = runs * 2 * lines
    text, nodes = base / "text", base / "nodes"
    glob = str(text / "runs" / "*" / "metrics.jsonl")
    said: dict[str, Any] = {}
    if case.startswith("collect"):
        root = text if case == "collect, text" else nodes
        shutil.rmtree(root / "results", ignore_errors=True)
        start = time.perf_counter()
        outcome = collect(root, workers=workers)
        seconds = time.perf_counter() - start
        assert outcome.tables is not None and len(outcome.tables.metrics) == rows
        said = outcome.seconds | {"processes": outcome.workers}
    elif case == "no change":
        start = time.perf_counter()
        assert collect(nodes, workers=workers).tables is None
        seconds = time.perf_counter() - start
    elif case == "naive pandas":
        files = sorted(text.glob("runs/*/metrics.jsonl"))
        start = time.perf_counter()
        frame = pd.concat([pd.read_json(f, lines=True) for f in files])
        seconds = time.perf_counter() - start
        assert len(frame) == runs * lines
    else:
        import polars as pl

        start = time.perf_counter()
        if case == "polars scan":
            pl.scan_ndjson(glob).collect()
        else:
            polars_table(pl, glob, base / "polars.parquet", rows)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "said": said}


def in_a_process(
    case: str, base: Path, runs: int, lines: int, workers: int | None
) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--case", case, str(base), str(runs), str(lines)]
    done = subprocess.run(
        argv + ([f"--workers={workers}"] if workers else []),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def measure(
    name: str, runs: int, lines: int, repeat: int, polars: bool, workers: int | None
) -> None:
    base = Path(tempfile.mkdtemp(prefix="paddle-hpc-collect-bench-"))
    split: dict[str, dict[str, float]] = {}
    cases = [c for c in CASES if polars or not c.startswith("polars")]
    times: dict[str, list[float]] = {case: [] for case in cases}
    try:
        print(f"\n{name}: building {runs} runs x {2 * lines} metric rows in {base} ...")
        build(base / "text", runs, lines)
        per_run = with_compact_files(base / "text", base / "nodes")
        print(f"  compact files written by the node code: {per_run * 1000:.2f} ms per run")
        for round_ in range(repeat):
            for case in cases:
                found = in_a_process(case, base, runs, lines, workers)
                times[case].append(found["seconds"])
                if found["said"]:
                    split[case] = found["said"]
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items())
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    median = {case: statistics.median(values) for case, values in times.items()}
    report(name, repeat, median, split, per_run)


def ratio(label: str, value: float, limit: float | None = None) -> str:
    target = f"   target <= {limit}: {'met' if value <= limit else 'MISSED'}" if limit else ""
    return f"  {label:<23} {value:.3f}{target}"


def report(
    name: str,
    repeat: int,
    median: dict[str, float],
    split: dict[str, dict[str, float]],
    per_run: float,
) -> None:
    print(f"\n{name}; median of {repeat}")
    for case, value in median.items():
        print(f"  {case:<16} {value:7.3f} s")
    text, nodes = median["collect, text"], median["collect, nodes'"]
    naive = median["naive pandas"]
    print(ratio("nodes' / naive pandas", nodes / naive, 0.1))
    print(ratio("text / naive pandas", text / naive))
    if "polars table" in median:
        polars = median["polars table"]
        print(ratio("nodes' / polars table", nodes / polars, 1.0))
        print(ratio("text / polars table", text / polars, 1.25))
    nothing = median["no change"]
    met = "met" if nothing <= 0.05 else "MISSED"
    print(f"  no-change collect       {nothing:.3f} s target <= 0.05 s: {met}")
    print(f"  the node's compact file {per_run * 1000:.2f} ms per run, written as each run ends")
    for label, seconds in split.items():  # the last round's
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items() if k != "processes")
        print(f"  {label} divides: {parts}; {seconds['processes']:.0f} process(es) read")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", choices=list(SHAPES), action="append")
    parser.add_argument("--workers", type=int, help="processes that read (default: cores)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("where", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # one case, in a process of its own
        base, runs, lines = args.where
        print(json.dumps(run_case(args.case, Path(base), int(runs), int(lines), args.workers)))
        return 0
    try:
        import polars
    except ImportError:
        polars = None
    print(f"{os.cpu_count()} cores; each case timed in a process of its own")
    for name in args.shape or list(SHAPES):
        runs, lines = SHAPES[name]
        measure(name, runs, lines, args.repeat, polars is not None, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
