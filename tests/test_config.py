"""Slurm's time formats, retry settings, and file modes, with literal inputs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from paddle_hpc.backend.arrays import array_parameters
from paddle_hpc.core.files import current_umask, write_atomic
from paddle_hpc.slurm.parse import time_limit_minutes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30", 30),
        ("0:30", 1),  # sbatch rounds seconds up to a minute
        ("1:30:00", 90),
        ("2-12", 3600),
        ("2-12:30", 3630),
        ("1-0:0:1", 1441),
        (" 10 ", 10),
        ("UNLIMITED", None),
        ("infinite", None),
        ("-1", None),
        ("0", None),  # sbatch: a time limit of zero is no limit
        ("00:00:00", None),
    ],
)
def test_time_limits_as_sbatch_reads_them(text: str, minutes: int | None) -> None:
    assert time_limit_minutes(text) == minutes


@pytest.mark.parametrize("text", ["soon", "1h", "1:2:3:4", "", "-2", "1-", "$(x)"])
def test_bad_time_limits(text: str) -> None:
    with pytest.raises(ValueError):
        time_limit_minutes(text)


def test_the_array_carries_unlimited_and_requeue_when_asked() -> None:
    from paddle_hpc.core.schema import SweepConfig

    shape = {"resources": {"time": "UNLIMITED"}, "setup": [], "python": None}
    params = array_parameters(shape, "s", SweepConfig())
    # requeues of runs that stop to resume (sweep.max_requeues, 3 by default) need it
    assert params["time"] == "UNLIMITED" and params["additional_parameters"]["requeue"] is True
    assert params["signal_delay_s"] == 90
    never = SweepConfig(max_requeues=0)
    assert "requeue" not in array_parameters(shape, "s", never)["additional_parameters"]
    retrying = SweepConfig(max_retries=2, retry_on=["NODE_FAIL"], max_requeues=0)
    assert array_parameters(shape, "s", retrying)["additional_parameters"]["requeue"] is True
    failed_only = SweepConfig(max_retries=2, retry_on=["FAILED"], max_requeues=0)
    assert "requeue" not in array_parameters(shape, "s", failed_only)["additional_parameters"]


def test_file_modes_come_from_the_umask_without_changing_it(tmp_path: Path) -> None:
    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        threads = [
            threading.Thread(target=write_atomic, args=(tmp_path / f"f{i}", "x")) for i in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert current_umask() == 0o027
        assert {(tmp_path / f"f{i}").stat().st_mode & 0o777 for i in range(20)} == {0o640}
    finally:
        os.umask(before)
