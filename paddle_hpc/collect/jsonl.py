"""metrics.jsonl files (written by `paddle_hpc.log_metrics`) -> long metric rows.

All files are read into one buffer. The usual case, every line a flat object of the
same keys in the same order (what `log_metrics` writes for a script that logs the
same metrics each time), takes a fast path: with `:` made a `,` and spaces, braces
and quotes removed, a line is comma-separated `key,value` pairs, which pyarrow's CSV
reader parses several times faster than its JSON reader. Every key column is checked
to hold only its key, and every value column to be numbers (`NaN`, `Infinity` and
`null` included); anything else falls back to pyarrow's JSON reader on the whole
buffer, then per file, then line by line, skipping and counting every line that is not
a JSON object of numbers. A last line without its newline (a run still writing it,
or killed while writing) is skipped and counted as truncated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from paddle_hpc.collect.sources import fingerprint

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


def read_metrics(paths: Sequence[str | Path], sizes: Sequence[int] | None = None) -> Columns:
    """Reads the files, each up to its size (the size its fingerprint recorded: bytes
    appended since are read next time), and parses them."""
    if sizes is None:
        sizes = [(fingerprint(path) or (0, 0))[0] for path in paths]
    buffer, spans, counts, skipped = _read_all(paths, sizes)
    files = np.repeat(np.arange(len(paths), dtype=np.int32), counts)
    firsts = [bytes(buffer[a : buffer.find(b"\n", a, b)]) for a, b in spans if b > a]
    try:
        return _long([(_parse_as_csv(buffer, sum(counts), firsts), files)], skipped)
    except (pa.ArrowInvalid, ValueError):
        pass
    try:
        return _long([(_parse(buffer, sum(counts)), files)], skipped)
    except (pa.ArrowInvalid, ValueError):
        pass
    parts = []
    for index, ((a, b), count) in enumerate(zip(spans, counts, strict=True)):
        chunk = bytes(buffer[a:b])
        try:
            table = _parse(chunk, count)
        except (pa.ArrowInvalid, ValueError):
            table, bad, first = _parse_lines(chunk)
            if bad:
                before, first_before = skipped.get(index, (0, 0))
                skipped[index] = (before + bad, min(first, first_before or first))
        parts.append((table, np.full(table.num_rows, index, dtype=np.int32)))
    return _long(parts, skipped)


def _read_all(
    paths: Sequence[str | Path], sizes: Sequence[int]
) -> tuple[bytearray, list[tuple[int, int]], list[int], dict[int, tuple[int, int]]]:
    """All files in one buffer, each file's span of complete lines in it, their number,
    and what was skipped: file -> (lines, first line). A truncated last line is blanked
    with spaces, which both parsers pass over."""
    buffer = bytearray(sum(sizes))
    view = memoryview(buffer)
    spans: list[tuple[int, int]] = []
    counts: list[int] = []
    skipped: dict[int, tuple[int, int]] = {}
    start = 0
    for index, (path, size) in enumerate(zip(paths, sizes, strict=True)):
        try:
            with open(path, "rb", buffering=0) as handle:  # noqa: PTH123 - str or Path
                read = handle.readinto(view[start : start + size]) or 0
        except OSError:
            read = 0
            skipped[index] = (0, 0)
        newline = buffer.rfind(b"\n", start, start + read)
        end = newline + 1 if newline >= 0 else start
        lines = buffer.count(b"\n", start, end)
        if end < start + size:
            if end < start + read:
                skipped[index] = (1, lines + 1)
            view[end : start + size] = b" " * (start + size - end)
        spans.append((start, end))
        counts.append(lines)
        start += size
    return buffer, spans, counts, skipped


_TO_CSV = bytes.maketrans(b":", b",")
_DROP = b' {}"'


def _parse_as_csv(data: bytearray, lines: int, firsts: Sequence[bytes]) -> pa.Table:
    """The fast path (see the module docstring); raises ValueError when it does not apply."""
    signatures = {tuple(first.translate(_TO_CSV, _DROP).split(b",")[0::2]) for first in firsts}
    if len(signatures) != 1:
        raise ValueError("the files do not all start with the same keys")
    keys = [key.decode() for key in next(iter(signatures))]
    if any(not key or "\\" in key for key in keys) or len(set(keys)) != len(keys):
        raise ValueError("keys the fast path cannot take")
    names = [part for key in keys for part in (f"{key}\0", key)]
    table = pa_csv.read_csv(
        pa.py_buffer(data.translate(_TO_CSV, _DROP)),
        read_options=pa_csv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
        parse_options=pa_csv.ParseOptions(quote_char=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={
                name: pa.dictionary(pa.int32(), pa.string())
                if name.endswith("\0")
                else pa.float64()
                for name in names
            },
            null_values=["null"],
            strings_can_be_null=False,
        ),
    )
    if table.num_rows != lines:
        raise ValueError("line count")
    for key in keys:
        column = table[f"{key}\0"].unique()
        if column.null_count or len(column) != 1 or column[0].as_py() != key:
            raise ValueError(f"not every line has {key!r} in the same place")
    return table.select(keys)


def _parse(data: bytes | bytearray, lines: int) -> pa.Table:
    if lines == 0:
        return pa.table({})
    table = pa_json.read_json(
        pa.BufferReader(pa.py_buffer(data)), read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE)
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
    return table, bad, first


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table[name].cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _long(parts: list[tuple[pa.Table, np.ndarray]], skipped: dict[int, tuple[int, int]]) -> Columns:
    """Wide tables (a column per metric) -> long rows, row-major so file order is kept."""
    codes: dict[str, int] = {}
    out: dict[str, list[np.ndarray]] = {"file": [], "step": [], "time": [], "name": [], "value": []}
    for table, files in parts:
        metrics = [n for n in table.column_names if n not in ("step", "time")]
        if not metrics or table.num_rows == 0:
            continue
        for name in metrics:
            codes.setdefault(name, len(codes))
        width = len(metrics)
        values = np.empty((table.num_rows, width))
        for index, name in enumerate(metrics):
            values[:, index] = _column(table, name)
        name_codes = np.array([codes[n] for n in metrics], dtype=np.int32)
        long = {
            "file": np.repeat(files, width),
            "step": np.repeat(_column(table, "step"), width),
            "time": np.repeat(_column(table, "time"), width),
            "name": np.tile(name_codes, table.num_rows),
            "value": values.ravel(),
        }
        if any(table[name].null_count for name in metrics):  # a metric missing from a line
            present = np.empty((table.num_rows, width), dtype=bool)
            for index, name in enumerate(metrics):
                present[:, index] = table[name].is_valid().to_numpy(zero_copy_only=False)
            keep = present.ravel()
            long = {key: array[keep] for key, array in long.items()}
        for key, array in long.items():
            out[key].append(array)
    dtypes = {"file": np.int32, "step": float, "time": float, "name": np.int32, "value": float}
    arrays = {
        key: chunks[0] if len(chunks) == 1 else np.concatenate(chunks or [np.empty(0, dtypes[key])])
        for key, chunks in out.items()
    }
    return Columns(names=list(codes), skipped=skipped, **arrays)
