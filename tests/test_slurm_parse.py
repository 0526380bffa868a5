"""The Slurm parsers, fed literal Slurm 22.05 output (copied from the test cluster)."""

from __future__ import annotations

from datetime import datetime

import pytest

from paddle_hpc.core.errors import (
    SlurmError,
    SlurmRejectedError,
    SlurmUnavailableError,
    UnknownJobError,
)
from paddle_hpc.slurm.failures import classify_error
from paddle_hpc.slurm.parse import (
    JobRef,
    Partition,
    expand_nodelist,
    gres_gpus,
    max_array_size,
    memory_mb,
    parse_int_ranges,
    parse_job_id,
    parse_sacct,
    parse_sbatch_output,
    parse_scontrol_config,
    parse_sinfo_partitions,
)

SACCT = """\
JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName
1_0|2|COMPLETED|0:0|n[1-2]|2026-11-23T10:53:03|2026-11-23T10:53:03|0|debug|job.sh
1_0.batch|2.batch|COMPLETED|0:0|n1|2026-11-23T10:53:03|2026-11-23T10:53:03|0||batch
1_0.0|2.0|COMPLETED|0:0|n[1-2]|2026-11-23T10:53:03|2026-11-23T10:53:03|0||bash
3|3|FAILED|1:0|None assigned|2026-11-23T10:53:25|2026-11-23T10:53:25|0|debug|t.sh
4|4|CANCELLED by 0|0:0|None assigned|None|2026-11-23T10:53:29|0|debug|t.sh
5_[0-9%2]|5|CANCELLED by 0|0:0|None assigned|None|2026-11-23T10:53:29|0|debug|t.sh
12_[4-6,9]|12|PENDING|0:0|None assigned|Unknown|Unknown|0|urgent|a|b name
13_7|20|TIMEOUT|0:15|gpu[08-10]|2026-11-23T11:00:00|2026-11-23T12:00:01|3601|debug|x
"""


def test_sacct_rows_array_tasks_steps_and_states() -> None:
    rows = parse_sacct(SACCT)
    assert [r.ref for r in rows[:3]] == [
        JobRef(1, (0,)),
        JobRef(1, (0,), step="batch"),
        JobRef(1, (0,), step="0"),
    ]
    first = rows[0]
    assert (first.job_id_raw, first.state, first.exit_code, first.signal) == (2, "COMPLETED", 0, 0)
    assert first.nodes == ("n1", "n2")
    assert first.start == datetime(2026, 11, 23, 10, 53, 3)
    assert rows[3].state == "FAILED" and rows[3].exit_code == 1 and rows[3].nodes == ()
    cancelled = rows[4]
    assert (cancelled.state, cancelled.state_detail, cancelled.start) == ("CANCELLED", "by 0", None)
    assert rows[5].ref == JobRef(5, tuple(range(10)), throttle=2)
    pending = rows[6]
    assert pending.ref.tasks == (4, 5, 6, 9) and pending.ref.task is None
    assert pending.name == "a|b name"  # a '|' in the last column survives
    assert pending.start is None and pending.end is None
    timeout = rows[7]
    assert (timeout.ref.task, timeout.job_id_raw, timeout.signal) == (7, 20, 15)
    assert timeout.nodes == ("gpu08", "gpu09", "gpu10") and timeout.elapsed_s == 3601


def test_sacct_empty_and_header_only() -> None:
    assert parse_sacct("") == []
    assert parse_sacct(SACCT.splitlines()[0] + "\n") == []


