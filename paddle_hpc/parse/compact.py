"""A node's compact file: the rows of its text files, parsed where they were written.

When an attempt ends, each node of the run turns what it wrote into rows, with the
collector's own parsers, and writes them to `runs/<id>/collected-node<N>.arrow`:
node 0 its `metrics.jsonl`, every node its GPU samples and the
failures in its worker logs, and node 0 the metrics in global rank 0's log. Each
source is recorded with the fingerprint (size, mtime) it had when it was read. The
text files stay the source of truth: the collector takes a source's rows from here
only while that source's fingerprint is unchanged, and, for a worker log, while the
sweep reads logs as it did then (`collect.patterns`, `collect.parsers`); anything else
is read from the text, as is everything of a file that is missing or unreadable.

The file is an Arrow IPC stream of one record batch, of the same schema in every file
(`SCHEMA`, no metadata), followed by a JSON header (the sources, their fingerprints,
the metric names, the worker logs' rows) and its length, and `MAGIC`. Arrow's readers
read the stream and stop at its end. The collector does not open each file with
Arrow: it joins every file's batch to one stream, parsed in one call, which costs a
fraction of opening thousands of files one by one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import yaml

from paddle_hpc.core import layout
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.files import temp_beside
from paddle_hpc.parse import columns, jsonl
from paddle_hpc.parse.log_rows import LogRows, Reading, attempt_of, read_log, reading
from paddle_hpc.parse.worker_logs import Failure

log = logging.getLogger(__name__)
VERSION = 1
MAGIC = b"PHPCOMP\x01"
Fingerprint = tuple[int, int]  # size, mtime in ns
# the rows of the metrics files, as jsonl.Columns holds them
SCHEMA = pa.schema(
    [
        ("file", pa.int32()),
        ("step", pa.int64()),
        ("no_step", pa.uint8()),
        ("time", pa.int64()),
        ("attempt", pa.int64()),
        ("name", pa.int32()),
        ("value", pa.float64()),
    ]
)


def _stream(batches: Sequence[pa.RecordBatch]) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, SCHEMA) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the stream's end-of-stream marker
START = _stream([])[: -len(EOS)]  # the schema's message, which every file's stream begins with


class Unreadable(ValueError):
    """A compact file that cannot be used: not Arrow, another version, or damaged."""


@dataclass
class Compact:
    """A compact file as stored: the metrics files' rows (`batch`, its `file` indexing
    `sources`, its `name` indexing `names`), and each worker log's rows, with the
    fingerprint each source had when it was read."""

    sources: list[str]  # relative to the sweep directory
    prints: list[Fingerprint]
    names: list[str]
    skipped: dict[int, tuple[int, int]]  # file -> (lines skipped, the first one)
    rows_stored: int
    batch: bytes | memoryview  # its record batch's message in the stream
    stored_logs: dict[str, list[Any]]  # rel -> [size, mtime, attempt, metrics, failures]
    patterns: tuple[str, ...]  # collect.patterns and collect.parsers they were read with
    parsers: tuple[str, ...]

    @property
    def rows(self) -> jsonl.Columns:
        return rows_of([(self, range(len(self.sources)))])[0]

    def logs(self, wanted: Container[str], now: Mapping[str, Sequence[int]]) -> dict[str, LogRows]:
        """The rows of the worker logs that are `wanted` and have the fingerprint `now`
        says they have."""
        return {
            rel: LogRows(
                attempt,
                [(step, str(name), float(value)) for step, name, value in metrics],
                [Failure(int(n), kind, text, tb) for n, kind, text, tb in failures],
            )
            for rel, (size, mtime, attempt, metrics, failures) in self.stored_logs.items()
            if rel in wanted and list(now.get(rel, ())) == [size, mtime]
        }


def _stat(path: Path) -> Fingerprint | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def build(sweep_dir: Path, run_id: str, node: int, how: Reading | None) -> Compact:
    """Node `node`'s sources of the run, parsed; a source that changed while it was read
    is left out. `how` None: the worker logs are left out (the sweep's parsers cannot
    be imported here)."""
    run = layout.SweepDir(sweep_dir).run(run_id)
    base = layout.rel_run(run_id)
    names = ([layout.METRICS] if node == 0 else []) + [layout.gpu_samples(node)]
    found = [(f"{base}/{n}", p) for n in names if (p := _stat(run.path / n))]
    rows = jsonl.start(
        [f"{sweep_dir}/{rel}" for rel, _ in found], [p[0] for _, p in found]
    ).result()
    kept = [i for i, (rel, p) in enumerate(found) if _stat(sweep_dir / rel) == p]
    if len(kept) < len(found):
        rows = columns.only(rows, kept)
    logs = _logs(sweep_dir, run, base, node, how) if how else {}
    return Compact(
        [found[i][0] for i in kept],
        [found[i][1] for i in kept],
        rows.names,
        rows.skipped,
        len(rows.file),
        _stream([_batch(rows)])[len(START) : -len(EOS)],
        {
            rel: [*p, parsed.attempt, parsed.metrics, [_failure(f) for f in parsed.failures]]
            for rel, (p, parsed) in logs.items()
        },
        how.pattern_texts if how else (),
        how.parser_texts if how else (),
    )


def _logs(
    sweep_dir: Path, run: layout.RunDir, base: str, node: int, how: Reading
) -> dict[str, tuple[Fingerprint, LogRows]]:
    folder = run.node_logs(node)
    try:
        names = [path.name for path in folder.iterdir()]
        ranks = sorted(
            int(name.rsplit(".", 1)[1])
            for name in names
            if name.startswith(f"{layout.WORKER_LOG}.") and name.rsplit(".", 1)[1].isdigit()
        )
    except OSError:
        return {}
    attempt = attempt_of(folder / f"{layout.WORKER_LOG}.0")
    out = {}
    for rank in ranks:
        rel = f"{base}/{layout.LOGS}/node{node}/{layout.WORKER_LOG}.{rank}"
        path = sweep_dir / rel
        before = _stat(path)
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        if before is None or _stat(path) != before:
            continue
        out[rel] = before, read_log(text, rel, node == 0 and rank == 0, how, attempt)
    return out


def write(sweep_dir: Path, run_id: str, node: int) -> Path:
    """Builds node `node`'s compact file of the run and writes it atomically."""
    try:
        config = yaml.safe_load((sweep_dir / layout.CONFIG).read_text(encoding="utf-8"))
        how: Reading | None = reading(config if isinstance(config, dict) else {})
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        log.warning("run %s: its worker logs are left to the collector (%s)", run_id, exc)
        how = None
    compact = build(sweep_dir, run_id, node, how)
    path = layout.SweepDir(sweep_dir).run(run_id).compact(node)
    header = _header(compact)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(START + compact.batch + EOS)
            handle.write(header + len(header).to_bytes(8, "little") + MAGIC)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _header(compact: Compact) -> bytes:
    header = {
        "version": VERSION,
        "rows": compact.rows_stored,
        "sources": [[rel, *p] for rel, p in zip(compact.sources, compact.prints, strict=True)],
        "names": compact.names,
        "skipped": [[i, *v] for i, v in compact.skipped.items()],
        "logs": compact.stored_logs,
        "patterns": compact.patterns,
        "parsers": compact.parsers,
    }
    return json.dumps(header, separators=(",", ":")).encode()


