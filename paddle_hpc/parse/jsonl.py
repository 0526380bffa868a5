"""metrics.jsonl files (written by `paddle_hpc.log_metrics`) -> long metric rows.

Files are read into buffers of about CHUNK bytes; each is parsed in a second thread
while the next is read. The usual chunk, every line a flat object of the same keys in
the same order (what `log_metrics` writes for a script that logs the same metrics each
time), takes a fast path: with `:` made a `,`, and braces and quotes removed, a line
is comma-separated `key, value` pairs, which pyarrow's CSV reader parses several times
faster than its JSON reader (a key keeps its own spaces; a `:` or `,` in a key adds a
field the reader refuses; a brace in one is counted). Every key column is checked to
hold only its key,
and every value column to be numbers (`NaN`, `Infinity` and `null` included); anything
else falls back to pyarrow's JSON reader on the whole chunk, then per file, then line
by line, skipping and counting every line that is not a JSON object of numbers. A last
line without its newline (a run still writing it, or killed while writing) is skipped
and counted as truncated."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from paddle_hpc.metrics import RESERVED
from paddle_hpc.parse.jsonl_parsers import (
    DROP,
    TO_CSV,
    parse_as_csv,
    parse_json,
    parse_lines,
    whole_steps,
)

_Skipped = dict[int, tuple[int, int]]  # file index -> (lines skipped, the first one)
NAT = np.iinfo(np.int64).min  # numpy's and pandas' "not a time" as int64
CHUNK = 8 << 20  # bytes read and translated while the chunk before is parsed
OWN_KEYS = frozenset({"step", *RESERVED})  # what log_metrics writes besides the metrics


@dataclass
class Columns:
    """Long rows, in file and line order; `file` indexes the paths that were read."""

    file: np.ndarray  # int32
    step: np.ndarray  # int64, 0 where the line had none
    no_step: np.ndarray  # bool: the line had no step
    time: np.ndarray  # int64 nanoseconds since the epoch, NAT where unknown
    attempt: np.ndarray  # int64, 0 where the line did not say
    name: np.ndarray  # int32 codes into `names`
    value: np.ndarray  # float64
    names: list[str]
    skipped: _Skipped = field(default_factory=dict)


class Reading:
    """Files read (in the calling thread) and being parsed (in a second one)."""

    def __init__(self, pending: list[Future[tuple[list[_Wide], _Skipped]]]) -> None:
        self._pending = pending

    def result(self) -> Columns:
        """Waits for the parses; every chunk's rows, in file order."""
        parts: list[_Wide] = []
        skipped: _Skipped = {}
        for future in self._pending:
            wides, chunk_skipped = future.result()
            parts += wides
            skipped |= chunk_skipped
        return _long(parts, skipped)


def start(paths: Sequence[str | Path], sizes: Sequence[int] | None = None) -> Reading:
    """Reads the files in chunks of about CHUNK bytes, and hands each chunk to a second
    thread to parse while the next one is read: reading and parsing use both cores.
    Returns once every file is read; the caller can do other work while the last
    chunks parse."""
    if sizes is None:
        sizes = [_size(path) for path in paths]
    parser = ThreadPoolExecutor(1, thread_name_prefix="paddle-hpc-jsonl")
    try:
        return Reading(
            [
                parser.submit(_parse_chunk, _read_chunk(paths[a:b], sizes[a:b], a))
                for a, b in _chunks(sizes, CHUNK)
            ]
        )
    finally:
        parser.shutdown(wait=False)


def _size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size  # noqa: PTH116 - str or Path
    except OSError:
        return 0