def test_sacct_rejects_other_columns_and_short_rows() -> None:
    with pytest.raises(ValueError, match="unexpected sacct header"):
        parse_sacct("JobID|State\n1|RUNNING\n")
    header = SACCT.splitlines()[0]
    with pytest.raises(ValueError, match="has 3 fields"):
        parse_sacct(header + "\n1|1|RUNNING\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", JobRef(12)),
        ("12_3", JobRef(12, (3,))),
        ("12_[4-9%2]", JobRef(12, (4, 5, 6, 7, 8, 9), throttle=2)),
        ("12_[0,3-4]", JobRef(12, (0, 3, 4))),
        ("12_[0-6:3]", JobRef(12, (0, 3, 6))),
        ("12_3.batch", JobRef(12, (3,), step="batch")),
        ("12_3.extern", JobRef(12, (3,), step="extern")),
        ("12.0", JobRef(12, step="0")),
        ("7+1", JobRef(7)),
        (" 44 ", JobRef(44)),
    ],
)
def test_job_ids(text: str, expected: JobRef) -> None:
    assert parse_job_id(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12_", "12_[", "12_[4-2]", "_3", "12_3_4"])
def test_bad_job_ids(text: str) -> None:
    with pytest.raises(ValueError):
        parse_job_id(text)


def test_int_ranges() -> None:
    assert parse_int_ranges("0-3,7,10-14:2") == (0, 1, 2, 3, 7, 10, 12, 14)
    for bad in ("1-", "a", "5-1", "0-4:0"):
        with pytest.raises(ValueError):
            parse_int_ranges(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n1", ["n1"]),
        ("n[1-2]", ["n1", "n2"]),
        ("n[1-2,5]", ["n1", "n2", "n5"]),
        ("n1,n2", ["n1", "n2"]),
        ("gpu[08-10],cpu3", ["gpu08", "gpu09", "gpu10", "cpu3"]),
        ("r[1-2]-n[1-2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),
        ("node-a[7]", ["node-a7"]),
        ("None assigned", []),
        ("(null)", []),
        ("", []),
    ],
)
def test_nodelists(text: str, expected: list[str]) -> None:
    assert expand_nodelist(text) == expected


@pytest.mark.parametrize("text", ["n[1-2", "n1-2]", "n[2-1]", "n[a-b]", "n[]"])
def test_bad_nodelists(text: str) -> None:
    with pytest.raises(ValueError):
        expand_nodelist(text)


SCONTROL_CONFIG = """\
Configuration data as of 2026-11-23T10:55:07
AccountingStorageBackupHost = (null)
ClusterName             = paddlehpc
MaxArraySize            = 1001
SlurmctldParameters     = preempt_send_user_signal
TCPTimeout              = 2 sec

Cgroup Support Configuration:
CgroupMountpoint        = /sys/fs/cgroup
MCS plugin parameters are:
ClusterName             = shadowed

Slurmctld(primary) at vm is UP
"""


def test_scontrol_config() -> None:
    config = parse_scontrol_config(SCONTROL_CONFIG)
    assert config["MaxArraySize"] == "1001"
    assert config["ClusterName"] == "paddlehpc"  # the first value wins
    assert config["TCPTimeout"] == "2 sec"
    assert config["CgroupMountpoint"] == "/sys/fs/cgroup"
    assert "Slurmctld(primary) at vm is UP" not in config
    assert max_array_size(config) == 1001
    assert max_array_size({}) == 1001
    with pytest.raises(ValueError, match="MaxArraySize"):
        max_array_size({"MaxArraySize": "lots"})


@pytest.mark.parametrize(
    ("text", "job"),
    [("42\n", 42), ("42;paddlehpc\n", 42), ("Submitted batch job 7\n", 7)],
)
def test_sbatch_output(text: str, job: int) -> None:
    assert parse_sbatch_output(text) == job


def test_sbatch_output_without_id() -> None:
    with pytest.raises(ValueError, match="no job id"):
        parse_sbatch_output("sbatch: warning: something\n")


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            "sbatch: error: invalid partition specified: nope\n"
            "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
            SlurmRejectedError,
        ),
        ("sbatch: unrecognized option '--bogus-opt'\nTry \"sbatch --help\"\n", SlurmRejectedError),
        (
            "sbatch: error: Batch job submission failed: Invalid job array specification\n",
            SlurmRejectedError,
        ),
        ("sbatch: error: Invalid --time specification\n", SlurmRejectedError),
        (
            "scancel: error: Kill job error on job id 999999: Invalid job id specified\n",
            UnknownJobError,
        ),
        ("slurm_load_jobs error: Invalid job id specified\n", UnknownJobError),
        ("sacct: fatal: Bad job/step specified: abc\n", UnknownJobError),
        (
            "slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)\n",
            SlurmUnavailableError,
        ),
        (
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
            "(connect failure)\n",
            SlurmUnavailableError,
        ),
        ("something else entirely\n", SlurmError),
    ],
)
def test_classify_error(stderr: str, kind: type[SlurmError]) -> None:
    error = classify_error(["sbatch", "x.sh"], 1, stderr)
    assert type(error) is kind
    assert error.slurm_message == stderr.strip()
    assert stderr.strip() in str(error) and "sbatch x.sh" in str(error)
    assert error.argv == ("sbatch", "x.sh") and error.returncode == 1


def test_classify_error_without_message() -> None:
    error = classify_error(["scontrol", "ping"], 3, "")
    assert "exit code 3" in str(error)


def test_sinfo_partitions_with_nodes_of_two_kinds() -> None:
    text = (
        "debug*|2|4|8000|gpu:2|infinite|1-infinite\n"
        "gpu|3|32|256000|gpu:a100:4(S:0-1),shard:8|2-00:00:00|1-2\n"
        "gpu|1|64+|512000|gpu:a100:8|2-00:00:00|1-2\n"
        "cpu|4|16|64000|(null)|30:00|1-infinite\n"
        "broken line\n"
        "bad|x|4|1|(null)|infinite|1-2\n"
    )
    found = parse_sinfo_partitions(text)
    assert sorted(found) == ["cpu", "debug", "gpu"]
    assert found["debug"] == Partition("debug", True, 2, None, 4, 8000, 2, None)
    assert found["gpu"] == Partition("gpu", False, 4, 2, 64, 512000, 8, 2880)
    assert found["cpu"].gpus == 0 and found["cpu"].max_minutes == 30


@pytest.mark.parametrize(
    ("text", "gpus"),
    [("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu:1,gpu:v100:2", 3), ("(null)", 0), ("", 0)],
)
def test_gres_gpus(text: str, gpus: int) -> None:
    assert gres_gpus(text) == gpus


@pytest.mark.parametrize(
    ("text", "mb"),
    [("16G", 16384), ("500M", 500), ("16000", 16000), ("2T", 2097152), ("1024K", 1), ("x", None)],
)
def test_memory_mb(text: str, mb: int | None) -> None:
    assert memory_mb(text) == mb
