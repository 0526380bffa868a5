"""Requests that fit (collect/fit.py), fed literal runs tables, and earlier sweeps of
the same program found through the per-user index."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.collect.fit import COLUMNS, Fit, history, same_program, suggest
from paddle_hpc.core import index
from paddle_hpc.core.manifest import save
from tests.test_cost import manifest


def table(*rows: tuple[object, ...]) -> pd.DataFrame:
    """A runs table of (state, elapsed_s, max_rss_mb[, gpus_busy]) rows."""
    width = len(rows[0]) if rows else len(COLUMNS)
    return pd.DataFrame(rows, columns=list(COLUMNS[:width])).reindex(columns=list(COLUMNS))


COMPLETED = [("COMPLETED", 600 + 60 * i, 2000.0 + 100 * i) for i in range(10)]


def test_a_fit_from_the_95th_percentile_with_headroom() -> None:
    fit = suggest(table(*COMPLETED, ("FAILED", 5, None), ("CANCELLED", 9000, 9000.0)))
    # p95 of 600..1140 s is 1113 s: x 1.25 + 90 s = 1481 s -> 25 min, in steps of 5
    assert (fit.runs, fit.time) == (10, "0-00:25:00")
    # p95 of 2000..2900 MB is 2855 MB: x 1.25 = 3569 MB -> 3584 MB, in steps of 256
    assert fit.mem == "3584M"
    assert fit.overrides() == ["resources.time=0-00:25:00", "resources.mem=3584M"]
    long = suggest(table(*[("COMPLETED", 100_000.0, 1.0)] * 3), signal_before=0)
    assert long.time == "1-10:45:00"  # 125,000 s -> 2,085 min


def test_what_a_fit_will_not_lower() -> None:
    timed_out = suggest(table(*COMPLETED, ("TIMEOUT", 3600, 2500.0)))
    assert timed_out.time is None and timed_out.mem == "3584M"
    assert "some runs ended TIMEOUT" in timed_out.why[0]
    oom = suggest(table(*COMPLETED, ("OUT_OF_MEMORY", 30, None)))
    assert oom.mem is None and oom.time == "0-00:25:00"
    unsampled = suggest(table(*[(s, e, None) for s, e, _ in COMPLETED]))
    assert unsampled.mem is None and "too few runs with a sampled peak" in unsampled.why[-1]


def test_gpus_per_node_from_the_most_any_run_kept_busy() -> None:
    busy = [(*run, 2 if i == 4 else 1) for i, run in enumerate(COMPLETED)]
    fit = suggest(table(*busy, ("FAILED", 5, None, 4)), gpus_per_node=4)
    assert fit.gpus == 2 and "at most 2 of 4 per node were busy in 10 runs" in fit.why[-1]
    assert fit.overrides()[-1] == "resources.gpus_per_node=2"
    assert suggest(table(*busy), gpus_per_node=2).gpus is None  # all it asked for
    idle = suggest(table(*[(*run, 0) for run in COMPLETED]), gpus_per_node=4)
    assert idle.gpus is None and "does the script use them?" in idle.why[-1]
    unsampled = suggest(table(*[(*r, None) for r in COMPLETED], *busy[:2]), gpus_per_node=4)
    assert unsampled.gpus is None and not any("GPUs" in why for why in unsampled.why)


def test_too_few_runs_suggest_nothing() -> None:
    assert suggest(table(*COMPLETED[:2])) == Fit(
        2, None, None, ("2 completed run(s): too few to suggest",)
    )


def test_earlier_sweeps_of_the_same_program_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDLE_HPC_INDEX", str(tmp_path / "sweeps.jsonl"))
    base = {"program": {"script": "train.py", "module": None, "cwd": None}}
    other = {"program": {"script": "other.py", "module": None, "cwd": None}}
    for name, config, created in (
        ("same", base, "2026-12-01"),
        ("other", other, "2026-12-02"),
        ("gone", base, "2026-12-03"),
        ("here", base, "2026-12-04"),
    ):
        folder = tmp_path / name
        if name != "gone":
            folder.mkdir()
            save(folder, replace(manifest((1, {"nodes": 1})), extra={"base": config}))
            (folder / "results").mkdir()
            # collected before the runs table had gpus_busy
            table(*COMPLETED[:3]).drop(columns="gpus_busy").to_parquet(
                folder / "results" / "runs.parquet"
            )
        index.record(folder, name, created)
    found = history(base, tmp_path / "here")
    assert len(found) == 1 and found[0]["elapsed_s"].tolist() == [600, 660, 720]
    assert same_program(base, {"program": {**base["program"], "args": ["--x"]}})
    assert not same_program(base, other)
