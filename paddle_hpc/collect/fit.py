"""Requests that fit, from what ended runs used: a time limit and memory per node from a
high percentile of their elapsed time and peak memory, with headroom, and GPUs per node
from how many their GPU samples show busy. Short, accurate requests start sooner
(backfill fits them into gaps). Pure but for `history`, which
reads the runs tables of your earlier sweeps of the same program."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from paddle_hpc.collect.results import RESULTS
from paddle_hpc.core import index, runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import load
from paddle_hpc.slurm.parse import slurm_time

PERCENTILE = 0.95
HEADROOM = 1.25  # a quarter more than the percentile
LEAST_RUNS = 3  # fewer completed runs suggest nothing
TIME_STEP_MIN = 5
MEM_STEP_MB = 256
COLUMNS = ("state", "elapsed_s", "max_rss_mb", "gpus_busy")  # of the runs table, what a fit reads
NEEDED = COLUMNS[:3]  # a runs table collected before it had gpus_busy still counts


@dataclass(frozen=True)
class Fit:
    runs: int  # the completed runs it is drawn from
    time: str | None  # resources.time to ask for, 'D-HH:MM:SS'; None: none to suggest
    mem: str | None  # resources.mem per node, '3072M'
    why: tuple[str, ...]  # what each suggestion is drawn from, or why there is none
    gpus: int | None = None  # resources.gpus_per_node

    def overrides(self) -> list[str]:
        found = [f"resources.time={self.time}"] if self.time else []
        found += [f"resources.mem={self.mem}"] if self.mem else []
        return found + ([f"resources.gpus_per_node={self.gpus}"] if self.gpus else [])


def fit_gpus(done: pd.DataFrame, asked: int) -> tuple[int | None, str | None]:
    """GPUs per node: the most any completed run kept busy on a node, when below `asked`."""
    busy = done["gpus_busy"].dropna() if "gpus_busy" in done else pd.Series(dtype=float)
    if not asked or len(busy) < LEAST_RUNS:
        return None, None
    most = int(busy.max())
    if most == 0:
        return None, f"GPUs: no run of {len(busy)} kept a GPU busy; does the script use them?"
    if most < asked:
        return most, f"GPUs: at most {most} of {asked} per node were busy in {len(busy)} runs"
    return None, None


def suggest(runs: pd.DataFrame, signal_before: int = 90, gpus_per_node: int = 0) -> Fit:
    """From runs tables' rows (this sweep's and earlier ones'): the p95 of the elapsed
    time of the completed runs plus headroom and the stop signal's lead, in steps of 5
    minutes; the p95 of their peak memory per node plus headroom, in steps of 256 MB;
    fewer GPUs per node than `gpus_per_node` when no run kept more busy (fit_gpus).
    Runs that ended TIMEOUT or OUT_OF_MEMORY show the request was too small: then that
    one is not lowered."""
    done = runs[runs["state"] == runstate.COMPLETED]
    if len(done) < LEAST_RUNS:
        return Fit(len(done), None, None, (f"{len(done)} completed run(s): too few to suggest",))
    why = []
    time = mem = None
    if (runs["state"] == runstate.TIMEOUT).any():
        why.append("some runs ended TIMEOUT: the time limit is not lowered")
    else:
        p95 = float(done["elapsed_s"].astype(float).quantile(PERCENTILE))
        steps = math.ceil((p95 * HEADROOM + signal_before) / 60 / TIME_STEP_MIN)
        minutes = max(steps, 1) * TIME_STEP_MIN
        time = slurm_time(minutes)
        why.append(f"time: p95 of {len(done)} completed runs' elapsed is {p95 / 60:.1f} min")
    peaks = done["max_rss_mb"].dropna()
    if (runs["state"] == runstate.OUT_OF_MEMORY).any():
        why.append("some runs ran out of memory: the memory is not lowered")
    elif len(peaks) >= LEAST_RUNS:
        p95 = float(peaks.quantile(PERCENTILE))
        mem = f"{math.ceil(p95 * HEADROOM / MEM_STEP_MB) * MEM_STEP_MB}M"
        why.append(f"memory: p95 of {len(peaks)} runs' peak per node is {p95:,.0f} MB")
    else:
        why.append("memory: too few runs with a sampled peak (MaxRSS)")
    gpus, said = fit_gpus(done, gpus_per_node)
    return Fit(len(done), time, mem, (*why, *([said] if said else [])), gpus)


def same_program(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two sweeps' base configs run the same training code."""
    keys = ("script", "module", "cwd")
    pa, pb = a.get("program") or {}, b.get("program") or {}
    return all(pa.get(k) == pb.get(k) for k in keys)


def history(base: Mapping[str, Any], here: Path, limit: int = 20) -> list[pd.DataFrame]:
    """The runs tables (as their last collect left them) of your earlier sweeps, in the
    per-user index, that run the same program as `base`; the newest `limit` of them."""
    tables: list[pd.DataFrame] = []
    for entry in index.entries():
        if len(tables) >= limit:
            break
        if entry.dir.resolve() == here.resolve():
            continue
        try:
            other = load(entry.dir).extra.get("base") or {}
            if same_program(base, other):
                runs = pd.read_parquet(entry.dir / RESULTS / "runs.parquet")
                if set(NEEDED) <= set(runs.columns):  # collected before it had them: skip
                    tables.append(runs.reindex(columns=list(COLUMNS)))
        except (OSError, ValueError, KeyError, PaddleHpcError):
            continue  # moved, never collected, or not a sweep any more
    return tables


def fit_sweep(sweep_dir: Path, runs: pd.DataFrame) -> Fit:
    """The fit from a sweep's runs table and your earlier sweeps of the same program."""
    base = load(sweep_dir).extra.get("base") or {}
    resources = base.get("resources") or {}
    signal, gpus = int(resources.get("signal_before", 90)), int(resources.get("gpus_per_node", 0))
    found = pd.concat([runs.reindex(columns=list(COLUMNS)), *history(base, sweep_dir)])
    return suggest(found, signal, gpus)


def fit_lines(fit: Fit, sweep_dir: Path) -> list[str]:
    if not fit.overrides():
        return [f"fit: nothing to suggest ({'; '.join(fit.why)})"]
    return [
        f"fit: {' '.join(fit.overrides())} ({'; '.join(fit.why)})",
        f"next time: python -m paddle_hpc.sweep --fit-from {sweep_dir} ...",
    ]
