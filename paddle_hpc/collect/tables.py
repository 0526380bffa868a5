"""The tables' columns, and the runs and errors tables from the manifest, the runs'
state files and Slurm's records. `readers` turns the run files into metrics and
errors rows; `collector` decides which files to read and writes the tables.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from paddle_hpc.backend import run_status
from paddle_hpc.collect.gpu import from_samples, gpu_frame
from paddle_hpc.collect.usage import usage_frame
from paddle_hpc.core import layout, packing, runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.slurm import SacctRecord

log = logging.getLogger(__name__)
SLURM_FAILURES = {
    runstate.TIMEOUT: runstate.TIMEOUT,
    runstate.OUT_OF_MEMORY: "OOM",
    runstate.NODE_FAIL: runstate.NODE_FAIL,
    runstate.BOOT_FAIL: runstate.BOOT_FAIL,
    runstate.DEADLINE: runstate.DEADLINE,
    runstate.PREEMPTED: runstate.PREEMPTED,
}
METRIC_COLUMNS = ["run_id", "step", "name", "value", "time", "attempt", "source"]
# rank: the global rank (Paddle's PADDLE_TRAINER_ID); local_rank: N of workerlog.N
ERROR_COLUMNS = [
    "run_id",
    "node",
    "rank",
    "local_rank",
    "kind",
    "message",
    "log",
    "line",
    "traceback",
    "tail",  # without a traceback: the log's last lines (Slurm's own, or where it stalled)
]
TAIL_LINES = 15
TAIL_BYTES = 16_384


@dataclass
class Tables:
    runs: pd.DataFrame
    metrics: pd.DataFrame
    errors: pd.DataFrame


@dataclass
class Outcome:
    tables: Tables | None  # None when nothing changed since the last collect
    parsed: int  # files parsed this time
    skipped: dict[str, int] = field(default_factory=dict)  # what was skipped -> how many
    seconds: dict[str, float] = field(default_factory=dict)  # scan, read, tables, write
    workers: int = 1  # processes that read the changed files
    from_nodes: int = 0  # changed files whose rows came from the nodes' compact files


# Hydra's INT and FLOAT tokens without '_', inf and nan, which go to its parser (0.8 ms a
# value): a sweep's values are mostly plain numbers
_UNSIGNED = r"(?:0|[1-9][0-9]*)"
_INT = re.compile(rf"[+-]?{_UNSIGNED}")
_POINT = rf"(?:{_UNSIGNED}\.[0-9]*|\.[0-9]+)"
_EXPONENT = r"[eE][+-]?[0-9]+"
_FLOAT = re.compile(rf"[+-]?(?:{_POINT}(?:{_EXPONENT})?|{_UNSIGNED}{_EXPONENT})")


def typed(key: str, text: str) -> Any:
    """A swept value's text as the value Hydra gave it: '1e-3' -> 0.001, 'vit' -> 'vit'."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    try:
        return parse_override(f"{key.lstrip('+~')}={text}").value()
    except ConfigError:
        return text


def empty(columns: list[str]) -> pd.DataFrame:
    return cast(pd.DataFrame, pd.DataFrame({name: pd.Series(dtype=object) for name in columns}))


