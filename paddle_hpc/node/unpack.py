"""`python -m paddle_hpc.node.unpack FOLDER`: how an array task starts on its node.

submitit pickles each array task's callable in a file of its own before sbatch; at
10,000 tasks that is 10,000 files created on the login node, seconds on a shared
filesystem. paddle_hpc pickles an array's tasks in one file, `<job>_tasks.pkl` (each
task's pickle as submitit writes it, in a list), and each task writes its own
`<job>_<task>_submitted.pkl` from it here, on its node, before it runs as submitit
runs it (`submitit.core._submit`).
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

from submitit.core import utils
from submitit.core.submission import submitit_main

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


def main() -> None:
    folder = Path(sys.argv[1])
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job is not None and task is not None:
        unpack(folder, job, int(task))
    submitit_main()  # reads FOLDER from sys.argv, as submitit's own command gives it


if __name__ == "__main__":
    main()
