"""metrics.jsonl files (written by `paddle_hpc.log_metrics`) -> long metric rows.

The complete lines of all files are joined and parsed by pyarrow's JSON reader in one
call (C++, multi-threaded). If that fails, each file is parsed alone, and a file
that still fails goes line by line, skipping and counting every line that is not a
JSON object of numbers. A last line without its newline (a run still writing it, or
killed while writing) is skipped and counted as truncated.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

BLOCK_SIZE = 8 << 20  # bytes per parsing block: fewer, larger blocks parse faster


@dataclass
class Columns:
    """Long rows, in file and line order; `file` indexes the paths that were read."""

    file: np.ndarray  # int32
    step: np.ndarray  # float64, NaN where the line had no step
    time: np.ndarray  # float64 seconds since the epoch, NaN where unknown
    name: np.ndarray  # int32 codes into `names`
    value: np.ndarray  # float64
    names: list[str]
    skipped: dict[int, tuple[int, int]] = field(default_factory=dict)  # file -> (lines, first)


def read_metrics(paths: Sequence[Path]) -> Columns:
    chunks: list[bytes] = []
    counts: list[int] = []
    skipped: dict[int, tuple[int, int]] = {}
    for index, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
            skipped[index] = (0, 0)
        end = data.rfind(b"\n") + 1
        lines = data.count(b"\n", 0, end)
        if end < len(data):
            skipped[index] = (1, lines + 1)
        chunks.append(data[:end])
        counts.append(lines)
    try:
        table = _parse(b"".join(chunks), sum(counts))
        files = np.repeat(np.arange(len(paths), dtype=np.int32), counts)
        return _long([(table, files)], skipped)
    except (pa.ArrowInvalid, ValueError):
        pass
    parts = []
    for index, (chunk, count) in enumerate(zip(chunks, counts, strict=True)):
        try:
            table = _parse(chunk, count)
        except (pa.ArrowInvalid, ValueError):
            table, bad, first = _parse_lines(chunk)
            if bad:
                before, first_before = skipped.get(index, (0, 0))
                skipped[index] = (before + bad, min(first, first_before or first))
        parts.append((table, np.full(table.num_rows, index, dtype=np.int32)))
    return _long(parts, skipped)


def _parse(data: bytes, lines: int) -> pa.Table:
    if not data:
        return pa.table({})
    table = pa_json.read_json(
        io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE)
    )
    if table.num_rows != lines:  # blank lines are not rows
        raise ValueError("line count")
    for name in table.column_names:
        if not _numeric(table.schema.field(name).type):
            raise ValueError(f"{name} is not a number")
    return table


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind))


def _parse_lines(data: bytes) -> tuple[pa.Table, int, int]:
    """The good lines of one file as a table, the number of bad ones, and the first bad one."""
    rows = []
    bad, first = 0, 0
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and all(
                value is None or (isinstance(value, int | float) and not isinstance(value, bool))
                for value in row.values()
            )
        except ValueError:
            ok = False
        if ok:
            rows.append(row)
        elif line.strip():
            bad += 1
            first = first or number
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    table = pa.table({name: pa.array(values, pa.float64()) for name, values in columns.items()})
    if not names:
        table = pa.table({"_": pa.nulls(len(rows))}).drop_columns(["_"]) if rows else pa.table({})
    return table, bad, first


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table[name].cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _long(parts: list[tuple[pa.Table, np.ndarray]], skipped: dict[int, tuple[int, int]]) -> Columns:
    """Wide tables (a column per metric) -> long rows, row-major so file order is kept."""
    names: list[str] = []
    codes: dict[str, int] = {}
    out: dict[str, list[np.ndarray]] = {"file": [], "step": [], "time": [], "name": [], "value": []}
    for table, files in parts:
        metrics = [n for n in table.column_names if n not in ("step", "time")]
        if not metrics or table.num_rows == 0:
            continue
        for name in metrics:
            codes.setdefault(name, len(codes))
        values = np.column_stack([_column(table, n) for n in metrics])
        present = np.column_stack(
            [table[n].is_valid().to_numpy(zero_copy_only=False) for n in metrics]
        )
        keep = present.ravel()
        width = len(metrics)
        out["file"].append(np.repeat(files, width)[keep])
        out["step"].append(np.repeat(_column(table, "step"), width)[keep])
        out["time"].append(np.repeat(_column(table, "time"), width)[keep])
        name_codes = np.array([codes[n] for n in metrics], dtype=np.int32)
        out["name"].append(np.tile(name_codes, table.num_rows)[keep])
        out["value"].append(values.ravel()[keep])
    names = list(codes)
    dtypes = {"file": np.int32, "step": float, "time": float, "name": np.int32, "value": float}
    arrays = {
        key: np.concatenate(chunks) if chunks else np.empty(0, dtype=dtypes[key])
        for key, chunks in out.items()
    }
    return Columns(names=names, skipped=skipped, **arrays)
