"""Which engine should parse metrics.jsonl: the collector's own (pyarrow's CSV reader
on the chunk made CSV, pyarrow's JSON reader as the fallback), or polars?

The collector reads the files itself (incremental reads up to each file's recorded
size, truncated last lines blanked, corrupt lines skipped and counted), so an engine
would parse the collector's chunk buffer. This times each parser on the same 10 MB
chunk (100,000 `log_metrics` lines), alternating in the same run, and checks what
each does with lines the collector must not lose or must count: a metric that first
appears late in a file, an int metric that later holds a float, a corrupt line.

    .venv/bin/python benchmarks/metrics_engine.py [--repeat N]

Issue 11: switch to polars (or pyarrow's dataset reader) if it gives a faster and
simpler collector.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.json as pa_json

from paddle_hpc.parse import jsonl
from paddle_hpc.parse.jsonl_parsers import parse_as_csv

LINES = 100_000


def metric_lines(count: int) -> list[str]:
    rng = random.Random(0)
    return [
        json.dumps({"step": s, "time": 1_763_900_000.0 + s, "attempt": 1, "loss": rng.random(),
                    "acc": rng.random()})
        for s in range(count)
    ]  # fmt: skip


def timed(parse: Callable[[], Any]) -> float:
    start = time.perf_counter()
    parse()
    return time.perf_counter() - start


def polars_keeps(text: str) -> str:
    try:
        frame = pl.read_ndjson(io.BytesIO(text.encode()))
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    return f"columns {frame.columns}, {frame.height} rows"


def ours_keeps(text: str, folder: Path) -> str:
    path = folder / "case.jsonl"
    path.write_text(text)
    cols = jsonl.start([path]).result()
    skipped = sum(n for n, _ in cols.skipped.values())
    return f"metrics {sorted(set(cols.names))}, {len(cols.value)} rows, {skipped} skipped"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    lines = metric_lines(LINES)
    data = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "metrics.jsonl"
        path.write_bytes(data)
        chunk = jsonl._read_chunk([path], [len(data)], 0)
        assert chunk.keys is not None, "the chunk should take the CSV path"
        engines: dict[str, Callable[[], Any]] = {
            "collector (pyarrow CSV on the chunk)": lambda: parse_as_csv(
                chunk.csv, LINES, chunk.keys or [], chunk.fields
            ),
            "pyarrow read_json (the fallback)": lambda: pa_json.read_json(io.BytesIO(data)),
            "polars read_ndjson, to arrow": lambda: pl.read_ndjson(io.BytesIO(data)).to_arrow(),
        }
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.repeat):
            for name, parse in engines.items():
                times[name].append(timed(parse))
        ours = statistics.median(times["collector (pyarrow CSV on the chunk)"])
        print(
            f"parsing one {len(data) / 1e6:.1f} MB chunk ({LINES} lines), median of {args.repeat}"
        )
        for name, found in times.items():
            median = statistics.median(found)
            print(f"  {name:40} {median * 1000:7.1f} ms  {median / ours:5.2f}x the collector's")

        head = lines[:200]
        cases = {
            "a metric first logged on line 201": [*head, json.dumps({"step": 200, "lr": 0.1})],
            "an int metric that later holds a float": [
                json.dumps({"step": i, "epoch": 1}) for i in range(200)
            ]
            + [json.dumps({"step": 200, "epoch": 1.5})],
            "a corrupt line among good ones": [*head, '{"step": 200, "loss": 0.', *head[:1]],
        }
        print("\nwhat each keeps")
        for case, case_lines in cases.items():
            text = "\n".join(case_lines) + "\n"
            print(f"  {case}:")
            print(f"    polars:    {polars_keeps(text)}")
            print(f"    collector: {ours_keeps(text, folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
