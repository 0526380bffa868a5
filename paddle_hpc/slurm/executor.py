"""submitit's SlurmExecutor with its sbatch call routed through the Slurm seam.

submitit writes the sbatch script (quoting each #SBATCH value) and pickles one callable
per array task; all of an array's pickles go in one file, which each task unpacks on
its node (`python -m paddle_hpc.node.unpack`) and then runs as submitit runs it. Its
own array path builds a plain SlurmExecutor that runs sbatch itself; the executor
here (core/compat.py) does the same steps with the seam's client instead, keeping
submitit's file layout.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paddle_hpc.core import compat
from paddle_hpc.slurm.client import SlurmClient

# Slurm sends its stop signal (USR2) up to a minute before it is due, so it can reach a
# task's Python while it starts, before any handler: its default action would end the
# task FAILED. The node's Python starts with USR2 ignored; the node runner's first step
# installs its own handler (node.SIGNALS).
IGNORE_USR2 = '/bin/sh -c \'trap "" USR2; exec "$0" "$@"\''


def node_python(python: str) -> str:
    """The command that starts the node's Python, as submitit puts it in the script."""
    return f"{IGNORE_USR2} {shlex.quote(python)}"


def submitit_command(python: str, folder: Path) -> str:
    """An array task's command (core/compat.py's unpack_command)."""
    return compat.unpack_command(node_python(python), folder)


def sbatch_script(folder: Path, python: str, parameters: Mapping[str, Any]) -> str:
    """The sbatch script submitit writes for these parameters (used by --dry-run)."""
    return compat.sbatch_string(submitit_command(python, folder), folder, dict(parameters))


def array_executor(folder: Path, client: SlurmClient, python: str) -> compat.SeamExecutor:
    """submitit's executor of one array, its sbatch call through the Slurm seam."""
    return compat.SeamExecutor(folder, node_python(python), client.submit)
