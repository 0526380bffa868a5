"""How many jobs the user may have queued at once, and how many are queued now.

Sites cap the jobs (array tasks count one each) a user may have pending or running:
`MaxSubmitJobs` of the user's association (`sacctmgr show assoc`, which shows the
value the user inherits from the accounts above), and `MaxSubmitJobsPerUser` of the
QOS the jobs run under (`sacctmgr show qos`). sbatch refuses an array that would pass
either, so a sweep larger than the room left is fed: its runs are submitted as earlier
ones leave the queue (backend/feed.py). `MaxJobs` caps how many run at once; jobs past
it wait in the queue, so it needs no feeding, only saying. Pure parsers and sums here;
the commands are the client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ASSOC_FORMAT = "Account,Partition,MaxSubmitJobs,MaxJobs,QOS,DefaultQOS"
QOS_FORMAT = "Name,MaxSubmitJobsPerUser,MaxJobsPerUser"
SQUEUE_FORMAT = "%a|%q"  # each queued job (array task, with -r) of the user: account|qos
DEFAULT_QOS = "normal"  # what Slurm gives a job when nothing names another


@dataclass(frozen=True)
class Limit:
    """A cap on the user's queued jobs, and which jobs count against it."""

    most: int
    named: str  # 'MaxSubmitJobs=50 of association research'
    account: str | None = None  # the jobs of this account count (None: of any)
    qos: str | None = None  # the jobs of this QOS count (None: of any)

    def counts(self, account: str, qos: str) -> bool:
        return (self.account is None or self.account == account) and (
            self.qos is None or self.qos == qos
        )


@dataclass(frozen=True)
class Association:
    account: str
    partition: str
    max_submit: int | None
    max_jobs: int | None
    qos: tuple[str, ...]
    default_qos: str


@dataclass(frozen=True)
class Limits:
    """What applies to one resource shape's jobs (its account and QOS)."""

    account: str
    qos: str
    submit: tuple[Limit, ...]  # caps on queued jobs
    running: tuple[Limit, ...]  # caps on running jobs (MaxJobs), said, not fed


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_associations(text: str) -> list[Association]:
    """`sacctmgr --noheader --parsable2 show assoc where user=U format=ASSOC_FORMAT`."""
    found = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 6:
            continue
        account, partition, submit, jobs, qos, default = parts[:6]
        found.append(
            Association(
                account.strip(),
                partition.strip(),
                _number(submit),
                _number(jobs),
                tuple(q for q in qos.strip().split(",") if q),
                default.strip(),
            )
        )
    return found


def parse_qos(text: str) -> dict[str, tuple[int | None, int | None]]:
    """`sacctmgr --noheader --parsable2 show qos format=QOS_FORMAT` -> name ->
    (MaxSubmitJobsPerUser, MaxJobsPerUser)."""
    found = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and parts[0].strip():
            found[parts[0].strip()] = (_number(parts[1]), _number(parts[2]))
    return found


def limits_for(
    associations: Sequence[Association],
    qos_limits: Mapping[str, tuple[int | None, int | None]],
    account: str | None,
    qos: str | None,
    partition: str | None,
) -> Limits:
    """The caps on one shape's jobs. Without resources.account, the user's associations
    all apply (the strictest wins: which is the default one sacctmgr does not say)."""
    rows = [
        a
        for a in associations
        if (account is None or a.account == account)
        and (not a.partition or partition is None or a.partition in partition.split(","))
    ]
    submit: list[Limit] = []
    running: list[Limit] = []
    for row in rows:
        where = f"association {row.account}" + (
            f" (partition {row.partition})" if row.partition else ""
        )
        if row.max_submit is not None:
            submit.append(
                Limit(row.max_submit, f"MaxSubmitJobs={row.max_submit} of {where}", row.account)
            )
        if row.max_jobs is not None:
            running.append(Limit(row.max_jobs, f"MaxJobs={row.max_jobs} of {where}", row.account))
    used_qos = qos or next((r.default_qos for r in rows if r.default_qos), DEFAULT_QOS)
    per_user_submit, per_user_jobs = qos_limits.get(used_qos, (None, None))
    if per_user_submit is not None:
        submit.append(
            Limit(
                per_user_submit,
                f"MaxSubmitJobsPerUser={per_user_submit} of QOS {used_qos}",
                qos=used_qos,
            )
        )
    if per_user_jobs is not None:
        running.append(
            Limit(per_user_jobs, f"MaxJobsPerUser={per_user_jobs} of QOS {used_qos}", qos=used_qos)
        )
    return Limits(
        account or (rows[0].account if rows else ""), used_qos, tuple(submit), tuple(running)
    )


def parse_queued(text: str) -> Counter[tuple[str, str]]:
    """`squeue --me --noheader --array --format=SQUEUE_FORMAT` -> (account, qos) -> jobs."""
    found: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        account, _, qos = line.strip().partition("|")
        if account or qos:
            found[(account, qos)] += 1
    return found


def room(limit: Limit, queued: Mapping[tuple[str, str], int]) -> int:
    """How many more jobs the limit lets the user queue now."""
    used = sum(n for (account, qos), n in queued.items() if limit.counts(account, qos))
    return max(0, limit.most - used)


def tasks_allowed(
    wanted: Iterable[tuple[int, Limits]], queued: Mapping[tuple[str, str], int]
) -> list[int]:
    """For each shape's wanted task count (shape, its limits), in order, how many of its
    tasks fit now; a limit that covers several shapes is shared, first come first served."""
    left: dict[Limit, int] = {}
    allowed = []
    for count, limits in wanted:
        fit = count
        for limit in limits.submit:
            left.setdefault(limit, room(limit, queued))
            fit = min(fit, left[limit])
        for limit in limits.submit:
            left[limit] -= fit
        allowed.append(fit)
    return allowed
