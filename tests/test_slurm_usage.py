"""What sacct says jobs were charged and used, fed literal sacct output of the test
cluster (Slurm 22.05), and the rule for what a run was charged."""

from __future__ import annotations

import pytest

from paddle_hpc.backend.charges import cost_line, run_charge, run_tasks, sharing
from paddle_hpc.core.manifest import RunEntry, Submission
from paddle_hpc.slurm.charge import Charge, attempts, charge, parse_usage
from paddle_hpc.slurm.parse import SACCT_FIELDS, USAGE_FIELDS, parse_sacct, task_rows
from paddle_hpc.slurm.usage import cpu_seconds, requested_mb, size_mb, tres, tres_count

HEADER = "|".join(SACCT_FIELDS)
USAGE = "|".join(USAGE_FIELDS)
# `sacct --allocations --duplicates`: task 0 of array 192 was requeued after 5 s and
# ran again for 30 s; task 1 ran once; task 2 is still pending.
ALLOCATIONS = f"""\
{HEADER}
192_0|193|REQUEUED|0:0|n1|2026-12-05T07:15:26|2026-12-05T07:15:31|5|debug|billing=2,cpu=2,gres/gpu=1,node=1|8000M|UNLIMITED|job
192_1|192|COMPLETED|0:0|n2|2026-12-05T07:15:26|2026-12-05T07:15:41|15|debug|billing=1,cpu=1,gres/gpu=1,node=1|8000M|10|job
192_0|193|COMPLETED|0:0|n[1-2]|2026-12-05T07:17:40|2026-12-05T07:18:10|30|debug|billing=4,cpu=4,gres/gpu=4,node=2|8000M|10|job
192_[2]|192|PENDING|0:0|None assigned|Unknown|Unknown|0|debug||8000M|Partition_Limit|job
"""
# `sacct --duplicates` (steps too): the job rows sum their steps' CPU time.
STEPS = f"""\
{USAGE}
192_0|193|REQUEUED|0:0|n1|2026-12-05T07:15:26|2026-12-05T07:15:31|5|debug|billing=2,cpu=2,gres/gpu=1,node=1|8000M|UNLIMITED|00:00.002||job
192_0.batch|193.batch|CANCELLED|0:15|n1|2026-12-05T07:15:26|2026-12-05T07:15:31|5||cpu=2,gres/gpu=1,mem=0,node=1|||00:00.002||
192_1|192|COMPLETED|0:0|n2|2026-12-05T07:15:26|2026-12-05T07:15:41|15|debug|billing=1,cpu=1,gres/gpu=1,node=1|8000M|10|00:12.500||job
192_1.batch|192.batch|COMPLETED|0:0|n2|2026-12-05T07:15:26|2026-12-05T07:15:41|15||cpu=1,gres/gpu=1,mem=0,node=1|||00:00.015|12280K|
192_1.0|192.0|COMPLETED|0:0|n2|2026-12-05T07:15:26|2026-12-05T07:15:41|15||cpu=1,gres/gpu=1,mem=0,node=1|||00:12.485|320628K|
192_0|193|RUNNING|0:0|n[1-2]|2026-12-05T07:17:40|Unknown|12|debug|billing=4,cpu=4,gres/gpu=4,node=2|8000M|10|00:00:00||job
192_[2]|192|PENDING|0:0|None assigned|Unknown|Unknown|0|debug||8000M|Partition_Limit|00:00:00||job
"""


