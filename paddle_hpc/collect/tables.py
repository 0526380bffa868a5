"""The runs, metrics and errors DataFrames, from a sweep's parsed files and accounting.

Each source file is read by its own parser (`jsonl`, `logs`); this module turns what
they return into the tables' rows, and the manifest plus Slurm's records into the
runs table. `collector` decides which files to read and writes the tables.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import yaml

from paddle_hpc.backend import ENDED_STATES, TERMINAL_STATES, run_status
from paddle_hpc.collect import jsonl, sources
from paddle_hpc.collect import worker_logs as logs
from paddle_hpc.core import layout, packing, runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.metrics import whole_step
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.slurm import SacctRecord

log = logging.getLogger(__name__)
RESULTS = layout.RESULTS
STATE_FILE = "collect.json"
VERSION = 4
NAMES = ("runs", "metrics", "errors")
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
]


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


LineParser = Callable[[str], "Mapping[str, float] | None"]


def user_patterns(config: Mapping[str, Any]) -> list[re.Pattern[str]]:
    texts = config.get("collect", {}).get("patterns", [])
    try:
        return [re.compile(text) for text in texts]
    except re.error as exc:
        raise ConfigError(f"collect.patterns: {exc.pattern!r} is not a regex: {exc}") from exc


def user_parsers(config: Mapping[str, Any]) -> list[LineParser]:
    """collect.parsers: 'package.module:function', called with each log line."""
    parsers = []
    for text in config.get("collect", {}).get("parsers", []):
        module, _, name = text.partition(":")
        try:
            parsers.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"collect.parsers: cannot import {text!r} ({exc}); give 'package.module:function'."
            ) from exc
    return parsers


def base_config(sweep_dir: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load((sweep_dir / layout.CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


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


def metrics_frame(run_ids: Sequence[str], rels: Sequence[str], cols: jsonl.Columns) -> pd.DataFrame:
    """Rows read from metrics files; file i is run_ids[i]'s, at rels[i]."""
    codes = cols.file
    frame = pd.DataFrame(
        {
            "run_id": pd.Categorical.from_codes(codes, categories=pd.Index(run_ids)),
            "step": pd.arrays.IntegerArray(cols.step, cols.no_step),
            "name": pd.Categorical.from_codes(cols.name, categories=pd.Index(cols.names)),
            "value": cols.value,
            "time": pd.Series(cols.time.view("datetime64[ns]")).dt.tz_localize("UTC"),
            "attempt": pd.arrays.IntegerArray(cols.attempt, cols.attempt == 0),
            "source": pd.Categorical.from_codes(codes, categories=pd.Index(rels)),
        }
    )
    return cast(pd.DataFrame, frame)


def empty(columns: list[str]) -> pd.DataFrame:
    return cast(pd.DataFrame, pd.DataFrame({name: pd.Series(dtype=object) for name in columns}))


def start_jsonl_metrics(
    sweep_dir: Path, runs: Sequence[sources.RunFiles], changed: set[str], sizes: Mapping[str, int]
) -> tuple[list[tuple[str, str]], jsonl.Reading]:
    """The changed metrics files, as (run id, relative path), and their reading, begun."""
    picked = [(r.run_id, r.metrics) for r in runs if r.metrics and r.metrics in changed]
    root = str(sweep_dir)
    reading = jsonl.start([f"{root}/{rel}" for _, rel in picked], [sizes[rel] for _, rel in picked])
    return picked, reading


def jsonl_metrics(
    picked: Sequence[tuple[str, str]], cols: jsonl.Columns, skipped: dict[str, int]
) -> pd.DataFrame:
    """The rows read from the picked metrics files; bad lines counted in `skipped`."""
    if not picked:
        return empty(METRIC_COLUMNS)
    for index, (count, first) in cols.skipped.items():
        if count:
            log.warning(
                "%s: %d bad or truncated line(s) skipped (first: line %d)",
                picked[index][1],
                count,
                first,
            )
            skipped["bad metric lines"] = skipped.get("bad metric lines", 0) + count
    return metrics_frame([run_id for run_id, _ in picked], [rel for _, rel in picked], cols)


