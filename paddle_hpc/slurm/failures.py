"""A failed Slurm command as paddle_hpc's typed error: the controller does not answer,
the job is unknown, or the submission was rejected; Slurm's own words are kept."""

from __future__ import annotations

from collections.abc import Sequence

from paddle_hpc.core.errors import (
    SlurmError,
    SlurmRejectedError,
    SlurmUnavailableError,
    UnknownJobError,
)

_UNAVAILABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted",
    "slurm_persist_conn_open",
    "Munge encode failed",
    "Could not establish a configuration source",
    "Unable to establish controller machine",
)
_UNKNOWN_JOB = ("Invalid job id", "Bad job/step specified")
_REJECTED = (
    "Batch job submission failed",
    "unrecognized option",
    "invalid option",
    "invalid partition",
    "Invalid --",
    "invalid --",
    "error: Invalid",
    'Try "sbatch --help"',
)


def classify_error(argv: Sequence[str], returncode: int | None, stderr: str) -> SlurmError:
    """Turns a failed Slurm command into the typed error, keeping Slurm's own words."""
    message = stderr.strip() or f"exit code {returncode} and no message"
    command = " ".join(argv)
    if any(marker in message for marker in _UNAVAILABLE):
        return SlurmUnavailableError(
            f"Slurm's controller does not answer `{command}`: {message}\n"
            "Check `scontrol ping` (for the test cluster: `slurm/status`, then `slurm/up`).",
            argv=argv,
            returncode=returncode,
            slurm_message=message,
        )
    if any(marker in message for marker in _UNKNOWN_JOB):
        return UnknownJobError(
            f"Slurm does not know the job in `{command}`: {message}\n"
            "Check the id with `squeue --me` or `sacct -X`.",
            argv=argv,
            returncode=returncode,
            slurm_message=message,
        )
    if any(marker in message for marker in _REJECTED):
        return SlurmRejectedError(
            f"Slurm rejected `{command}`: {message}\n"
            "Fix the option it names (see `man sbatch`, and `sinfo -s` for partitions).",
            argv=argv,
            returncode=returncode,
            slurm_message=message,
        )
    return SlurmError(
        f"`{command}` failed (exit code {returncode}): {message}",
        argv=argv,
        returncode=returncode,
        slurm_message=message,
    )
