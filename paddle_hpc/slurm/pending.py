"""When Slurm expects jobs to start: a pending job's reason and planned start (squeue),
the reasons that never clear by themselves with what to change, and a job not yet
submitted's start (sbatch --test-only). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from paddle_hpc.slurm.parse import parse_job_id

# `squeue --me --states=PENDING --noheader --format=PENDING_FORMAT`: the job (an array's
# pending tasks on one line), the reason it waits, and the start the scheduler expects
# (N/A until its backfill pass has planned it)
PENDING_FORMAT = "%i|%r|%S"


@dataclass(frozen=True)
class Pending:
    reason: str
    start: datetime | None  # Slurm's expected start; None: not planned yet


def parse_pending(text: str) -> dict[str, Pending]:
    """'259_[2-999%8]|Priority|2026-12-05T08:02:45' lines -> {'259_2': Pending(...), ...}:
    a line of an array's pending tasks, which squeue prints as one, stands for each."""
    found = {}
    for line in text.splitlines():
        job, _, rest = line.strip().partition("|")
        reason, _, start = rest.partition("|")
        try:
            ref = parse_job_id(job)
            when = datetime.fromisoformat(start) if start[:1].isdigit() else None
        except ValueError:
            continue
        if not reason:
            continue
        for name in [f"{ref.job}_{t}" for t in ref.tasks] if ref.tasks else [str(ref.job)]:
            found[name] = Pending(reason, when)
    return found


_TIME = "lower resources.time"
_NODES = "ask for fewer resources.nodes"
_GPUS = "ask for fewer GPUs (resources.gpus_per_node, resources.nodes)"
_CPUS = "ask for fewer CPUs (resources.cpus_per_task, resources.nodes)"
_MEM = "lower resources.mem"
_WHO = "check resources.account and resources.qos against `sacctmgr show assoc user=$USER`"
_ASSOC = "your association allows a job"
_QOS = "the QOS allows a job"

# Reasons that do not clear by themselves: the job asks for more than a limit allows,
# or names what it may not use. What to change, per reason as squeue names it.
NEVER_CLEARS = {
    "AssocMaxWallDurationPerJobLimit": f"they ask for a longer time limit than {_ASSOC}; {_TIME}",
    "QOSMaxWallDurationPerJobLimit": f"they ask for a longer time limit than {_QOS}; {_TIME}",
    "PartitionTimeLimit": f"they ask for a longer time limit than the partition's MaxTime; {_TIME}",
    "AssocMaxNodePerJobLimit": f"they ask for more nodes than {_ASSOC}; {_NODES}",
    "QOSMaxNodePerJobLimit": f"they ask for more nodes than {_QOS}; {_NODES}",
    "PartitionNodeLimit": f"they ask for more nodes than the partition allows a job; {_NODES}",
    "AssocMaxCpuPerJobLimit": f"they ask for more CPUs than {_ASSOC}; {_CPUS}",
    "QOSMaxCpuPerJobLimit": f"they ask for more CPUs than {_QOS}; {_CPUS}",
    "AssocMaxGRESPerJob": f"they ask for more GPUs than {_ASSOC}; {_GPUS}",
    "QOSMaxGRESPerJob": f"they ask for more GPUs than {_QOS}; {_GPUS}",
    "QOSMaxGRESPerUser": "they ask for more GPUs than the QOS allows you at once; "
    f"{_GPUS}, unless your other jobs hold them",
    "AssocMaxMemoryPerJob": f"they ask for more memory than {_ASSOC}; {_MEM}",
    "QOSMaxMemoryPerJob": f"they ask for more memory than {_QOS}; {_MEM}",
    "InvalidAccount": f"they ask for an account that is not yours; {_WHO}",
    "InvalidQOS": f"they ask for a QOS that is not yours; {_WHO}",
    "AccountNotAllowed": f"they ask for an account the partition does not take; {_WHO}",
    "QOSNotAllowed": f"they ask for a QOS the partition does not take; {_WHO}",
    "PartitionConfig": "they ask for more than the partition can give; ask for less, or "
    "name another resources.partition",
    "BadConstraints": "they ask for features no node has; change resources.constraint",
    "ReqNodeNotAvail": "they ask for a node that is down, drained or reserved (`sinfo -R` "
    "says why); unless it comes back, exclude it with resources.sbatch.exclude",
    "DependencyNeverSatisfied": "a job they depend on ended in a way that never lets it run",
    "JobHoldMaxRequeue": "they were requeued too often and is held: `scontrol release JOBID`",
    "JobHeldUser": "you held them: `scontrol release JOBID`",
    "JobHeldAdmin": "an administrator held them: ask why",
}


def never_clears(reason: str) -> str | None:
    """Why a reason never clears by itself and what to change ('they ask for more nodes
    than the QOS allows a job; ask for fewer resources.nodes'); None: the job waits for
    what comes by itself (Resources, Priority, a job ending, ...)."""
    return NEVER_CLEARS.get(reason.split(",")[0].strip())


@dataclass(frozen=True)
class Estimate:
    """When Slurm expects a job to start (`sbatch --test-only`, which submits nothing)."""

    partition: str  # the partition it was asked about; '' for the default
    start: datetime | None  # None: it cannot start there (`error` says why)
    nodes: str = ""
    preempts: tuple[int, ...] = ()  # the jobs it would preempt to start then
    error: str = ""


_WILL_RUN = re.compile(
    r"Job \d+ to start at (?P<start>\S+) using \d+ processors on nodes (?P<nodes>\S+)"
    r"(?: in partition (?P<partition>\S+))?"
)


def parse_test_only(text: str, partition: str) -> Estimate:
    """sbatch --test-only's stderr: 'sbatch: Job 262 to start at 2026-12-05T08:02:45
    using 1 processors on nodes n1 in partition debug', then 'sbatch:   Preempts: 260'."""
    match = _WILL_RUN.search(text)
    if match is None:
        said = " ".join(text.replace("sbatch: error:", "").split())
        return Estimate(partition, None, error=said or "sbatch --test-only said nothing")
    preempts = re.search(r"Preempts:\s*([\d,\s]+)", text)
    return Estimate(
        match["partition"] or partition,
        datetime.fromisoformat(match["start"]),
        match["nodes"],
        tuple(int(j) for j in re.findall(r"\d+", preempts[1])) if preempts else (),
    )