def read_log_metrics(
    sweep_dir: Path,
    runs: Sequence[sources.RunFiles],
    changed: set[str],
    patterns: Sequence[re.Pattern[str]],
    parsers: Sequence[LineParser],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics from global rank 0's worker log, and failures from every worker log."""
    metric_rows: list[dict[str, Any]] = []
    error_rows: list[dict[str, Any]] = []
    for run in runs:
        ranks = global_ranks(run.worker_logs)
        for rel, node, rank in run.worker_logs:
            if rel not in changed:
                continue
            try:
                text = sources.read(f"{sweep_dir}/{rel}").decode("utf-8", errors="replace")
            except OSError as exc:
                log.warning("%s: cannot read (%s); skipped", rel, exc)
                continue
            lines = text.splitlines(keepends=True)
            for failure in logs.failures(lines):
                error_rows.append(
                    {
                        "run_id": run.run_id,
                        "node": node,
                        "rank": ranks[node, rank],
                        "local_rank": rank,
                        "kind": failure.kind,
                        "message": failure.message,
                        "log": rel,
                        "line": failure.line,
                        "traceback": failure.traceback,
                    }
                )
            if node != 0 or rank != 0:
                continue
            found = [(row.step, row.name, row.value) for row in logs.log_metrics(lines, patterns)]
            found += user_metrics(parsers, lines, rel)
            if not found:
                continue
            attempt = attempt_of(sweep_dir / rel)
            metric_rows.extend(
                {
                    "run_id": run.run_id,
                    "step": step,
                    "name": name,
                    "value": value,
                    "attempt": attempt,
                    "source": rel,
                }
                for step, name, value in found
            )
    columns = ["run_id", "step", "name", "value", "attempt", "source"]
    metrics = pd.DataFrame(metric_rows, columns=columns)
    for column in ("step", "attempt"):
        metrics[column] = metrics[column].astype("Int64")
    metrics["value"] = metrics["value"].astype(float)
    metrics["time"] = pd.Series(pd.NaT, index=metrics.index, dtype="datetime64[ns, UTC]")
    return metrics[METRIC_COLUMNS], pd.DataFrame(error_rows, columns=ERROR_COLUMNS)


def visualdl_folders(config: Mapping[str, Any]) -> list[str]:
    """collect.visualdl: the folders, relative to a run's, that hold its VisualDL logs."""
    collect = config.get("collect") or {}
    return [str(f).strip("/") for f in collect.get("visualdl", ["visualdl"]) or []]


def read_visualdl_metrics(
    sweep_dir: Path,
    runs: Sequence[sources.RunFiles],
    changed: set[str],
    skipped: dict[str, int],
) -> pd.DataFrame:
    """The scalars of the VisualDL logs that changed, read with VisualDL's own reader:
    each tag a metric, each record's id its step and its timestamp the time."""
    wanted = [(run.run_id, rel) for run in runs for rel in run.visualdl if rel in changed]
    if not wanted:
        return empty(METRIC_COLUMNS)
    try:
        from visualdl import LogReader  # type: ignore[import-untyped]
    except ImportError:
        log.warning("%d VisualDL log(s) skipped: pip install visualdl to read them", len(wanted))
        skipped["VisualDL logs (no visualdl)"] = len(wanted)
        return empty(METRIC_COLUMNS)
    rows: list[tuple[str, int, str, float, int, str]] = []
    for run_id, rel in wanted:
        try:
            reader = LogReader(file_path=f"{sweep_dir}/{rel}")
            for tag in reader.get_tags().get("scalar", []):
                for record in reader.get_data("scalar", tag):
                    rows.append((run_id, record.id, tag, record.value, record.timestamp, rel))
        except Exception as exc:
            log.warning("%s: VisualDL cannot read it (%r); skipped", rel, exc)
            skipped["unreadable VisualDL logs"] = skipped.get("unreadable VisualDL logs", 0) + 1
    frame = pd.DataFrame(rows, columns=["run_id", "step", "name", "value", "time", "source"])
    frame["step"] = frame["step"].astype("Int64")
    frame["value"] = frame["value"].astype(float)
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    frame["attempt"] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    picked: pd.DataFrame = frame[METRIC_COLUMNS]
    return picked


def attempt_of(log: Path) -> int | None:
    """The attempt that wrote a worker log: its folder's mark, which the node writes."""
    try:
        return int((log.parent / layout.ATTEMPT_MARK).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def global_ranks(worker_logs: Sequence[tuple[str, int, int]]) -> dict[tuple[int, int], int]:
    """(node, local rank) -> global rank: paddle.distributed.launch numbers the ranks node
    by node, each node's local ranks in order."""
    pairs = sorted({(node, rank) for _, node, rank in worker_logs})
    return {pair: index for index, pair in enumerate(pairs)}


def user_metrics(
    parsers: Sequence[LineParser], lines: Sequence[str], rel: str
) -> list[tuple[int | None, str, float]]:
    """What the user's parsers find in the lines. A parser that raises, or returns a value
    that is not a number or a step that is not a whole number, is skipped for this file
    with a warning."""
    found: list[tuple[int | None, str, float]] = []
    for parser in parsers:
        rows: list[tuple[int | None, str, float]] = []
        try:
            for line in lines:
                values = dict(parser(line) or {})
                step = whole_step(values.pop("step", None))
                rows.extend((step, str(name), float(value)) for name, value in values.items())
        except Exception as exc:
            log.warning("%s: collect.parsers %r failed (%r); skipped", rel, parser, exc)
        else:
            found += rows
    return found


def slurm_errors(
    sweep_dir: Path,
    manifest: Manifest,
    rows: Mapping[tuple[int, int], SacctRecord],
    logged: set[str],
    states: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """A row per run that Slurm ended for a reason of its own (TIMEOUT, OOM, ...), and per
    FAILED run whose worker logs name no error. A packed trial's own state stands for
    its task's: one failing trial does not make its siblings' rows."""
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
        if run.packed:
            own = runstate.from_dict(states.get(run.run_id))
            state, _ = packing.trial_state(record.state, own, run.attempt)
        kind = SLURM_FAILURES.get(state)
        if kind is None and not (state == runstate.FAILED and run.run_id not in logged):
            continue
        err = f"slurm/{run.job_id}_{run.array_task}_0_log.err"
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
            }
        )
    frame: pd.DataFrame = pd.DataFrame(found, columns=ERROR_COLUMNS)
    return frame


def stall_errors(manifest: Manifest, states: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A row per run whose node stopped it for want of output (launch.stall_timeout)."""
    found = []
    for run in manifest.runs:
        reason = str(states.get(run.run_id, {}).get("reason") or "")
        if reason.startswith(runstate.STALLED):
            found.append(
                {
                    "run_id": run.run_id,
                    "node": None,
                    "rank": None,
                    "local_rank": None,
                    "kind": runstate.STALLED,
                    "message": reason,
                    "log": "",
                    "line": None,
                    "traceback": "",
                }
            )
    frame: pd.DataFrame = pd.DataFrame(found, columns=ERROR_COLUMNS)
    return frame


def swept_keys(runs: pd.DataFrame) -> list[str]:
    """The swept keys: the runs table's columns before `state`."""
    return list(runs.columns[: list(runs.columns).index("state")])


def runs_frame(
    manifest: Manifest,
    rows: Mapping[tuple[int, int], SacctRecord],
    states: Mapping[str, Mapping[str, Any]],
    metrics: pd.DataFrame,
    runs_here: bool = False,
) -> pd.DataFrame:
    """One row per run: its swept values, its state by the one rule (run_status), its
    task's accounting and its final metrics."""
    data: dict[str, list[Any]] = {key: [] for key in manifest.axes}
    slurm: dict[str, list[Any]] = {
        key: []
        for key in ("state", "slurm_exit_code", "job_id", "array_task", "nodelist", "start", "end")
    } | {key: [] for key in ("elapsed_s", "restarts", "attempts", "exit_code", "reason", "history")}
    for run in manifest.runs:
        for key in manifest.axes:
            data[key].append(typed(key, run.swept[key]) if key in run.swept else None)
        state = states.get(run.run_id, {})
        own = runstate.from_dict(state) if state else None
        record = (
            rows.get((run.job_id, run.array_task))
            if run.job_id is not None and run.array_task is not None
            else None
        )
        status = run_status(run, record, own, runs_here)
        start, end = (record.start, record.end) if record is not None else (None, None)
        if record is not None and run.packed:  # the trial's own times, not its task's
            mine = own if own is not None and own.attempt >= run.attempt else None
            start = packing.local_time(mine.started) if mine else None
            ended = status.state in TERMINAL_STATES
            end = packing.local_time(mine.time) if mine and ended else None
        values = [
            status.state,
            record.exit_code if record is not None else None,
            ",".join(status.nodes),
            start,
            end,
            status.elapsed_s,
        ]
        for key, value in zip(
            ("state", "slurm_exit_code", "nodelist", "start", "end", "elapsed_s"),
            values,
            strict=True,
        ):
            slurm[key].append(value)
        slurm["exit_code"].append(own.returncode if own else None)
        slurm["reason"].append(own.reason if own else None)
        slurm["history"].append(", ".join(own.history) if own and own.history else None)
        slurm["job_id"].append(run.job_id)
        slurm["array_task"].append(run.array_task)
        slurm["restarts"].append(state.get("restarts", 0 if state else None))
        slurm["attempts"].append(max(run.attempt, own.attempt) if own else run.attempt)
    index = pd.Index([r.run_id for r in manifest.runs], name="run_id")
    frame = pd.DataFrame({k: pd.Series(v, index=index) for k, v in data.items()}, index=index)
    for key in (
        "exit_code",
        "slurm_exit_code",
        "job_id",
        "array_task",
        "elapsed_s",
        "restarts",
        "attempts",
    ):
        frame[key] = pd.array(slurm[key], dtype="Int64")
    frame["state"] = slurm["state"]
    frame["nodelist"] = slurm["nodelist"]
    for key in ("reason", "history"):
        frame[key] = pd.Series(slurm[key], index=index, dtype=object)
    frame["start"] = pd.to_datetime(pd.Series(slurm["start"], index=index, dtype=object))
    frame["end"] = pd.to_datetime(pd.Series(slurm["end"], index=index, dtype=object))
    frame = frame[
        [
            *manifest.axes,
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
        ]
    ]
    joined: pd.DataFrame = frame.join(finals(metrics), how="left")
    search = manifest.extra.get("search")
    if search:  # a search's runs: their trials' states in the study (search/driver.py)
        objective = joined.get(search["objective"], pd.Series(np.nan, index=joined.index))
        joined.insert(
            list(joined.columns).index("state") + 1,
            "trial_state",
            [
                runstate.study_state(state, state in ENDED_STATES, float(value))
                for state, value in zip(joined["state"], objective, strict=True)
            ],
        )
    return joined


def finals(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last logged value of each metric per run, as `final.<name>` (`final.loss`,
    `final.eval.acc`), NaN included (a diverged loss); a suite's own best values as
    `best.<name>` (`best.eval.acc`). metrics.jsonl wins over what a worker log says."""
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
