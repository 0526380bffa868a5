"""The caps on a user's queued jobs (sacctmgr's and squeue's own text) and which runs fit."""

from __future__ import annotations

from collections import Counter

from paddle_hpc.backend.feed import Fitter, is_queue_cap
from paddle_hpc.core.errors import SubmissionError
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.queue import (
    Limit,
    Limits,
    limits_for,
    parse_associations,
    parse_qos,
    parse_queued,
    room,
    tasks_allowed,
)
from tests.test_slurm_client import RecordingRunner

# sacctmgr --noheader --parsable2 show assoc where user=ada format=ASSOC_FORMAT, as a
# site prints it: limits inherited from the account, a partition-only row, blank fields.
ASSOC = """\
physics||||normal,long|normal
physics|gpu|200|20|normal|normal
chem||||normal|
"""
QOS = """\
normal|||
long|50|10|
debug|5||
"""


def test_associations_and_qos_are_read_as_sacctmgr_prints_them() -> None:
    rows = parse_associations(ASSOC + "garbage line\n\n")
    assert [(r.account, r.partition, r.max_submit, r.max_jobs) for r in rows] == [
        ("physics", "", None, None),
        ("physics", "gpu", 200, 20),
        ("chem", "", None, None),
    ]
    assert rows[0].qos == ("normal", "long") and rows[0].default_qos == "normal"
    assert parse_qos(QOS) == {"normal": (None, None), "long": (50, 10), "debug": (5, None)}


def test_the_caps_of_a_shape_follow_its_account_partition_and_qos() -> None:
    rows, qos = parse_associations(ASSOC), parse_qos(QOS)
    gpu = limits_for(rows, qos, "physics", None, "gpu")
    assert [c.named for c in gpu.submit] == [
        "MaxSubmitJobs=200 of association physics (partition gpu)"
    ]
    assert [c.named for c in gpu.running] == ["MaxJobs=20 of association physics (partition gpu)"]
    cpu = limits_for(rows, qos, "physics", None, "cpu")
    assert cpu.submit == () and cpu.qos == "normal"
    long = limits_for(rows, qos, "chem", "long", None)
    assert [(c.most, c.qos, c.account) for c in long.submit] == [(50, "long", None)]
    assert [c.named for c in long.running] == ["MaxJobsPerUser=10 of QOS long"]


def test_room_counts_only_the_jobs_a_cap_covers() -> None:
    queued = parse_queued("physics|normal\nphysics|long\nchem|long\nchem|long\n\n")
    assert queued == Counter(
        {("physics", "normal"): 1, ("physics", "long"): 1, ("chem", "long"): 2}
    )
    assert room(Limit(50, "q", qos="long"), queued) == 47
    assert room(Limit(2, "a", account="physics"), queued) == 0
    assert room(Limit(1, "a", account="physics"), queued) == 0  # over it: none, not negative


def test_shapes_under_one_cap_share_its_room_in_order() -> None:
    cap = Limit(10, "MaxSubmitJobsPerUser=10 of QOS long", qos="long")
    other = Limit(3, "MaxSubmitJobs=3 of association chem", account="chem")
    long, chem = Limits("physics", "long", (cap,), ()), Limits("chem", "long", (cap, other), ())
    queued = Counter({("physics", "long"): 4})
    assert tasks_allowed([(5, long), (5, chem)], queued) == [5, 1]
    assert tasks_allowed([(2, long), (5, chem)], queued) == [2, 3]
    free = Limits("", "normal", (), ())
    assert tasks_allowed([(7, free)], queued) == [7]


def runs(count: int, shape: int = 0) -> list[RunEntry]:
    return [RunEntry(f"r{shape}-{i}", i, (), {}, shape) for i in range(count)]


def manifest(*shapes: dict[str, str | None]) -> Manifest:
    return Manifest(
        "m", "now", (), "slurm", (), tuple({"resources": r} for r in shapes), tuple(runs(0))
    )


def test_the_fitter_submits_what_the_qos_cap_leaves_room_for() -> None:
    runner = RecordingRunner(
        (0, "AccountingStorageEnforce = associations,limits\nMaxArraySize = 1001\n", ""),
        (0, "research||||normal,fed|normal\n", ""),
        (0, "normal|||\nfed|50||\n", ""),
        (0, "research|fed\n" * 20 + "research|normal\n" * 7, ""),
    )
    fit = Fitter(SlurmClient(runner))
    todo = runs(300)
    now, caps = fit(manifest({"qos": "fed", "account": None, "partition": None}), todo, 1)
    assert [r.run_id for r in now] == [r.run_id for r in todo[:30]]
    assert caps == ("MaxSubmitJobsPerUser=50 of QOS fed",)
    assert runner.calls[1][:5] == ("sacctmgr", "--noheader", "--parsable2", "show", "assoc")
    assert runner.calls[3][:2] == ("squeue", "--me")


def test_packed_runs_fit_by_tasks_not_runs() -> None:
    runner = RecordingRunner(
        (0, "AccountingStorageEnforce = limits\n", ""),
        (0, "research||4||normal|normal\n", ""),
        (0, "normal|||\n", ""),
        (0, "research|normal\n", ""),
    )
    fit = Fitter(SlurmClient(runner))
    now, _ = fit(manifest({"qos": None, "account": None, "partition": None}), runs(20), 4)
    assert len(now) == 12  # 3 tasks of 4 trials


def test_without_enforced_limits_everything_fits_and_squeue_is_not_asked() -> None:
    runner = RecordingRunner((0, "AccountingStorageEnforce = none\n", ""))
    fit = Fitter(SlurmClient(runner))
    todo = runs(5000)
    now, caps = fit(manifest({"qos": None, "account": None, "partition": None}), todo, 1)
    assert (len(now), caps, len(runner.calls)) == (5000, (), 1)


def test_a_refusal_for_the_queue_cap_is_told_apart() -> None:
    refused = (
        "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
        "(job submit limit, user's size and/or time limits)"
    )
    assert is_queue_cap(SubmissionError(f"submitting x failed: {refused}"))
    assert not is_queue_cap(
        SubmissionError("submitting x failed: Invalid partition name specified")
    )


def test_caps_that_cannot_be_read_are_said_and_the_runs_submitted() -> None:
    runner = RecordingRunner(
        (0, "AccountingStorageEnforce = associations,limits\n", ""),
        (1, "", "sacctmgr: error: Problem talking to the database: Connection refused"),
    )
    fit = Fitter(SlurmClient(runner))
    now, caps = fit(manifest({"qos": None, "account": None, "partition": None}), runs(3), 1)
    assert (len(now), caps) == (3, ())
    assert fit(manifest({}), [], 1) == ([], ())  # nothing to fit: Slurm is not asked
    assert len(runner.calls) == 2
