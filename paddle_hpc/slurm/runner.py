"""The one place that starts Slurm's command-line tools.

A runner takes an argv list and returns a `CommandResult`; `SlurmClient` takes one as
an argument, so tests can run the real tools against another config (via `env`)
without patching `subprocess`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from paddle_hpc.core.errors import SlurmUnavailableError


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> CommandResult: ...


@dataclass(frozen=True)
class SubprocessRunner:
    """Runs a command without a shell. `env`, when given, replaces the environment."""

    timeout_s: float = 120.0
    env: Mapping[str, str] | None = None

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> CommandResult:
        command = " ".join(argv)
        try:
            proc = subprocess.run(  # noqa: S603 - argv list, no shell
                list(argv),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
                env=None if self.env is None else dict(self.env),
            )
        except FileNotFoundError as exc:
            raise SlurmUnavailableError(
                f"`{argv[0]}` is not on the PATH, so Slurm cannot be reached from here. "
                "Run on a login node of your cluster, or start the test cluster with `slurm/up`.",
                argv=argv,
                returncode=None,
                slurm_message=str(exc),
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailableError(
                f"`{command}` did not answer within {self.timeout_s:.0f}s: the Slurm "
                "controller is overloaded or down. Check `scontrol ping` and try again.",
                argv=argv,
                returncode=None,
                slurm_message="",
            ) from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
