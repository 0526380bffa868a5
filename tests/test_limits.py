"""What a partition can never give, refused before submission: check_fits with literal
partitions."""

from __future__ import annotations

import pytest

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import ResourcesConfig
from paddle_hpc.slurm.limits import check_fits
from paddle_hpc.slurm.parse import Partition

PARTITIONS = {
    "debug": Partition("debug", True, 2, None, 4, 8000, 2, None),
    "gpu": Partition("gpu", False, 16, 4, 64, 512000, 8, 2880),
}


def test_what_fits_passes() -> None:
    check_fits(ResourcesConfig(nodes=2, gpus_per_node=2, mem="8000M"), PARTITIONS)
    check_fits(ResourcesConfig(nodes=4, gpus_per_node=8, partition="gpu", time="2-00"), PARTITIONS)
    check_fits(ResourcesConfig(nodes=3, partition="debug,gpu"), PARTITIONS)  # gpu can
    check_fits(ResourcesConfig(time="UNLIMITED"), PARTITIONS)  # debug has no MaxTime
    check_fits(ResourcesConfig(nodes=99), {})  # no default partition: sbatch decides


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (ResourcesConfig(nodes=5), "partition debug: resources.nodes is 5, but it has 2 node"),
        (
            ResourcesConfig(nodes=5, partition="gpu"),
            "resources.nodes is 5, but it has 4 node",  # MaxNodes=4 of 16
        ),
        (ResourcesConfig(gpus_per_node=4), "resources.gpus_per_node is 4, but its nodes have"),
        (ResourcesConfig(cpus_per_task=8), "resources.cpus_per_task is 8, but its nodes have"),
        (ResourcesConfig(mem="1T", partition="gpu"), "resources.mem is 1T, but its nodes"),
        (
            ResourcesConfig(time="3-00:00:00", partition="gpu"),
            "resources.time is 3-00:00:00, but its MaxTime is 2880 minutes",
        ),
        (ResourcesConfig(time="UNLIMITED", partition="gpu"), "resources.time is UNLIMITED"),
        (ResourcesConfig(partition="gpu2"), "no partition 'gpu2'; it has debug, gpu"),
        (
            ResourcesConfig(nodes=20, partition="debug, gpu"),
            "partition debug: resources.nodes is 20, but it has 2 node(s). partition gpu:",
        ),
    ],
)
def test_what_can_never_fit_is_refused(resources: ResourcesConfig, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_fits(resources, PARTITIONS)
    assert message in str(caught.value)
    assert "resources.partition" in str(caught.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        check_fits(ResourcesConfig(nodes=3, gpus_per_node=3, cpus_per_task=5), PARTITIONS)
    text = str(caught.value)
    assert "resources.nodes is 3" in text and "gpus_per_node is 3" in text
    assert "cpus_per_task is 5" in text