def _chunks(sizes: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of consecutive files, each of about `limit` bytes."""
    ranges = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        total += size
        if total >= limit:
            ranges.append((start, index + 1))
            start, total = index + 1, 0
    if start < len(sizes):
        ranges.append((start, len(sizes)))
    return ranges


@dataclass
class _Chunk:
    first: int  # the index of its first file
    buffer: bytearray
    spans: list[tuple[int, int]]  # each file's complete lines in buffer
    counts: list[int]  # lines per file
    skipped: _Skipped
    keys: list[str] | None  # when the fast path may apply: the keys of every line
    fields: list[bytes] = field(default_factory=list)  # then: each key as the CSV holds it
    csv: bytes | bytearray = b""  # and the buffer made CSV


def _read_chunk(paths: Sequence[str | Path], sizes: Sequence[int], first: int) -> _Chunk:
    buffer, spans, counts, skipped = _read_all(paths, sizes)
    chunk = _Chunk(first, buffer, spans, counts, {first + i: v for i, v in skipped.items()}, None)
    firsts = [bytes(buffer[a : buffer.find(b"\n", a, b)]) for a, b in spans if b > a]
    signatures = {_signature(line.translate(TO_CSV, DROP).split(b",")) for line in firsts}
    if len(signatures) != 1:
        return chunk
    fields, pairs, spaced = next(iter(signatures))
    names = [f[1:] if spaced and i else f for i, f in enumerate(fields)]
    keys = [name.decode(errors="replace") for name in names]
    lines = sum(counts)
    if pairs and all(key and "\\" not in key for key in keys) and len(set(keys)) == len(keys):
        csv = buffer.translate(TO_CSV, DROP)
        # a brace or quote in a key would vanish from it (a ':' or ',' adds a CSV field,
        # which the CSV reader refuses): those dropped must be each line's two braces
        # and its keys' two quotes each, no more
        if len(buffer) - len(csv) == lines * (2 + 2 * len(keys)):
            chunk.keys, chunk.fields, chunk.csv = keys, list(fields), csv
    return chunk


def _signature(parts: list[bytes]) -> tuple[tuple[bytes, ...], bool, bool]:
    """A first line made CSV -> its keys as the CSV holds them, whether it is all
    key-value pairs, and whether json.dumps spaced it (', ' and ': ': then every value,
    and every key but the first, has one space before it; a key's own spaces stay).
    The values are left out: the files of a chunk share this, not their first values."""
    fields, values = tuple(parts[0::2]), parts[1::2]
    pairs = len(fields) == len(values)
    return fields, pairs, pairs and all(v.startswith(b" ") for v in values)


def _parse_chunk(chunk: _Chunk) -> tuple[list[_Wide], _Skipped]:
    """The chunk's rows: the fast path, else pyarrow's JSON reader on the whole chunk,
    else per file, else line by line."""
    counts, skipped = chunk.counts, chunk.skipped
    files = np.repeat(np.arange(chunk.first, chunk.first + len(counts), dtype=np.int32), counts)
    if chunk.keys is not None:
        try:
            table = parse_as_csv(chunk.csv, sum(counts), chunk.keys, chunk.fields)
            return _wide(table, files, skipped), skipped
        except (pa.ArrowInvalid, ValueError):
            pass
    try:
        return _wide(parse_json(chunk.buffer, sum(counts)), files, skipped), skipped
    except (pa.ArrowInvalid, ValueError):
        pass
    parts = []
    for offset, ((a, b), count) in enumerate(zip(chunk.spans, counts, strict=True)):
        index = chunk.first + offset
        data = bytes(chunk.buffer[a:b])
        try:
            table = parse_json(data, count)
        except (pa.ArrowInvalid, ValueError):
            table, bad, first = parse_lines(data)
            if bad:
                before, first_before = skipped.get(index, (0, 0))
                skipped[index] = (before + bad, min(first, first_before or first))
        parts += _wide(table, np.full(table.num_rows, index, dtype=np.int32), skipped)
    return parts, skipped


def _read_all(
    paths: Sequence[str | Path], sizes: Sequence[int]
) -> tuple[bytearray, list[tuple[int, int]], list[int], _Skipped]:
    """All files in one buffer, each file's span of complete lines in it, their number,
    and what was skipped: file -> (lines, first line). A truncated last line is blanked
    with spaces, which both parsers pass over."""
    buffer = bytearray(sum(sizes))
    view = memoryview(buffer)
    spans: list[tuple[int, int]] = []
    counts: list[int] = []
    skipped: _Skipped = {}
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


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table[name].cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _nanos(seconds: np.ndarray) -> np.ndarray:
    """Seconds since the epoch -> int64 nanoseconds; NaN, and times past what int64
    nanoseconds hold (the years 1677-2262), -> NAT."""
    with np.errstate(invalid="ignore"):
        known = np.abs(seconds) < 9.2e9
    if known.all():
        return np.rint(seconds * 1e9).astype(np.int64)
    nanos = np.full(len(seconds), NAT, dtype=np.int64)
    nanos[known] = np.rint(seconds[known] * 1e9)
    return nanos


def _skip_bad_steps(
    table: pa.Table, files: np.ndarray, skipped: _Skipped
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Drops the lines whose step is not a whole number and counts them in `skipped`.
    The table's rows are its files' lines, in order."""
    step = _column(table, "step")
    good = whole_steps(step)
    if good.all():
        return table, files, step
    bad = np.flatnonzero(~good)
    indices, firsts, counts = np.unique(files[bad], return_index=True, return_counts=True)
    for index, row, count in zip(indices.tolist(), bad[firsts], counts.tolist(), strict=True):
        line = int(row - np.searchsorted(files, index)) + 1
        before, first = skipped.get(index, (0, 0))
        skipped[index] = (before + count, min(first, line) if first else line)
    return table.filter(pa.array(good)), files[good], step[good]


@dataclass
class _Wide:
    """Some lines of some files: a value column per metric."""

    files: np.ndarray  # int32, per line
    step: np.ndarray  # int64, per line
    no_step: np.ndarray  # bool, per line
    time: np.ndarray  # int64 nanoseconds, per line
    attempt: np.ndarray  # int64, per line; 0: not said
    values: np.ndarray  # float64, lines x metrics
    metrics: list[str]
    present: np.ndarray | None  # bool, lines x metrics, when a line lacks a metric


def _wide(table: pa.Table, files: np.ndarray, skipped: _Skipped) -> list[_Wide]:
    """A parsed table as a _Wide (none when it has no metric). The table's rows are its
    files' lines, in order (from `parse_lines`: only the good ones, steps checked)."""
    metrics = [n for n in table.column_names if n not in OWN_KEYS]
    if not metrics or table.num_rows == 0:
        return []
    table, files, step = _skip_bad_steps(table, files, skipped)
    values = np.empty((table.num_rows, len(metrics)))
    for index, name in enumerate(metrics):
        values[:, index] = _column(table, name)
    present = None
    if any(table[name].null_count for name in metrics):
        present = np.empty(values.shape, dtype=bool)
        for index, name in enumerate(metrics):
            present[:, index] = table[name].is_valid().to_numpy(zero_copy_only=False)
    no_step = np.isnan(step)
    steps = np.where(no_step, 0, step).astype(np.int64)
    time = _nanos(_column(table, "time"))
    return [_Wide(files, steps, no_step, time, _attempts(table), values, metrics, present)]


def _attempts(table: pa.Table) -> np.ndarray:
    """Each line's attempt; 0 where it is missing or not a whole number from 1 up."""
    attempt = _column(table, "attempt")
    with np.errstate(invalid="ignore"):
        good = (attempt >= 1) & (attempt < 2.0**31) & (np.floor(attempt) == attempt)
    return np.where(good, attempt, 0).astype(np.int64)


def _long(parts: Sequence[_Wide], skipped: _Skipped) -> Columns:
    """Wide lines -> long rows (a row per metric of a line), in line order, written
    straight into arrays of the final size."""
    names = list(dict.fromkeys(name for part in parts for name in part.metrics))
    codes = {name: code for code, name in enumerate(names)}
    sizes = [p.values.size if p.present is None else int(p.present.sum()) for p in parts]
    total = sum(sizes)
    out = Columns(
        file=np.empty(total, np.int32),
        step=np.empty(total, np.int64),
        no_step=np.empty(total, bool),
        time=np.empty(total, np.int64),
        attempt=np.empty(total, np.int64),
        name=np.empty(total, np.int32),
        value=np.empty(total, float),
        names=names,
        skipped=skipped,
    )
    start = 0
    for part, size in zip(parts, sizes, strict=True):
        lines, width = part.values.shape
        per_line = [
            (out.file, part.files),
            (out.step, part.step),
            (out.no_step, part.no_step),
            (out.time, part.time),
            (out.attempt, part.attempt),
        ]
        name_codes = np.array([codes[name] for name in part.metrics], dtype=np.int32)
        end = start + size
        if part.present is None:  # rows-by-metrics views of the output
            for column, array in per_line:
                column[start:end].reshape(lines, width)[:] = array[:, None]
            out.name[start:end].reshape(lines, width)[:] = name_codes
            out.value[start:end].reshape(lines, width)[:] = part.values
        else:
            keep = part.present.ravel()
            for column, array in per_line:
                column[start:end] = np.repeat(array, width)[keep]
            out.name[start:end] = np.tile(name_codes, lines)[keep]
            out.value[start:end] = part.values.ravel()[keep]
        start = end
    return out