def _failure(failure: Failure) -> list[Any]:
    return [failure.line, failure.kind, failure.message, failure.traceback]


def _batch(rows: jsonl.Columns) -> pa.RecordBatch:
    arrays = [
        rows.file,
        rows.step,
        rows.no_step.view(np.uint8),
        rows.time,
        rows.attempt,
        rows.name,
        rows.value,
    ]
    return pa.RecordBatch.from_arrays([pa.array(a) for a in arrays], schema=SCHEMA)


def read(path: str) -> Compact:
    """A compact file as stored; FileNotFoundError when there is none, Unreadable when
    it cannot be used. Its batch is checked when it is parsed (`rows_of`)."""
    fd = os.open(path, os.O_RDONLY)  # thousands per collect: the least calls
    try:
        data = os.read(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    tail = len(data) - len(MAGIC) - 8
    if tail < len(START) + len(EOS) or data[tail + 8 :] != MAGIC:
        raise Unreadable("not a compact file, or cut short")
    length = int.from_bytes(data[tail : tail + 8], "little")
    stream = memoryview(data)[: max(0, tail - length)]
    try:
        header = json.loads(data[tail - length : tail])
        if header["version"] != VERSION:
            raise Unreadable(f"version {header['version']}, not {VERSION}")
        if stream[: len(START)] != START or stream[-len(EOS) :] != EOS:
            raise Unreadable("its stream is not of a compact file's schema")
        return Compact(
            [str(rel) for rel, _, _ in header["sources"]],
            [(int(size), int(mtime)) for _, size, mtime in header["sources"]],
            [str(name) for name in header["names"]],
            {int(i): (int(count), int(first)) for i, count, first in header["skipped"]},
            int(header["rows"]),
            stream[len(START) : -len(EOS)],
            dict(header["logs"]),
            tuple(header["patterns"]),
            tuple(header["parsers"]),
        )
    except Unreadable:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise Unreadable(str(exc) or type(exc).__name__) from exc


def _parse(parts: Sequence[tuple[Compact, Sequence[int]]]) -> pa.Table | None:
    """The parts' batches as one table, a chunk per part; None when one is damaged."""
    stream = b"".join([START, *(c.batch for c, _ in parts), EOS])
    try:
        table = ipc.open_stream(pa.py_buffer(stream)).read_all()
    except (pa.ArrowException, ValueError):
        return None
    chunks = [len(chunk) for chunk in table.column(0).chunks]
    return table if chunks == [c.rows_stored for c, _ in parts] else None


def rows_of(parts: Sequence[tuple[Compact, Sequence[int]]]) -> tuple[jsonl.Columns, list[int]]:
    """The rows of some metrics files of several compact files, as one reading: of part
    k, the files parts[k][1] (ascending), numbered one after the other. Also the parts
    whose rows name a file or a metric they do not list (damaged), left out."""
    if not parts:
        return columns.empty(), []
    table = _parse(parts)
    if table is None:  # which one: each alone
        bad = [k for k, part in enumerate(parts) if _parse([part]) is None]
        return rows_of([p for k, p in enumerate(parts) if k not in bad])[0], bad
    counts = np.array([c.rows_stored for c, _ in parts], dtype=np.int64)
    sizes = np.array([len(c.sources) for c, _ in parts], dtype=np.int64)
    widths = np.array([len(c.names) for c, _ in parts], dtype=np.int64)
    local_file = np.asarray(table["file"].to_numpy(), dtype=np.int64)
    local_name = np.asarray(table["name"].to_numpy(), dtype=np.int64)
    wrong = (local_file >= np.repeat(sizes, counts)) | (local_name >= np.repeat(widths, counts))
    wrong |= (local_file < 0) | (local_name < 0)
    if wrong.any():
        bad = sorted(set(np.repeat(np.arange(len(parts)), counts)[wrong].tolist()))
        return rows_of([p for k, p in enumerate(parts) if k not in bad])[0], bad
    starts = np.cumsum(sizes) - sizes  # every listed file numbered, part after part
    renumber = np.full(int(sizes.sum()), -1, dtype=np.int32)
    wanted = [
        int(start) + i for start, (_, files) in zip(starts, parts, strict=True) for i in files
    ]
    renumber[wanted] = np.arange(len(wanted), dtype=np.int32)
    names, name_map, name_starts = columns.joint_names([c.names for c, _ in parts])
    out = jsonl.Columns(
        file=renumber[local_file + np.repeat(starts, counts)],
        step=table["step"].to_numpy(),
        no_step=table["no_step"].to_numpy().view(bool),
        time=table["time"].to_numpy(),
        attempt=table["attempt"].to_numpy(),
        name=name_map[local_name + np.repeat(name_starts, counts)],
        value=table["value"].to_numpy(),
        names=names,
        skipped={
            int(renumber[start + i]): value
            for start, (c, _) in zip(starts, parts, strict=True)
            for i, value in c.skipped.items()
            if renumber[start + i] >= 0
        },
    )
    keep = out.file >= 0
    if not keep.all():
        for column in ("file", "step", "no_step", "time", "attempt", "name", "value"):
            setattr(out, column, getattr(out, column)[keep])
    return out, []


def nodes(sources: Sequence[str]) -> list[int]:
    """The nodes whose compact files may hold any of a run's sources."""
    found = set()
    for rel in sources:
        name = rel.rsplit("/", 1)[-1]
        if name == layout.METRICS:
            found.add(0)
        elif name.startswith("gpu-node") and name.endswith(".jsonl"):
            found.add(int(name[len("gpu-node") : -len(".jsonl")]))
        elif (part := rel.rsplit("/", 2)[-2]).startswith("node") and part[4:].isdigit():
            found.add(int(part[4:]))
    return sorted(found)
