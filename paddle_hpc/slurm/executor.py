"""submitit's SlurmExecutor with its sbatch call routed through the Slurm seam.

submitit writes the sbatch script (quoting each #SBATCH value), pickles one callable
per array task and, on each node, runs it via `python -m submitit.core._submit`. Its
own array path builds a plain SlurmExecutor that runs sbatch itself; `submit_array`
does the same steps with the seam's client instead, keeping submitit's file layout.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import submitit
from submitit.core import utils
from submitit.slurm.slurm import _make_sbatch_string

from paddle_hpc.slurm.client import SlurmClient

NO_LIMIT_MIN = 10**9
# Slurm sends its stop signal (USR2) up to a minute before it is due, so it can reach a
# task's Python while it starts, before any handler: its default action would end the
# task FAILED. The node's Python starts with USR2 ignored; the node runner's first step
# installs its own handler (node.SIGNALS).
IGNORE_USR2 = '/bin/sh -c \'trap "" USR2; exec "$0" "$@"\''


def node_python(python: str) -> str:
    """The command that starts the node's Python, as submitit puts it in the script."""
    return f"{IGNORE_USR2} {shlex.quote(python)}"


def submitit_command(python: str, folder: Path) -> str:
    return f"{node_python(python)} -u -m submitit.core._submit {shlex.quote(str(folder))}"


def sbatch_script(folder: Path, python: str, parameters: Mapping[str, Any]) -> str:
    """The sbatch script submitit writes for these parameters (used by --dry-run)."""
    return _make_sbatch_string(
        command=submitit_command(python, folder), folder=folder, **parameters
    )


class SeamExecutor(submitit.SlurmExecutor):
    def __init__(self, folder: Path, client: SlurmClient, python: str) -> None:
        super().__init__(folder, python=node_python(python))
        self._client = client

    def _submit_command(self, command: str) -> submitit.Job[Any]:
        tmp = uuid.uuid4().hex
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".submission_file_{tmp}.sh"
        path.write_text(self._make_submission_file_text(command, tmp), encoding="utf-8")
        try:
            job_id = self._client.submit(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job = self.job_class(
            folder=self.folder, job_id=str(job_id), tasks=list(range(self._num_tasks()))
        )
        job.paths.move_temporary_file(path, "submission_file", keep_as_symlink=True)
        return job

    def submit_array_job(self, tasks: Sequence[Callable[[], Any]]) -> int:
        """Submits one array with a task per callable; returns the array's job id."""
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("time", 5)
        if not isinstance(timeout_min, int):  # 'UNLIMITED': a USR2 is never the time limit
            timeout_min = NO_LIMIT_MIN
        pickles = []
        for task in tasks:
            delayed = utils.DelayedSubmission(task)
            delayed.set_timeout(timeout_min, self.max_num_timeout)
            path = folder / f"{uuid.uuid4().hex}.pkl"
            delayed.dump(path)
            pickles.append(path)
        self.parameters["map_count"] = len(tasks)
        try:
            first = self._submit_command(self._submitit_command_str)
        except BaseException:
            for path in pickles:
                path.unlink(missing_ok=True)
            raise
        for index, path in enumerate(pickles):
            paths = utils.JobPaths(self.folder, job_id=f"{first.job_id}_{index}")
            path.rename(paths.submitted_pickle)  # its folder exists: no mkdir per task
        return int(first.job_id)
