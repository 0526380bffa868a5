"""Collecting a synthetic sweep of 2,000 runs x 1,000 metric rows (2M rows).

Builds the sweep directory once (each run: metrics.jsonl with 500 lines of loss and
acc, state.json, a worker log), then, alternating in the same run because this
machine is shared and noisy, times:

- a full `paddle_hpc.collect.collect` (results removed first), parquet written;
- a second collect with nothing changed;
- the naive baseline: `pandas.read_json(lines=True)` per file, then `pandas.concat`;
- polars, if installed: `read_ndjson` per file then `concat`; one `scan_ndjson` over
  a glob of all files (parsing only); and the same scan made into the collector's
  metrics table (file path per row, one row per metric, categoricals, UTC times),
  written to parquet and handed to pandas: the part of a collect polars can do.

    make bench                         # or: .venv/bin/python benchmarks/collect_tables.py

Targets: full collect <= 1/10 of the naive baseline (issue 4) and within 1.25x of
polars' table (issue 11); a collect with nothing changed <= 0.05 s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from paddle_hpc.collect import collect
from paddle_hpc.core.manifest import Manifest, RunEntry, save

RUNS = 2000
LINES = 500  # x 2 metrics = 1,000 metric rows per run


def build(root: Path) -> list[Path]:
    rng = random.Random(0)
    lrs = [f"{0.0001 * (i + 1):.4f}" for i in range(40)]
    sizes = [str(16 * (i + 1)) for i in range(RUNS // len(lrs))]
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
        lines = [
            json.dumps(
                {
                    "step": step,
                    "time": round(start + step * 0.5, 3),
                    "loss": rng.random(),
                    "acc": rng.random(),
                }
            )
            for step in range(LINES)
        ]
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
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


def polars_table(pl: Any, glob: str, out: Path) -> pd.DataFrame:
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
    assert len(table) == RUNS * 2 * LINES
    return table


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import polars as pl
    except ImportError:
        pl = None

    root = Path(tempfile.mkdtemp(prefix="paddle-hpc-collect-bench-"))
    try:
        print(f"building {RUNS} runs x {2 * LINES} metric rows in {root} ...", flush=True)
        files = build(root)
        results = root / "results"

        def full() -> None:
            shutil.rmtree(results, ignore_errors=True)
            outcome = collect(root)
            assert outcome.tables is not None and len(outcome.tables.metrics) == RUNS * 2 * LINES

        def unchanged() -> None:
            assert collect(root).tables is None

        def naive() -> None:
            frame = pd.concat([pd.read_json(f, lines=True) for f in files])
            assert len(frame) == RUNS * LINES

        cases: dict[str, Callable[[], None]] = {
            "collect": full,
            "no change": unchanged,
            "naive pandas": naive,
        }
        if pl is not None:
            glob = str(root / "runs" / "*" / "metrics.jsonl")
            cases["polars per file"] = lambda: pl.concat([pl.read_ndjson(f) for f in files])
            cases["polars scan"] = lambda: pl.scan_ndjson(glob).collect()
            cases["polars table"] = lambda: polars_table(pl, glob, root / "polars.parquet")
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.repeat):
            for name, action in cases.items():
                times[name].append(timed(action))
            print(
                f"round {round_ + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()),
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    ours = median["collect"]
    print(f"\n{RUNS} runs x {2 * LINES} metric rows; median of {args.repeat}")
    for name, value in median.items():
        print(f"  {name:<16} {value:7.3f} s")
    ratio = ours / median["naive pandas"]
    verdict = "met" if ratio <= 0.1 else "MISSED"
    print(f"  collect / naive pandas  {ratio:.3f}   target <= 0.1: {verdict}")
    # issue 4: faster than polars; issue 11: within 1.25x of polars' scan made the table
    for name, limit in (("polars per file", 1.0), ("polars scan", 1.0), ("polars table", 1.25)):
        if name in median:
            r = ours / median[name]
            print(
                f"  collect / {name:<13} {r:.3f}   target <= {limit}: "
                f"{'met' if r <= limit else 'MISSED'}"
            )
    nothing = median["no change"]
    print(
        f"  no-change collect       {nothing:.3f} s target <= 0.05 s: "
        f"{'met' if nothing <= 0.05 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
