"""The Slurm seam: every sbatch, sacct, scontrol and scancel call goes through here.

Commands are argv lists built by pure functions; one injected runner runs them;
pure parsers read the output; failures become typed errors with Slurm's own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from paddle_hpc.core.errors import ConfigError, SlurmUnavailableError
from paddle_hpc.slurm import queue
from paddle_hpc.slurm.failures import classify_error
from paddle_hpc.slurm.parse import (
    SACCT_FIELDS,
    SINFO_FORMAT,
    USAGE_FIELDS,
    Partition,
    SacctRecord,
    max_array_size,
    parse_sacct,
    parse_sbatch_output,
    parse_scontrol_config,
    parse_sinfo_partitions,
)
from paddle_hpc.slurm.pending import PENDING_FORMAT, Estimate, parse_test_only
from paddle_hpc.slurm.runner import CommandResult, Runner, SubprocessRunner

OptionValue = str | int | float | bool | None

_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def sbatch_options(options: Mapping[str, OptionValue]) -> list[str]:
    """{'cpus_per_task': 4, 'exclusive': True} -> ['--cpus-per-task=4', '--exclusive'].

    Underscores become dashes, as in submitit. True gives a bare flag; False and None
    leave the option out. Values are passed as single argv items, never through a shell.
    """
    argv = []
    for name, value in options.items():
        if not _OPTION_NAME.fullmatch(name):
            raise ConfigError(
                f"sbatch option name {name!r} is not an option name: use letters, digits, "
                "'-' or '_' without the leading '--' (for example 'mail-type')."
            )
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        else:
            text = str(value)
            if "\n" in text or "\r" in text:
                raise ConfigError(
                    f"sbatch option {name!r} has a line break in {text!r}; remove it."
                )
            argv.append(f"{flag}={text}")
    return argv


def sbatch_argv(script: Path, options: Mapping[str, OptionValue]) -> list[str]:
    return ["sbatch", "--parsable", *sbatch_options(options), str(script)]


def sacct_argv(job_ids: Iterable[int | str], *, steps: bool = False) -> list[str]:
    """Each allocation of the jobs (each earlier run of a requeued one too, oldest first:
    --duplicates); with steps, each one's steps after it, which say what it used."""
    fields = USAGE_FIELDS if steps else SACCT_FIELDS
    argv = ["sacct", "--parsable2", "--duplicates", f"--format={','.join(fields)}"]
    if not steps:
        argv.append("--allocations")
    argv.append("--jobs=" + ",".join(str(job) for job in job_ids))
    return argv


def scancel_argv(job_ids: Iterable[int | str]) -> list[str]:
    # --verbose: without it scancel says nothing, and exits 0, for an unknown job id.
    return ["scancel", "--verbose", *(str(job) for job in job_ids)]


def requeue_argv(job: str) -> list[str]:
    return ["scontrol", "requeue", job]


class SlurmClient:
    """Slurm's commands as methods. Pass a runner to point them elsewhere in tests."""

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner: Runner = runner or SubprocessRunner()

    def _run(self, argv: Sequence[str], *, stdin: str | None = None) -> CommandResult:
        result = self._runner(argv, stdin=stdin)
        if result.returncode != 0:
            raise classify_error(argv, result.returncode, result.stderr)
        return result

    def submit(self, script: Path, options: Mapping[str, OptionValue] | None = None) -> int:
        """Submits a batch script; returns the job id (an array's id for arrays)."""
        result = self._run(sbatch_argv(script, options or {}))
        return parse_sbatch_output(result.stdout)

    def sacct(self, job_ids: Iterable[int | str], *, steps: bool = False) -> list[SacctRecord]:
        """One sacct call for all the given jobs. A job Slurm has not yet recorded is absent."""
        return parse_sacct(self.sacct_text(job_ids, steps=steps))

    def ended_before(self, job: str) -> str | None:
        """How the last run of a requeued job (or array task, '12_3') before the current
        one ended, by Slurm's accounting: NODE_FAIL, PREEMPTED, REQUEUED, ..."""
        records = parse_sacct(self._run(sacct_argv([job])).stdout)
        earlier = [r.state for r in records if r.ref.step is None][:-1]
        return earlier[-1] if earlier else None

    def sacct_text(self, job_ids: Iterable[int | str], *, steps: bool = False) -> str:
        """sacct's own output for the jobs (what `parse_sacct` reads), '' for none."""
        ids = list(job_ids)
        if not ids:
            return ""
        return self._run(sacct_argv(ids, steps=steps)).stdout

    def show_config(self) -> dict[str, str]:
        return parse_scontrol_config(self._run(["scontrol", "show", "config"]).stdout)

    def partitions(self) -> dict[str, Partition]:
        """Every partition, with what it can give one job at the most."""
        argv = ["sinfo", "--noheader", f"--format={SINFO_FORMAT}"]
        return parse_sinfo_partitions(self._run(argv).stdout)

    def associations(self, user: str) -> str:
        """sacctmgr's rows of the user's associations, with the limits they inherit."""
        argv = ["sacctmgr", "--noheader", "--parsable2", "show", "assoc", "where", f"user={user}"]
        return self._run([*argv, f"format={queue.ASSOC_FORMAT}"]).stdout

    def qos_limits(self) -> str:
        argv = ["sacctmgr", "--noheader", "--parsable2", "show", "qos"]
        return self._run([*argv, f"format={queue.QOS_FORMAT}"]).stdout

    def queued(self) -> str:
        """Each of the user's pending or running jobs (array tasks one by one)."""
        argv = ["squeue", "--me", "--noheader", "--array", f"--format={queue.SQUEUE_FORMAT}"]
        return self._run(argv).stdout

    def pending_jobs(self) -> str:
        """The user's pending jobs (an array's pending tasks on one line, however many):
        why each waits, and when Slurm expects it to start (pending.PENDING_FORMAT)."""
        argv = ["squeue", "--me", "--noheader", "--states=PENDING"]
        return self._run([*argv, f"--format={PENDING_FORMAT}"]).stdout

    def will_start(self, script: Path, partition: str | None) -> Estimate:
        """When the batch script would start, in `partition` (None: as the script says),
        by `sbatch --test-only`, which submits nothing."""
        argv = ["sbatch", "--test-only", *sbatch_options({"partition": partition}), str(script)]
        result = self._runner(argv)
        if result.returncode != 0:
            error = classify_error(argv, result.returncode, result.stderr)
            if isinstance(error, SlurmUnavailableError):
                raise error
        return parse_test_only(result.stderr, partition or "")

    def max_array_size(self) -> int:
        return max_array_size(self.show_config())

    def ping(self) -> bool:
        """True when the controller answers."""
        result = self._runner(["scontrol", "ping"])
        return result.returncode == 0 and "UP" in result.stdout

    def requeue(self, job: str) -> None:
        """Puts a job or array task ('12_3') back in the queue; it keeps its id."""
        self._run(requeue_argv(job))

    def cancel(self, job_ids: Iterable[int | str]) -> None:
        """scancel of jobs, arrays ('12') or array tasks ('12_3')."""
        ids = list(job_ids)
        if not ids:
            return
        argv = scancel_argv(ids)
        result = self._run(argv)
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        if errors:
            raise classify_error(argv, result.returncode, "\n".join(errors))
