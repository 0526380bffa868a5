"""`collect(SWEEP_DIR)`: parse what changed, rebuild the tables, write them atomically.

Incremental: `results/collect.json` keeps each source file's fingerprint (size and
mtime). A file whose fingerprint has not changed is not parsed again: its rows are
taken from the tables written last time (each row names its `source` file). With
nothing changed, nothing is parsed or written. Tables are written atomically (temp
file, then rename), so collectors running at once each leave valid files.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from paddle_hpc.backend import backend_for
from paddle_hpc.collect import accounting, check, reading, sources, spread
from paddle_hpc.collect.readers import base_config, jsonl_metrics, looked_into
from paddle_hpc.collect.results import (
    NAMES,
    RESULTS,
    STATE_FILE,
    VERSION,
    read_table,
    table_path,
    writer,
)
from paddle_hpc.collect.sources import Fingerprint
from paddle_hpc.collect.steps import with_steps
from paddle_hpc.collect.tables import (
    ERROR_COLUMNS,
    METRIC_COLUMNS,
    Outcome,
    Tables,
    empty,
    runs_frame,
    slurm_errors,
    stall_errors,
)
from paddle_hpc.core import runstate
from paddle_hpc.core.files import write_atomic
from paddle_hpc.core.layout import CONFIG, MANIFEST, STATE, rel_run
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.manifest import load as load_manifest
from paddle_hpc.parse import columns
from paddle_hpc.slurm import SacctRecord, SlurmClient
from paddle_hpc.slurm.parse import task_rows

log = logging.getLogger(__name__)
COMPACT: dict[str, Any] = {"separators": (",", ":")}


def previous_state(out: Path, fmt: str) -> tuple[dict[str, Any] | None, Fingerprint | None]:
    """What the last collect saved, and the fingerprint of the file it was read from."""
    try:
        with (out / STATE_FILE).open("rb") as handle:
            stat = os.fstat(handle.fileno())
            state = json.loads(handle.read())
    except (OSError, ValueError):
        return None, None
    ok = (
        isinstance(state, dict)
        and state.get("version") == VERSION
        and state.get("format") == fmt
        and all(table_path(out, name, fmt).exists() for name in NAMES)
    )
    return (state, (stat.st_size, stat.st_mtime_ns)) if ok else (None, None)


@dataclass
class Scan:
    """What a collect sees before parsing anything: enough to tell whether anything changed."""

    state: dict[str, Any] | None  # what the last collect saved
    manifest: Manifest | None  # None when unchanged since the last collect (not read)
    run_ids: list[str]
    executor: str
    records: list[SacctRecord] | None  # None when sacct was not asked
    runs: list[sources.RunFiles]
    files: dict[str, list[int]]  # relative path -> [size, mtime]
    inputs: dict[str, list[int] | None]  # manifest, sacct.txt, config.yaml -> fingerprint
    found: sources.Found
    state_print: Fingerprint | None  # of the state file, as read

    @property
    def unchanged(self) -> bool:
        return (
            self.state is not None
            and self.state["files"] == self.files
            and self.state["inputs"] == self.inputs
        )


def scan(
    sweep_dir: Path, out: Path, fmt: str, client: SlurmClient | None, max_age: float = 0.0
) -> Scan:
    state, state_print = previous_state(out, fmt)
    manifest_print = sources.fingerprint(sweep_dir / MANIFEST)
    manifest: Manifest | None = None
    if state is not None and state["inputs"][MANIFEST] == list(manifest_print or ()):
        run_ids, executor = state["run_ids"], state["executor"]  # no need to read it again
    else:
        manifest = load_manifest(sweep_dir)
        run_ids, executor = [r.run_id for r in manifest.runs], manifest.executor
    records = None
    if backend_for(executor).accounted and not (state and state.get("final") and manifest is None):
        manifest = manifest or load_manifest(sweep_dir)
        records = accounting.refresh(sweep_dir, manifest, client or SlurmClient(), max_age)
    found = sources.find(
        sweep_dir,
        run_ids,
        state.get("listings") if state else None,
        ended(state) if state else None,
        state["files"] if state else None,
        *looked_into(base_config(sweep_dir)),
    )
    inputs = {
        name: list(fp) if (fp := sources.fingerprint(sweep_dir / name)) else None
        for name in (accounting.SACCT_FILE, accounting.STEPS_FILE, CONFIG)
    }
    # as seen before it was read: a manifest written meanwhile is read again next time
    inputs = {MANIFEST: list(manifest_print) if manifest_print else None, **inputs}
    files = {rel: list(fp) for rel, fp in found.prints.items()}
    return Scan(
        state, manifest, run_ids, executor, records, found.runs, files, inputs, found, state_print
    )


def collect(
    sweep_dir: Path,
    out: Path | None = None,
    fmt: str = "parquet",
    client: SlurmClient | None = None,
    max_age: float = 0.0,
    workers: int | None = None,
) -> Outcome:
    """Brings the sweep's tables up to date; parses only files that changed, on up to
    `workers` cores (all this process may use when None)."""
    with _cycles_left_for_later():
        return _collect(sweep_dir, out, fmt, client, max_age, workers)


@contextlib.contextmanager
def _cycles_left_for_later() -> Iterator[None]:
    """Python's cycle collector paused: a collect makes an object or more per file and
    row group, none of them in cycles, and the collector's passes over them all took a
    fifth of a collect of 10,000 runs."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _collect(
    sweep_dir: Path,
    out: Path | None,
    fmt: str,
    client: SlurmClient | None,
    max_age: float,
    workers: int | None,
) -> Outcome:
    sweep_dir = sweep_dir.resolve()
    out = (out or sweep_dir / RESULTS).resolve()
    if check.unchanged(sweep_dir, out, fmt):
        return Outcome(None, 0)
    clock = _Clock()
    seen = scan(sweep_dir, out, fmt, client, max_age)
    state = seen.state
    if seen.unchanged:
        assert state is not None
        _keep(sweep_dir, out, fmt, seen, state)
        return Outcome(None, 0)

    manifest = seen.manifest or load_manifest(sweep_dir)
    backend = backend_for(seen.executor)
    records = seen.records
    if records is None:
        records = accounting.saved(sweep_dir) if backend.accounted else []
    incremental = (
        state is not None and fmt == "parquet" and state["inputs"][CONFIG] == seen.inputs[CONFIG]
    )
    before: dict[str, Any] = state["files"] if state and incremental else {}
    changed = {rel for rel, fp in seen.files.items() if before.get(rel) != fp}
    stale = changed | (set(before) - set(seen.files))
    skipped = _not_started(seen.runs)
    previous = (out, fmt, stale) if incremental else None
    states = dict(state.get("states", {})) if state and incremental else {}
    clock.lap("scan")
    work = spread.chunks(seen.runs, changed, seen.files, workers or spread.cores())
    metrics, error_parts, nodes = _read(sweep_dir, seen, changed, previous, states, skipped, work)
    clock.lap("read")

    out.mkdir(parents=True, exist_ok=True)
    # the largest table is written in a second thread while the others are built
    background = ThreadPoolExecutor(1, thread_name_prefix="paddle-hpc-write")
    metrics_written = background.submit(writer(metrics, table_path(out, "metrics", fmt), fmt))
    background.shutdown(wait=False)
    rows, used = task_rows(records), accounting.allocations(sweep_dir, records)
    errors = _errors(sweep_dir, manifest, rows, states, error_parts)
    runs = runs_frame(manifest, rows, states, metrics, backend.runs_here, used)
    tables = Tables(with_steps(runs, sweep_dir, manifest, rows), metrics, errors)
    clock.lap("tables")
    for name in ("runs", "errors"):
        writer(getattr(tables, name), table_path(out, name, fmt), fmt)()
    metrics_written.result()
    # every run's Slurm state is final: sacct need not be asked again
    final = backend.accounted and accounting.is_final(manifest, records)
    _save_state(out, fmt, seen, states, final)
    written = [table_path(out, name, fmt) for name in NAMES] + [out / STATE_FILE]
    save_check(sweep_dir, out, fmt, seen, states, final, written)
    clock.lap("write")
    return Outcome(tables, len(changed), skipped, clock.laps, len(work), nodes)


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.last = now - self.last, now