def log_tail(path: Path) -> str:
    """The last TAIL_LINES lines of a log, "" if it cannot be read."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-TAIL_LINES:])


def slurm_errors(
    sweep_dir: Path,
    manifest: Manifest,
    rows: Mapping[tuple[int, int], SacctRecord],
    logged: set[str],
    states: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """A row per run that Slurm ended for a reason of its own (TIMEOUT, OOM, ...), and per
    FAILED run whose worker logs name no error, with the end of its task's log. A packed
    trial's own state stands for its task's (one failing trial does not make its
    siblings' rows), and so does a run's OUT_OF_MEMORY (Slurm marks only the step)."""
    found = []
    for run in manifest.runs:
        record = (
            rows.get((run.job_id, run.array_task))
            if run.job_id is not None and run.array_task is not None
            else None
        )
        if record is None:
            continue
        state = record.state
        own = runstate.from_dict(states.get(run.run_id))
        if run.packed:
            state, _ = packing.trial_state(record.state, own, run.attempt)
        elif own is not None and own.state == runstate.OUT_OF_MEMORY:
            state = own.state  # Slurm marks only the step; the node counted the kills
        kind = SLURM_FAILURES.get(state)
        if kind is None and not (state == runstate.FAILED and run.run_id not in logged):
            continue
        err = f"slurm/{run.job_id}_{run.array_task}_0_log.err"
        tail = log_tail(sweep_dir / err)
        found.append(
            {
                "run_id": run.run_id,
                "node": None,
                "rank": None,
                "local_rank": None,
                "kind": kind or runstate.FAILED,
                "message": f"Slurm state {record.state_detail or record.state}, exit code "
                f"{record.exit_code}" + (f", signal {record.signal}" if record.signal else ""),
                "log": err if (sweep_dir / err).exists() else "",
                "line": None,
                "traceback": "",
                "tail": tail,
            }
        )
    frame: pd.DataFrame = pd.DataFrame(found, columns=ERROR_COLUMNS)
    return frame


def stall_errors(
    sweep_dir: Path, manifest: Manifest, states: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """A row per run a node's watchdog stopped: for want of output (STALLED,
    launch.stall_timeout) or of GPU work (IDLE, launch.idle_gpu_timeout), with the end
    of rank 0's worker log."""
    found = []
    for run in manifest.runs:
        reason = str(states.get(run.run_id, {}).get("reason") or "")
        if kind := runstate.stopped_by(reason):
            worker_log = layout.SweepDir(sweep_dir).run(run.run_id).worker_log(0, 0)
            found.append(
                {
                    "run_id": run.run_id,
                    "node": None,
                    "rank": None,
                    "local_rank": None,
                    "kind": kind,
                    "message": reason,
                    "log": str(worker_log.relative_to(sweep_dir)),
                    "line": None,
                    "traceback": "",
                    "tail": log_tail(worker_log),
                }
            )
    frame: pd.DataFrame = pd.DataFrame(found, columns=ERROR_COLUMNS)
    return frame


def swept_keys(runs: pd.DataFrame) -> list[str]:
    """The swept keys: the runs table's columns before `state`."""
    return list(runs.columns[: list(runs.columns).index("state")])


INT_COLUMNS = (
    "exit_code",
    "slurm_exit_code",
    "job_id",
    "array_task",
    "elapsed_s",
    "restarts",
    "attempts",
)
RUN_COLUMNS = (
    "state",
    "exit_code",
    "slurm_exit_code",
    "job_id",
    "array_task",
    "nodelist",
    "start",
    "end",
    "elapsed_s",
    "restarts",
    "attempts",
    "history",
    "reason",
)


def runs_frame(
    manifest: Manifest,
    rows: Mapping[tuple[int, int], SacctRecord],
    states: Mapping[str, Mapping[str, Any]],
    metrics: pd.DataFrame,
    runs_here: bool = False,
    allocations: Mapping[tuple[int, int], Sequence[SacctRecord]] | None = None,
) -> pd.DataFrame:
    """One row per run: its swept values, its state by the one rule (run_status), its
    task's accounting, what its allocations cost and used (`allocations`: each task's,
    slurm/charge.py), and its final metrics."""

    def task_row(run: RunEntry) -> SacctRecord | None:
        return rows.get((run.job_id, run.array_task or 0)) if run.job_id is not None else None

    waiting = frozenset(manifest.feed.run_ids if manifest.feed else ())
    found = [
        run_row(r, task_row(r), states.get(r.run_id), runs_here, r.run_id in waiting)
        for r in manifest.runs
    ]
    index = pd.Index([r.run_id for r in manifest.runs], name="run_id")
    swept = {
        key: [typed(key, r.swept[key]) if key in r.swept else None for r in manifest.runs]
        for key in manifest.axes
    }
    frame = pd.DataFrame({k: pd.Series(v, index=index) for k, v in swept.items()}, index=index)
    column = {key: [row[key] for row in found] for key in RUN_COLUMNS}
    for key in RUN_COLUMNS:
        if key in INT_COLUMNS:
            frame[key] = pd.array(column[key], dtype="Int64")
        elif key in ("start", "end"):
            frame[key] = pd.to_datetime(pd.Series(column[key], index=index, dtype=object))
        elif key in ("reason", "history"):
            frame[key] = pd.Series(column[key], index=index, dtype=object)
        else:
            frame[key] = column[key]
    frame = frame.join(usage_frame(manifest, allocations or {})).join(gpu_frame(metrics))
    joined: pd.DataFrame = frame.join(finals(metrics), how="left")
    search = manifest.extra.get("search")
    if search:  # a search's runs: their trials' states in the study (search/driver.py)
        objective = joined.get(search["objective"], pd.Series(np.nan, index=joined.index))
        joined.insert(
            list(joined.columns).index("state") + 1,
            "trial_state",
            [
                runstate.study_state(state, state in runstate.ENDED, float(value))
                for state, value in zip(joined["state"], objective, strict=True)
            ],
        )
    return joined


