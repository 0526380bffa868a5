"""Retries that ask for more (backend/grow.py), fed literal resources and manifests."""

from __future__ import annotations

import pytest

from paddle_hpc.backend.grow import grow_runs, grown_resources
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import RetryGrowConfig
from tests.test_cost import manifest

BASE = {"nodes": 1, "gpus_per_node": 1, "mem": "16G", "time": "01:30:00"}


def test_memory_and_time_grow_by_their_factor_up_to_the_cap() -> None:
    grow = RetryGrowConfig(mem=1.5, time=2, max_mem="20G", max_time="2:00:00")
    assert grown_resources(BASE, "OUT_OF_MEMORY", RetryGrowConfig(mem=1.5), None) == {
        **BASE,
        "mem": "24576M",
    }
    assert grown_resources(BASE, "OUT_OF_MEMORY", grow, None)["mem"] == "20480M"  # type: ignore[index]
    assert grown_resources(BASE, "TIMEOUT", RetryGrowConfig(time=2), None)["time"] == "0-03:00:00"  # type: ignore[index]
    assert grown_resources(BASE, "TIMEOUT", grow, None)["time"] == "0-02:00:00"  # type: ignore[index]
    long = {**BASE, "time": "1-20:00:00"}
    assert grown_resources(long, "TIMEOUT", RetryGrowConfig(time=1.5), None)["time"] == "2-18:00:00"  # type: ignore[index]


def test_what_does_not_grow() -> None:
    assert grown_resources(BASE, "OUT_OF_MEMORY", RetryGrowConfig(), None) is None  # factor 1
    assert grown_resources(BASE, "FAILED", RetryGrowConfig(mem=2, time=2), None) is None
    unlimited = {**BASE, "time": "UNLIMITED"}
    assert grown_resources(unlimited, "TIMEOUT", RetryGrowConfig(time=2), None) is None


def test_the_partition_default_grows_from_what_slurm_gave() -> None:
    default = {**BASE, "mem": None}
    assert grown_resources(default, "OUT_OF_MEMORY", RetryGrowConfig(mem=2), 4000.0) == {
        **BASE,
        "mem": "8000M",
    }
    with pytest.raises(ConfigError, match=r"set resources\.mem"):
        grown_resources(default, "OUT_OF_MEMORY", RetryGrowConfig(mem=2), None)


@pytest.mark.parametrize(("cap", "key"), [("lots", "max_mem"), ("soon", "max_time")])
def test_a_bad_cap_names_its_key(cap: str, key: str) -> None:
    grow = RetryGrowConfig(mem=2, time=2, **{key: cap})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=f"sweep.retry_grow.{key} is '{cap}'"):
        grown_resources(BASE, "OUT_OF_MEMORY" if key == "max_mem" else "TIMEOUT", grow, None)


def test_grown_runs_share_a_new_shape_and_the_others_keep_theirs() -> None:
    before = manifest((3, BASE))
    ended = {"r0": "OUT_OF_MEMORY", "r1": "OUT_OF_MEMORY", "r2": "FAILED"}
    after, said = grow_runs(before, ended, RetryGrowConfig(mem=2), {})
    assert [r.shape for r in after.runs] == [1, 1, 0]
    assert after.shapes[1]["resources"]["mem"] == "32768M" and after.shapes[0] == before.shapes[0]
    assert said == {"r0": "mem 16G -> 32768M", "r1": "mem 16G -> 32768M"}
