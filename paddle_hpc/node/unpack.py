"""`python -m paddle_hpc.node.unpack FOLDER`: how an array task starts on its node.

submitit pickles each array task's callable in a file of its own before sbatch; at
10,000 tasks that is 10,000 files created on the login node, seconds on a shared
filesystem. paddle_hpc pickles an array's tasks in one file, `<job>_tasks.pkl` (each
task's pickle as submitit writes it, in a list), and each task writes its own
`<job>_<task>_submitted.pkl` from it here, on its node, before it runs as submitit
runs it (`submitit.core._submit`).

submitit's own signal handlers are left out: Slurm's USR2 can come while the task
starts, and submitit's handler would take it for the time-out of a job it cannot
checkpoint and end the task FAILED (or requeue it, on a preemption). The task starts
with USR2 ignored (slurm/executor.py) until the node runner's first step installs its
own handlers (node/signals.py), and ignores it again once its work is done.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from pathlib import Path

from submitit.core import utils
from submitit.core.job_environment import JobEnvironment
from submitit.core.submission import submitit_main
from submitit.slurm.slurm import SlurmJobEnvironment

WAIT_S = 60  # as submitit waits for a task's pickle


def bundle_path(folder: Path, job: str) -> Path:
    return folder / f"{job}_tasks.pkl"


def unpack(folder: Path, job: str, task: int) -> Path:
    """Writes task `task`'s pickle from its array's bundle, unless it is there (a
    requeued task's); returns its path."""
    target: Path = utils.JobPaths(folder, job_id=f"{job}_{task}").submitted_pickle
    if target.exists():
        return target
    bundle = bundle_path(folder, job)
    for _ in range(WAIT_S):  # the submitting side names it once sbatch has said the id
        if bundle.exists():
            break
        time.sleep(1)
    blobs = pickle.loads(bundle.read_bytes())
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_bytes(blobs[task])
    tmp.replace(target)
    return target


def leave_signals(
    env: JobEnvironment, paths: utils.JobPaths, submission: utils.DelayedSubmission
) -> None:
    """submitit's hook that installs its handlers (`JobEnvironment._handle_signals`,
    which its docs leave to plugins to adapt): here it leaves them as they are."""


def main() -> None:
    SlurmJobEnvironment._handle_signals = leave_signals  # type: ignore[method-assign,assignment]
    folder = Path(sys.argv[1])
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job is not None and task is not None:
        unpack(folder, job, int(task))
    try:
        submitit_main()  # reads FOLDER from sys.argv, as submitit's own command gives it
    finally:
        # the task's work is done: a stop signal is for nothing now, and Python's exit
        # would give USR2 its default action back, which ends the task and its step
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)


if __name__ == "__main__":
    main()