def run_row(
    run: RunEntry,
    record: SacctRecord | None,
    saved: Mapping[str, Any] | None,
    runs_here: bool,
    waiting: bool = False,
) -> dict[str, Any]:
    """A run's row of the runs table, but for its swept values and final metrics."""
    own = runstate.from_dict(saved) if saved else None
    status = run_status(run, record, own, runs_here, waiting)
    start, end = (record.start, record.end) if record is not None else (None, None)
    if record is not None and run.packed:  # the trial's own times, not its task's
        mine = own if own is not None and own.attempt >= run.attempt else None
        start = packing.local_time(mine.started) if mine else None
        end = (
            packing.local_time(mine.time) if mine and status.state in runstate.SLURM_ENDED else None
        )
    return {
        "state": status.state,
        "exit_code": own.returncode if own else None,
        "slurm_exit_code": record.exit_code if record is not None else None,
        "job_id": run.job_id,
        "array_task": run.array_task,
        "nodelist": ",".join(status.nodes),
        "start": start,
        "end": end,
        "elapsed_s": status.elapsed_s,
        "restarts": saved.get("restarts", 0) if saved else None,
        "attempts": max(run.attempt, own.attempt) if own else run.attempt,
        "history": ", ".join(own.history) if own and own.history else None,
        "reason": own.reason if own else None,
    }


def finals(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last logged value of each metric per run, as `final.<name>` (`final.loss`,
    `final.eval.acc`), NaN included (a diverged loss); a suite's own best values as
    `best.<name>` (`best.eval.acc`). metrics.jsonl wins over what a worker log says.
    The nodes' GPU samples (`sys.`) have columns of their own (collect/gpu.py)."""
    if (sampled := from_samples(metrics)).any():
        metrics = cast(pd.DataFrame, metrics[~sampled])
    if metrics.empty:
        return empty([])
    runs = metrics["run_id"].astype("category").cat
    names = metrics["name"].astype("category").cat
    sources = metrics["source"].astype("category").cat
    jsonl_codes = [i for i, name in enumerate(sources.categories) if str(name).endswith(".jsonl")]
    shape = (len(runs.categories), len(names.categories))
    cell = runs.codes.to_numpy(np.int64) * shape[1] + names.codes.to_numpy(np.int64)
    # each cell's last row, every metrics.jsonl row ranked after every worker log's
    rows = len(cell)
    rank = np.arange(rows) + rows * np.isin(sources.codes.to_numpy(), jsonl_codes)
    last = np.full(shape[0] * shape[1], -1)
    np.maximum.at(last, cell, rank)
    found = last >= 0
    values = np.full(last.shape, np.nan)
    values[found] = metrics["value"].to_numpy(float)[last[found] % rows]
    table = pd.DataFrame(
        values.reshape(shape),
        index=pd.Index(runs.categories.astype(str), name="run_id"),
        columns=[str(name) for name in names.categories],
    )
    logged = found.reshape(shape)
    table = cast(pd.DataFrame, table.loc[logged.any(axis=1), logged.any(axis=0)]).sort_index(axis=1)
    table.columns = [
        name if name.startswith("best.") else f"final.{name}" for name in table.columns
    ]
    return cast(pd.DataFrame, table)
