"""The metrics and errors of a sweep's run files: `log_metrics`' files (`jsonl`), the
worker logs (`worker_logs`, with the suites' lines and the user's own patterns and
parsers), and VisualDL's records; each as rows of the metrics and errors tables."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import yaml

from paddle_hpc.collect import sources
from paddle_hpc.collect.compacts import Covered
from paddle_hpc.collect.tables import ERROR_COLUMNS, METRIC_COLUMNS, empty
from paddle_hpc.core import layout
from paddle_hpc.parse import columns, jsonl
from paddle_hpc.parse.log_rows import LogRows, Reading, attempt_of, global_ranks, read_log

log = logging.getLogger(__name__)


def base_config(sweep_dir: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load((sweep_dir / layout.CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def metrics_frame(run_ids: Sequence[str], rels: Sequence[str], cols: jsonl.Columns) -> pd.DataFrame:
    """Rows read from metrics files; file i is run_ids[i]'s, at rels[i] (a run has
    several: its metrics.jsonl, its nodes' GPU samples and its steps' metrics)."""
    codes = cols.file
    runs, unique = pd.factorize(pd.Index(run_ids))
    names, name_codes = used_names(cols)
    frame = pd.DataFrame(
        {
            "run_id": pd.Categorical.from_codes(runs[codes], categories=unique),
            "step": pd.arrays.IntegerArray(cols.step, cols.no_step),
            "name": pd.Categorical.from_codes(name_codes, categories=pd.Index(names)),
            "value": cols.value,
            "time": pd.Series(cols.time.view("datetime64[ns]")).dt.tz_localize("UTC"),
            "attempt": pd.arrays.IntegerArray(cols.attempt, cols.attempt == 0),
            "source": pd.Categorical.from_codes(codes, categories=pd.Index(rels)),
        },
        copy=False,
    )
    steps = {i: step for i, rel in enumerate(rels) if (step := layout.step_of(rel))}
    if steps:  # a step's metric is named after it: evaluate.acc
        names = frame["name"].astype(object)
        for i, step in steps.items():
            names[codes == i] = step + "." + names[codes == i]
        frame["name"] = names.astype("category")
    return cast(pd.DataFrame, frame)


def used_names(cols: jsonl.Columns) -> tuple[list[str], np.ndarray]:
    """The metric names the rows use, in order, and each row's code into them: the same
    whichever files were read from text and which from the nodes' compact files."""
    used = np.bincount(cols.name, minlength=len(cols.names)) > 0
    names = sorted(n for n, u in zip(cols.names, used, strict=True) if u)
    recode = np.full(len(cols.names), -1, dtype=np.int32)
    recode[used] = [names.index(n) for n, u in zip(cols.names, used, strict=True) if u]
    return names, recode[cols.name]


def start_jsonl_metrics(
    sweep_dir: Path,
    runs: Sequence[sources.RunFiles],
    changed: set[str],
    sizes: Mapping[str, int],
    covered: Covered,
) -> tuple[list[tuple[str, str]], Callable[[], jsonl.Columns]]:
    """The changed metrics files and GPU samples, as (run id, relative path), and a call
    that gives their rows: those the nodes' compact files do not cover are being read."""
    picked = [
        (r.run_id, rel)
        for r in runs
        for rel in (r.metrics, *r.gpu, *r.then)
        if rel and rel in changed
    ]
    at = {rel: index for index, (_, rel) in enumerate(picked)}
    done = set(covered.rels)
    text = [i for i, (_, rel) in enumerate(picked) if rel not in done]
    root = str(sweep_dir)
    reading = jsonl.start(
        [f"{root}/{picked[i][1]}" for i in text], [sizes[picked[i][1]] for i in text]
    )
    if not covered.rels:
        return picked, reading.result
    from_nodes = [at[rel] for rel in covered.rels]
    return picked, lambda: columns.merge([(reading.result(), text), (covered.rows, from_nodes)])


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
    how: Reading,
    covered: Mapping[str, LogRows],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics from global rank 0's worker log, and failures from every worker log: from
    the nodes' compact files where they `covered` a log, else from its text."""
    metric_rows: list[dict[str, Any]] = []
    error_rows: list[dict[str, Any]] = []
    for run in runs:
        ranks = global_ranks(run.worker_logs)
        for rel, node, rank in run.worker_logs:
            if rel not in changed:
                continue
            rows = covered.get(rel) or _read_log(sweep_dir, rel, node == 0 and rank == 0, how)
            if rows is None:
                continue
            error_rows.extend(
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
                for failure in rows.failures
            )
            metric_rows.extend(
                {
                    "run_id": run.run_id,
                    "step": step,
                    "name": name,
                    "value": value,
                    "attempt": rows.attempt,
                    "source": rel,
                }
                for step, name, value in rows.metrics
            )
    columns = ["run_id", "step", "name", "value", "attempt", "source"]
    metrics = pd.DataFrame(metric_rows, columns=columns)
    for column in ("step", "attempt"):
        metrics[column] = metrics[column].astype("Int64")
    metrics["value"] = metrics["value"].astype(float)
    metrics["time"] = pd.Series(pd.NaT, index=metrics.index, dtype="datetime64[ns, UTC]")
    return metrics[METRIC_COLUMNS], pd.DataFrame(error_rows, columns=ERROR_COLUMNS)


def _read_log(sweep_dir: Path, rel: str, with_metrics: bool, how: Reading) -> LogRows | None:
    try:
        text = sources.read(f"{sweep_dir}/{rel}").decode("utf-8", errors="replace")
    except OSError as exc:
        log.warning("%s: cannot read (%s); skipped", rel, exc)
        return None
    rows = read_log(text, rel, with_metrics, how, None)
    if not rows.metrics:
        return rows
    return LogRows(attempt_of(sweep_dir / rel), rows.metrics, rows.failures)


def looked_into(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """What of a run's folder is read besides its own files: its VisualDL folders, and
    its steps' (sweep.then)."""
    return visualdl_folders(config), list((config.get("sweep") or {}).get("then") or {})


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