def _not_started(runs: list[sources.RunFiles]) -> dict[str, int]:
    """What was skipped: the runs that have written nothing yet."""
    count = sum(1 for r in runs if not r.metrics and not r.state and not r.worker_logs)
    if count:
        log.warning("%d run(s) have written nothing yet; skipped", count)
    return {"runs not started": count} if count else {}


def _keep(sweep_dir: Path, out: Path, fmt: str, seen: Scan, state: dict[str, Any]) -> None:
    """Nothing to parse: the tables stand; what was listed anew is kept for next time."""
    written = [table_path(out, name, fmt) for name in NAMES]
    as_read: dict[str, Fingerprint | None] = {}
    if seen.found.listings != state.get("listings"):  # folders listed again; keep that
        new_state = state | {"listings": seen.found.listings}
        write_atomic(out / STATE_FILE, json.dumps(new_state, **COMPACT))
        written.append(out / STATE_FILE)
    else:  # as read: a collect that writes it meanwhile is noticed next time
        as_read[os.path.relpath(out / STATE_FILE, sweep_dir)] = seen.state_print
    final = bool(state.get("final"))
    save_check(sweep_dir, out, fmt, seen, state.get("states", {}), final, written, as_read)


def _read(
    sweep_dir: Path,
    seen: Scan,
    changed: set[str],
    previous: tuple[Path, str, set[str]] | None,
    states: dict[str, Any],
    skipped: dict[str, int],
    chunks: list[list[sources.RunFiles]],
) -> tuple[pd.DataFrame, list[pd.DataFrame], int]:
    """The metrics table and the parts of the errors table from the changed files (and,
    collecting incrementally, the rows of the tables `previous` wrote from the files
    not `stale` since); the runs' state files read into `states`. The chunks of runs
    are read at once, each by a process of its own."""
    config = base_config(sweep_dir)
    work = []
    for runs in chunks:
        paths = {rel for run in runs for rel in spread.run_paths(run)}
        files = {rel: seen.files[rel] for rel in paths}
        work.append(reading.Chunk(runs, changed & paths, files, config))
    parts = spread.spread(partial(reading.read_runs, sweep_dir), work)
    picked = [found for part in parts for found in part.picked]
    starts = np.cumsum([0] + [len(part.picked) for part in parts])[:-1]
    numbered = [(p.rows, range(a, a + len(p.picked))) for p, a in zip(parts, starts, strict=True)]
    rows = parts[0].rows if len(parts) == 1 else columns.merge(numbered)
    for part in parts:
        states |= part.states
        for what, count in part.skipped.items():
            skipped[what] = skipped.get(what, 0) + count
    metric_parts = [jsonl_metrics(picked, rows, skipped)]
    metric_parts += [p.log_metrics for p in parts] + [p.visualdl for p in parts]
    error_parts = [p.log_errors for p in parts]
    if previous is not None:
        out, fmt, stale = previous
        old_metrics = read_table(table_path(out, "metrics", fmt), fmt)
        metric_parts.insert(0, old_metrics[~old_metrics["source"].isin(stale)])
        old_errors = read_table(table_path(out, "errors", fmt), fmt)
        from_logs = old_errors["node"].notna() & ~old_errors["log"].isin(stale)
        error_parts.insert(0, old_errors[from_logs])
    metrics = concat(metric_parts, METRIC_COLUMNS)
    for column in ("run_id", "name", "source"):
        metrics[column] = metrics[column].astype("category")
    return metrics, error_parts, sum(part.from_nodes for part in parts)


