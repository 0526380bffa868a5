"""What paddle_hpc adds to a trial's start: from the moment the array task starts to the
training script's first line, against a bare `paddle.distributed.launch` started by
`srun` in a job of the same shape.

Both jobs write the time in their batch script before anything else (paddle_hpc's
through `cluster.setup`), and the script writes the time as its first line does. For
paddle_hpc the path between them is srun, submitit's runner, paddle_hpc's node runner
(its config, its attempt files, its environment capture) and Paddle's launcher; for the
baseline, srun and Paddle's launcher. One job at a time on the idle test cluster,
alternating, so that neither competes with the other for the 2 cores.

    make bench    (or: .venv/bin/python benchmarks/overhead.py [--repeat N])

Target (issue 11): paddle_hpc <= the bare launch + 1 s.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

SCRIPT = """\
import sys, time
first = time.time()
open(sys.argv[1], "w").write(repr(first))
"""
STAMP = "date +%s.%N > {}"


def wait_for(path: Path, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} was not written in {timeout} s")
        time.sleep(0.2)
    time.sleep(0.2)
    return float(path.read_text().strip())


def ours(work: Path, i: int) -> float:
    start, first = work / f"ours-{i}.start", work / f"ours-{i}.first"
    setup = STAMP.format(shlex.quote(str(start)))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle_hpc.sweep",
            f"sweep.name=bench-overhead-{i}",
            f"cluster.setup=[{setup!r}]",
            f"program.args=[{str(first)!r}]",
        ],
        cwd=work,
        check=True,
        capture_output=True,
    )
    return wait_for(first) - wait_for(start)


def bare(work: Path, i: int, python: str) -> float:
    start, first = work / f"bare-{i}.start", work / f"bare-{i}.first"
    launch = [
        python, "-m", "paddle.distributed.launch", "--nproc_per_node", "1",
        "--log_dir", str(work / f"bare-{i}-logs"), str(work / "train.py"), str(first),
    ]  # fmt: skip
    script = "\n".join(
        [
            "#!/bin/bash",
            "#SBATCH --nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --time=10",
            f"#SBATCH --job-name=bench-bare-{i} --output={work}/bare-{i}.out",
            STAMP.format(shlex.quote(str(start))),
            "unset CUDA_VISIBLE_DEVICES",
            "srun --unbuffered --kill-on-bad-exit=1 " + shlex.join(launch),
        ]
    )
    (work / f"bare-{i}.sh").write_text(script + "\n")
    subprocess.run(["sbatch", str(work / f"bare-{i}.sh")], check=True, capture_output=True)
    return wait_for(first) - wait_for(start)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-overhead-"))
    (work / "conf").mkdir()
    (work / "train.py").write_text(SCRIPT)
    (work / "conf" / "config.yaml").write_text(
        "program: {script: train.py}\nresources: {nodes: 1, cpus_per_task: 1, time: '10'}\n"
    )
    mine: list[float] = []
    theirs: list[float] = []
    try:
        for i in range(args.repeat):
            mine.append(ours(work, i))
            time.sleep(2)  # the task's end, so that the next job has the node to itself
            theirs.append(bare(work, i, sys.executable))
            time.sleep(2)
            print(
                f"round {i + 1}: paddle_hpc {mine[-1]:.2f} s, bare {theirs[-1]:.2f} s", flush=True
            )
    finally:
        shutil.rmtree(work)
    ours_s, bare_s = statistics.median(mine), statistics.median(theirs)
    added = ours_s - bare_s
    print(f"\narray task start -> the script's first line; median of {args.repeat}")
    print(f"  paddle_hpc: {ours_s:.2f} s   bare srun + paddle.distributed.launch: {bare_s:.2f} s")
    print(f"  added {added:+.2f} s, ratio {ours_s / bare_s:.2f}  target <= +1 s: "
          f"{'met' if added <= 1 else 'MISSED'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
