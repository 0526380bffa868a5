"""What a sweep asks for at most, the guard on it, and the cost columns and summary,
fed literal manifests, sacct output and runs tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paddle_hpc.backend.charges import asked, asked_line, check_budget
from paddle_hpc.collect.usage import USAGE_COLUMNS, summary, summary_lines, usage_frame
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.slurm.charge import attempts, parse_usage
from paddle_hpc.slurm.parse import parse_sacct
from tests.test_slurm_usage import ALLOCATIONS, STEPS


def manifest(*shapes: tuple[int, dict[str, object]], job: int | None = None) -> Manifest:
    """Runs per shape: (how many, its resources)."""
    runs = []
    for number, (count, _) in enumerate(shapes):
        for _ in range(count):
            task = len(runs)
            runs.append(RunEntry(f"r{task}", task, (), {}, number, job, task if job else None))
    return Manifest(
        name="s",
        created="2026-12-05T00:00:00+00:00",
        command=(),
        executor="slurm",
        axes=(),
        shapes=tuple({"resources": resources} for _, resources in shapes),
        runs=tuple(runs),
    )


GPU = {"nodes": 2, "gpus_per_node": 4, "time": "1-00:00:00"}
CPU = {"nodes": 1, "gpus_per_node": 0, "time": "UNLIMITED"}


def test_what_a_sweep_asks_for_at_most() -> None:
    found = asked(manifest((3, GPU), (5, CPU)), trials_per_task=1)
    assert found.gpu_hours == 3 * 2 * 4 * 24  # a shape without GPUs adds none
    assert asked_line(found) == (
        "at most 576 GPU-hours (3 task(s) x 2 node(s) x 4 GPU(s) x 24:00:00; "
        "5 task(s) x 1 node(s) x 0 GPU(s) x no time limit)"
    )
    packed = asked(manifest((5, {**GPU, "time": "90"})), trials_per_task=2)
    assert packed.gpu_hours == 3 * 2 * 4 * 1.5  # 5 trials in 3 tasks
    unbounded = asked(manifest((1, {**GPU, "time": "UNLIMITED"})), trials_per_task=1)
    assert unbounded.gpu_hours is None and asked_line(unbounded).startswith("at most no bound")


def test_the_guard_refuses_more_than_max_gpu_hours_naming_the_key() -> None:
    found = asked(manifest((3, GPU)), trials_per_task=1)
    check_budget(found, None)
    check_budget(found, 576)
    with pytest.raises(ConfigError, match=r"sweep.max_gpu_hours is 500, .* at most 576 GPU"):
        check_budget(found, 500)
    with pytest.raises(ConfigError, match="no bound"):
        check_budget(asked(manifest((1, {**GPU, "time": "INFINITE"})), 1), 10_000)


def test_the_cost_columns_of_each_run() -> None:
    # tasks 0 and 1 of array 192: task 0 was requeued, then ended while the steps were
    # read (as running); task 1 ended
    found = attempts(parse_sacct(ALLOCATIONS), parse_usage(STEPS))
    frame = usage_frame(manifest((3, GPU), job=192), found)
    assert list(frame.columns) == list(USAGE_COLUMNS)
    requeued, ended, pending = (frame.loc[r] for r in ("r0", "r1", "r2"))
    assert requeued["gpu_hours"] == pytest.approx((1 * 5 + 4 * 30) / 3600)
    assert requeued["cpu_efficiency"] == pytest.approx(0.002 / (2 * 5))  # the ended one's
    assert np.isnan(requeued["max_rss_mb"])  # never sampled
    assert ended["cpu_efficiency"] == pytest.approx(12.5 / 15)
    assert ended["max_rss_mb"] == pytest.approx(313.11, abs=0.01)
    assert (ended["req_mem_mb"], ended["time_limit_min"]) == (8000.0, 10.0)
    assert pending.isna().all()  # not started: no allocation yet


def runs_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    columns = ["state", "elapsed_s", *USAGE_COLUMNS, "gpu_util"]
    return pd.DataFrame([[row.get(c, np.nan) for c in columns] for row in rows], columns=columns)


def test_the_sweep_summary() -> None:
    runs = runs_table(
        [
            {"state": "COMPLETED", "elapsed_s": 600, "gpu_hours": 2.0, "cpu_hours": 4.0,
             "cpu_efficiency": 0.5, "max_rss_mb": 1000.0, "req_mem_mb": 4000.0,
             "time_limit_min": 60, "gpu_util": 90.0},
            {"state": "TIMEOUT", "elapsed_s": 3600, "gpu_hours": 1.0, "cpu_hours": 12.0,
             "cpu_efficiency": 0.25, "max_rss_mb": 3000.0, "req_mem_mb": 4000.0,
             "time_limit_min": 60, "gpu_util": 30.0},
            {"state": "RUNNING", "elapsed_s": 30, "gpu_hours": 0.5, "cpu_hours": 1.0},
            {"state": "PENDING"},
        ]
    )  # fmt: skip
    found = summary(runs)
    assert (found.runs, found.accounted, found.gpu_hours, found.cpu_hours) == (4, 3, 3.5, 17.0)
    assert found.by_state["TIMEOUT"] == (1.0, 12.0) and found.by_state["PENDING"] == (0, 0)
    assert found.cpu_efficiency == pytest.approx((0.5 * 4 + 0.25 * 12) / 16)  # by CPU-hours
    assert found.mem_used == pytest.approx((0.5, 0.725, 0.75))
    assert found.time_used == pytest.approx((0.583333, 0.958333, 1.0), rel=1e-5)
    lines = summary_lines(found)
    assert lines[0].startswith("charged: 3.50 GPU-hours, 17.0 CPU-hours over 4 runs")
    assert "TIMEOUT 1.00/12.0" in lines[0]
    assert lines[1] == "CPU efficiency: 31% of the CPU time allocated"
    assert "largest peak 3,000 MB" in lines[2]
    assert found.gpu_util == (60.0, 30.0, 2)
    assert lines[-1] == "GPU utilisation: mean 60% over 2 run(s) with samples, the lowest 30%"


def test_a_summary_without_accounting_says_only_what_it_knows() -> None:
    found = summary(runs_table([{"state": "COMPLETED", "elapsed_s": 5}]))
    assert (found.accounted, found.cpu_efficiency, found.mem_used) == (0, None, None)
    assert found.gpu_util is None
    assert summary_lines(found) == [
        "charged: nothing in Slurm's accounting (runs not started, or run without Slurm)"
    ]