def test_the_columns_of_usage() -> None:
    assert size_mb("320628K") == pytest.approx(313.11, abs=0.01)
    assert (size_mb("500M"), size_mb("16G"), size_mb("1.5G"), size_mb("")) == (
        500.0,
        16384.0,
        1536.0,
        None,
    )
    assert size_mb("1048576", default_unit="B") == 1.0  # MaxRSS without a unit is bytes
    assert size_mb("lots") is None
    found = tres("billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=1G,node=1")
    assert (tres_count(found, "gres/gpu"), tres_count(found, "cpu")) == (1, 2)
    assert tres_count(tres(""), "gres/gpu") == 0 and tres("junk,=3") == {}
    assert cpu_seconds("00:04.258") == pytest.approx(4.258)
    assert cpu_seconds("12:34:56") == 12 * 3600 + 34 * 60 + 56
    assert cpu_seconds("2-03:04:05.5") == 2 * 86400 + 3 * 3600 + 4 * 60 + 5.5
    assert cpu_seconds("") is None and cpu_seconds("INVALID") is None
    assert requested_mb("16000M", cpus=4, nodes=2) == 8000.0  # the job's, on 2 nodes
    assert requested_mb("4000Mn", cpus=4, nodes=2) == 4000.0
    assert requested_mb("2000Mc", cpus=4, nodes=2) == 4000.0  # per CPU, 2 CPUs a node
    assert requested_mb("", cpus=1, nodes=1) is None


def test_sacct_rows_carry_what_was_allocated_and_used() -> None:
    rows = parse_sacct(STEPS)
    first = rows[0]
    assert (first.gpus, first.cpus, first.req_mem_mb, first.time_limit_min) == (1, 2, 8000.0, None)
    assert rows[4].max_rss_mb == pytest.approx(313.11, abs=0.01)
    assert rows[2].total_cpu_s == pytest.approx(12.5) and rows[2].time_limit_min == 10
    assert rows[-1].time_limit_min is None  # 'Partition_Limit' while pending


def test_a_sacct_txt_saved_before_the_usage_columns_still_reads() -> None:
    old = (
        "JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName\n"
        "13_7|20|TIMEOUT|0:15|gpu08|2026-11-23T11:00:00|2026-11-23T12:00:01|3601|debug|x\n"
    )
    (row,) = parse_sacct(old)
    assert (row.state, row.elapsed_s, row.gpus, row.total_cpu_s) == ("TIMEOUT", 3601, 0, None)


def test_each_requeue_is_an_allocation_and_steps_say_what_ended_ones_used() -> None:
    records = parse_sacct(ALLOCATIONS)
    assert task_rows(records)[(192, 0)].state == "COMPLETED"  # the latest run of the task
    found = attempts(records, parse_usage(STEPS))
    assert sorted(found) == [(192, 0), (192, 1)]  # the pending task has no allocation yet
    requeued, again = found[(192, 0)]
    assert (requeued.state, requeued.total_cpu_s) == ("REQUEUED", pytest.approx(0.002))
    # the steps were read while it ran: what it used once it ended is not known yet
    assert (again.state, again.total_cpu_s, again.max_rss_mb) == ("COMPLETED", None, None)
    (once,) = found[(192, 1)]
    assert once.total_cpu_s == pytest.approx(12.5)
    assert once.max_rss_mb == pytest.approx(313.11, abs=0.01)  # the larger step's
    assert charge(found[(192, 0)]) == Charge(
        gpu_s=1 * 5 + 4 * 30, cpu_s=2 * 5 + 4 * 30, allocations=2
    )


def run(run_id: str, job: int | None, task: int | None, *earlier: tuple[int, int]) -> RunEntry:
    return RunEntry(
        run_id,
        0,
        (),
        {},
        0,
        job,
        task,
        submissions=tuple(Submission(j, t, "FAILED", 1) for j, t in earlier),
    )


def test_a_run_is_charged_for_every_allocation_and_its_share_of_a_packed_task() -> None:
    found = attempts(parse_sacct(ALLOCATIONS))
    retried = run("r0", 300, 0, (192, 0))  # retried as task 0 of array 300, never started
    packed = [run("p0", 192, 1), run("p1", 192, 1)]  # two trials in task 192_1
    shares = sharing([retried, *packed])
    assert run_tasks(retried) == [(192, 0), (300, 0)]
    assert run_charge(retried, found, shares) == Charge(125, 130, 2)
    assert run_charge(packed[0], found, shares) == Charge(7.5, 7.5, 0.5)
    assert run_charge(run("n", None, None), found, shares) == Charge()
    total = [run_charge(r, found, shares) for r in (retried, *packed)]
    assert cost_line(total) == "charged so far: 0.039 GPU-hours, 0.04 CPU-hours (3 allocations)"
    assert cost_line([]) is None
