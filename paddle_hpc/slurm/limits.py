"""A run's resources against what its partition can ever give one job.

Slurm accepts a request no node set can satisfy and leaves it pending for ever
(`PartitionNodeLimit`, `PartitionTimeLimit`, `Resources`); checking it first turns
that into an error naming the key and the limit, before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import ResourcesConfig
from paddle_hpc.slurm.parse import Partition, memory_mb, time_limit_minutes


def problems(resources: ResourcesConfig, partition: Partition) -> list[str]:
    """What of `resources` the partition can never give: 'key is X, but ...' each."""
    found = []
    most_nodes = min(partition.nodes, partition.max_nodes or partition.nodes)
    if resources.nodes > most_nodes:
        found.append(f"resources.nodes is {resources.nodes}, but it has {most_nodes} node(s)")
    if resources.gpus_per_node > partition.gpus:
        found.append(
            f"resources.gpus_per_node is {resources.gpus_per_node}, but its nodes have at "
            f"most {partition.gpus} GPU(s)"
        )
    if resources.cpus_per_task is not None and resources.cpus_per_task > partition.cpus:
        found.append(
            f"resources.cpus_per_task is {resources.cpus_per_task}, but its nodes have at "
            f"most {partition.cpus} CPUs"
        )
    wanted_mb = memory_mb(resources.mem) if resources.mem is not None else None
    if wanted_mb is not None and wanted_mb > partition.memory_mb:
        found.append(
            f"resources.mem is {resources.mem}, but its nodes have at most {partition.memory_mb}M"
        )
    minutes = time_limit_minutes(resources.time)
    limit = partition.max_minutes
    if limit is not None and (minutes is None or minutes > limit):
        found.append(f"resources.time is {resources.time}, but its MaxTime is {limit} minutes")
    return found


def check_fits(resources: ResourcesConfig, partitions: Mapping[str, Partition]) -> None:
    """Raises ConfigError unless one of the run's partitions (resources.partition, a
    comma-separated list, or the default partition) can give it what it asks for."""
    if resources.partition is not None:
        names = [n.strip() for n in resources.partition.split(",") if n.strip()]
    else:
        names = [p.name for p in partitions.values() if p.default][:1]
    if not names:
        return  # no default partition: sbatch says what it needs
    why = []
    for name in names:
        partition = partitions.get(name)
        if partition is None:
            raise ConfigError(
                f"resources.partition: Slurm has no partition {name!r}; it has "
                f"{', '.join(sorted(partitions))}."
            )
        found = problems(resources, partition)
        if not found:
            return
        why.append(f"partition {name}: {'; '.join(found)}")
    raise ConfigError(
        "these resources can never be given, so the runs would pend for ever: "
        + ". ".join(why)
        + ". Ask for less, or name another partition in resources.partition."
    )
