"""What the changed files of some runs hold: the nodes' compact files where they cover
a file as it is now (`compacts`), the text otherwise (`readers`), and the runs' state
files. A collect reads chunks of runs so, spread over the machine's cores (`spread`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from paddle_hpc.collect import compacts, sources
from paddle_hpc.collect.readers import (
    read_log_metrics,
    read_visualdl_metrics,
    start_jsonl_metrics,
)
from paddle_hpc.core.layout import METRICS
from paddle_hpc.parse import jsonl
from paddle_hpc.parse.log_rows import reading


@dataclass
class RunRows:
    picked: list[tuple[str, str]]  # (run id, path) of each metrics file; rows.file indexes it
    rows: jsonl.Columns
    log_metrics: pd.DataFrame
    log_errors: pd.DataFrame
    visualdl: pd.DataFrame
    states: dict[str, Any]  # run id -> its state.json, for those that changed
    skipped: dict[str, int]
    from_nodes: int  # files whose rows came from the nodes' compact files


@dataclass(frozen=True)
class Chunk:
    """Some runs, with what a collect knows of their files."""

    runs: Sequence[sources.RunFiles]
    changed: set[str]  # relative paths
    files: Mapping[str, Sequence[int]]  # relative path -> its fingerprint
    config: Mapping[str, Any]  # the sweep's config.yaml


log = logging.getLogger(__name__)


def read_runs(sweep_dir: Path, chunk: Chunk) -> RunRows:
    """The rows of the chunk's changed files, and its runs' changed state files."""
    how, runs, changed = reading(chunk.config), chunk.runs, chunk.changed
    covered = compacts.covered(sweep_dir, runs, changed, chunk.files, how)
    text = changed - set(covered.rels) - set(covered.logs)
    sources.prefetch(f"{sweep_dir}/{rel}" for rel in sorted(text, key=_metrics_first))
    sizes = {rel: fp[0] for rel, fp in chunk.files.items()}
    picked, rows = start_jsonl_metrics(sweep_dir, runs, changed, sizes, covered)
    skipped: dict[str, int] = {}
    # while the last metrics chunks parse:
    log_metrics, log_errors = read_log_metrics(sweep_dir, runs, changed, how, covered.logs)
    states = read_states(sweep_dir, runs, changed, skipped)
    visualdl = read_visualdl_metrics(sweep_dir, runs, changed, skipped)
    from_nodes = len(covered.rels) + len(covered.logs)
    return RunRows(picked, rows(), log_metrics, log_errors, visualdl, states, skipped, from_nodes)


def read_states(
    sweep_dir: Path, runs: Sequence[sources.RunFiles], changed: set[str], skipped: dict[str, int]
) -> dict[str, Any]:
    """Run id -> its state.json, for the runs whose state.json changed."""
    states = {}
    for run in runs:
        if run.state and run.state in changed:
            try:
                states[run.run_id] = json.loads(sources.read(f"{sweep_dir}/{run.state}"))
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable (%s); skipped", run.state, exc)
                skipped["unreadable state files"] = skipped.get("unreadable state files", 0) + 1
    return states


def _metrics_first(rel: str) -> tuple[bool, str]:
    return not rel.endswith(METRICS), rel