def _errors(
    sweep_dir: Path,
    manifest: Manifest,
    rows: dict[tuple[int, int], SacctRecord],
    states: dict[str, Any],
    error_parts: list[pd.DataFrame],
) -> pd.DataFrame:
    """The errors table: the logs' tracebacks, the stalls, and what Slurm says of the
    runs that failed without either."""
    log_errors = concat(error_parts, ERROR_COLUMNS)
    stalled = stall_errors(sweep_dir, manifest, states)
    explained = set(log_errors["run_id"].astype(str)) | set(stalled["run_id"])
    errors = concat(
        [log_errors, stalled, slurm_errors(sweep_dir, manifest, rows, explained, states)],
        ERROR_COLUMNS,
    )
    for column in ("node", "rank", "local_rank", "line"):
        errors[column] = errors[column].astype("Int64")
    errors["tail"] = errors["tail"].astype(object).fillna("")  # a traceback's row has none
    return errors


def _save_state(out: Path, fmt: str, seen: Scan, states: dict[str, Any], final: bool) -> None:
    """What the next collect starts from."""
    saved = {
        "version": VERSION,
        "format": fmt,
        "files": seen.files,
        "inputs": seen.inputs,
        "listings": seen.found.listings,
        "states": states,
        "run_ids": seen.run_ids,
        "executor": seen.executor,
        "final": final,
    }
    write_atomic(out / STATE_FILE, json.dumps(saved, **COMPACT))


def save_check(
    sweep_dir: Path,
    out: Path,
    fmt: str,
    seen: Scan,
    states: dict[str, Any],
    final: bool,
    written: list[Path],
    as_read: dict[str, Fingerprint | None] | None = None,
) -> None:
    """Saves the quick check for the next collect when its answer would be sound. The
    next collect does not look at the log folders of runs that have ended (see
    sources.find), so neither does the check, nor does it mind their listings."""
    ended_runs = {run_id for run_id, s in states.items() if s.get("state") in runstate.LOGS_FINAL}
    if (backend_for(seen.executor).accounted and not final) or seen.found.unsettled - ended_runs:
        check.discard(out)
        return
    paths = dict(seen.found.looked)
    for run_id, logs in seen.found.looked_logs.items():
        if run_id not in ended_runs:
            paths |= logs
    paths |= {name: (fp[0], fp[1]) if fp else None for name, fp in seen.inputs.items()}
    check.save(sweep_dir, out, fmt, paths | (as_read or {}), written)


def ended(state: dict[str, Any]) -> dict[str, list[int]]:
    """Runs whose last collected state.json said they had ended -> that file's fingerprint."""
    return {
        run_id: state["files"][rel]
        for run_id, run_state in state.get("states", {}).items()
        if run_state.get("state") in runstate.LOGS_FINAL
        and (rel := f"{rel_run(run_id)}/{STATE}") in state["files"]
    }


def concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [part for part in parts if not part.empty]
    if not parts:
        return empty(columns)
    return cast(pd.DataFrame, pd.concat(parts, ignore_index=True)[columns])


def load(sweep_dir: Path | str, out: Path | None = None, max_age: float = 0.0) -> Tables:
    """The sweep's runs, metrics and errors tables, collected first if anything changed."""
    sweep_dir = Path(sweep_dir)
    outcome = collect(sweep_dir, out, max_age=max_age)
    if outcome.tables is not None:
        return outcome.tables
    out = (out or sweep_dir / RESULTS).resolve()
    return Tables(*(read_table(table_path(out, name, "parquet"), "parquet") for name in NAMES))
