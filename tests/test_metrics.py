from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paddle_hpc import log_metrics


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rank_zero_appends_one_line_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    log_metrics(step=0, loss=np.float32(1.5), acc=0.25)
    log_metrics(step=1, loss=np.array([0.5]))
    got = lines(tmp_path / "metrics.jsonl")
    assert [(g["step"], g["loss"]) for g in got] == [(0, 1.5), (1, 0.5)] and got[0]["acc"] == 0.25


def test_other_ranks_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PADDLE_TRAINER_ID", "3")
    log_metrics(step=0, loss=1.0)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_outside_a_sweep_it_writes_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PADDLE_HPC_RUN_DIR", raising=False)
    monkeypatch.delenv("PADDLE_TRAINER_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    log_metrics(loss=2)
    assert lines(tmp_path / "metrics.jsonl")[0]["loss"] == 2


def test_non_numbers_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    with pytest.raises(TypeError, match="name='x' is not a number"):
        log_metrics(step=0, name="x")


def test_a_step_must_be_a_whole_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    with pytest.raises(TypeError, match=r"step=0\.5 is not a whole number.*epoch=0\.5"):
        log_metrics(step=0.5, loss=1.0)
    with pytest.raises(TypeError, match="not a whole number"):
        log_metrics(step=2**63, loss=1.0)  # past int64, which the tables' step column is
    log_metrics(step=np.int64(3), loss=1.0)
    log_metrics(step=4.0, loss=1.0)
    assert [g["step"] for g in lines(tmp_path / "metrics.jsonl")] == [3, 4]


def test_each_line_says_its_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PADDLE_HPC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    monkeypatch.setenv("PADDLE_HPC_ATTEMPT", "2")
    log_metrics(step=5, loss=1.0)
    assert lines(tmp_path / "metrics.jsonl")[0]["attempt"] == 2
    for name in ("attempt", "time"):
        with pytest.raises(TypeError, match=f"{name} is the collector's own column"):
            log_metrics(step=6, **{name: 1.0})
    assert len(lines(tmp_path / "metrics.jsonl")) == 1
