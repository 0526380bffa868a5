"""One error hierarchy. Messages name the key, the run and the fix.

Library code raises these; only the command-line layer turns them into exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence


class PaddleHpcError(Exception):
    """Base of every error paddle_hpc raises on purpose."""


class ConfigError(PaddleHpcError):
    """A config key, value or sweep expression is wrong; nothing was submitted."""


class SubmissionError(PaddleHpcError):
    """A sweep could not be submitted as planned."""


class SlurmError(PaddleHpcError):
    """A Slurm command failed. `slurm_message` is Slurm's own text, unchanged."""

    def __init__(
        self, message: str, *, argv: Sequence[str], returncode: int | None, slurm_message: str
    ) -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.slurm_message = slurm_message


class SlurmUnavailableError(SlurmError):
    """Slurm's tools are missing, or the controller does not answer."""


class SlurmRejectedError(SlurmError):
    """Slurm refused a request: a bad option, partition, resource request, array spec."""


class UnknownJobError(SlurmError):
    """Slurm does not know the job id."""
