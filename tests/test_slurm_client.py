"""The Slurm client's argv building and error mapping, without a cluster."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from paddle_hpc.core.errors import (
    ConfigError,
    SlurmRejectedError,
    SlurmUnavailableError,
    UnknownJobError,
)
from paddle_hpc.slurm import CommandResult, SlurmClient, SubprocessRunner, sbatch_options
from paddle_hpc.slurm.client import sacct_argv, sbatch_argv
from paddle_hpc.slurm.executor import submitit_command


class RecordingRunner:
    """Answers with canned results, in order, and records each argv it was given."""

    def __init__(self, *answers: tuple[int, str, str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> CommandResult:
        self.calls.append(tuple(argv))
        code, out, err = self.answers.pop(0)
        return CommandResult(tuple(argv), code, out, err)


def test_sbatch_options_are_single_argv_items() -> None:
    ugly = "a b 'c' \"d\" $(touch /tmp/pwned) `id`; rm -rf /"
    assert sbatch_options(
        {"cpus_per_task": 4, "exclusive": True, "requeue": False, "qos": None, "job-name": ugly}
    ) == ["--cpus-per-task=4", "--exclusive", f"--job-name={ugly}"]


@pytest.mark.parametrize("name", ["--partition", "", "a b", "x;y", "9lives"])
def test_sbatch_option_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigError, match="option name"):
        sbatch_options({name: "x"})


def test_sbatch_option_values_cannot_break_lines() -> None:
    with pytest.raises(ConfigError, match="'comment' has a line break"):
        sbatch_options({"comment": "one\n#SBATCH --partition=urgent"})


def test_argv_shapes() -> None:
    assert sbatch_argv(Path("/tmp/a b.sh"), {"array": "0-9%2"}) == [
        "sbatch",
        "--parsable",
        "--array=0-9%2",
        "/tmp/a b.sh",
    ]
    argv = sacct_argv([12, "13_4"])
    assert argv[0] == "sacct" and "--parsable2" in argv and "--allocations" in argv
    assert "--duplicates" in argv  # a requeued task's earlier runs count too
    assert argv[-1] == "--jobs=12,13_4"
    assert "--allocations" not in sacct_argv([1], steps=True)


def test_submit_returns_the_job_id() -> None:
    runner = RecordingRunner((0, "77\n", ""))
    assert SlurmClient(runner).submit(Path("job.sh"), {"nodes": 2}) == 77
    assert runner.calls == [("sbatch", "--parsable", "--nodes=2", "job.sh")]


def test_submit_rejected_carries_slurms_message() -> None:
    stderr = "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    client = SlurmClient(RecordingRunner((1, "", stderr)))
    with pytest.raises(SlurmRejectedError) as info:
        client.submit(Path("job.sh"), {"partition": "nope"})
    assert info.value.slurm_message == stderr.strip()
    assert "--partition=nope" in str(info.value)


def test_sacct_of_nothing_runs_nothing() -> None:
    runner = RecordingRunner()
    assert SlurmClient(runner).sacct([]) == []
    assert runner.calls == []


def test_cancel_unknown_job_is_an_error_even_with_exit_code_zero() -> None:
    # scancel --verbose exits 0 for an unknown id; only its stderr says so.
    stderr = (
        "scancel: Terminating job 999999\n"
        "scancel: error: Kill job error on job id 999999: Invalid job id specified\n"
    )
    with pytest.raises(UnknownJobError, match="999999"):
        SlurmClient(RecordingRunner((0, "", stderr))).cancel([999999])


def test_missing_tools_are_a_typed_error(tmp_path: Path) -> None:
    client = SlurmClient(SubprocessRunner(env={"PATH": str(tmp_path)}))
    with pytest.raises(SlurmUnavailableError, match="`scontrol` is not on the PATH"):
        client.show_config()


# `sacct --duplicates` of an array task Slurm requeued after a preemption (the test
# cluster's own output; the second run was then cancelled while pending)
REQUEUED = """\
JobID|JobIDRaw|State|ExitCode|NodeList|Start|End|ElapsedRaw|Partition|JobName
46_0|46|PREEMPTED|0:0|n[1-2]|2026-11-23T22:51:11|2026-11-23T22:51:38|27|debug|stubborn
46_0|46|CANCELLED by 0|0:0|None assigned|None|2026-11-23T22:52:16|0|debug|stubborn
"""


def test_how_the_run_before_a_requeue_ended() -> None:
    runner = RecordingRunner((0, REQUEUED, ""), (0, REQUEUED.splitlines()[0] + "\n", ""))
    client = SlurmClient(runner)
    assert client.ended_before("46_0") == "PREEMPTED"
    assert client.ended_before("47_1") is None  # never requeued: nothing before
    assert "--duplicates" in runner.calls[0] and runner.calls[0][-1] == "--jobs=46_0"


def test_the_nodes_python_starts_deaf_to_an_early_stop_signal(tmp_path: Path) -> None:
    """Slurm's USR2 can come while a task's Python starts; ignored until the node runner
    handles it, it cannot end the task. The script's own command, a probe in place of
    submitit's entry point."""
    folder = tmp_path / "a b 'c' $(touch pwned)"
    argv = shlex.split(submitit_command(sys.executable, folder))
    assert argv[-4:] == ["-u", "-m", "paddle_hpc.node.unpack", str(folder)]
    probe = "import os, signal; os.kill(os.getpid(), signal.SIGUSR2); print('still here')"
    done = subprocess.run(
        [*argv[:-3], "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "still here\n"), done.stderr
    assert not (tmp_path / "pwned").exists()
