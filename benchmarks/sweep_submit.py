"""A 1,000-point grid from the command line to every task queued on the test cluster.

Times `python -m paddle_hpc.sweep` and Hydra's hydra-submitit-launcher on the same
grid (a, b, c each range(10)) with the same resources, alternating between them in
the same run because this machine is shared and noisy. Every task is held
(`--hold`), so nothing runs; each measurement ends when squeue lists all 1,000 tasks
(and, for paddle_hpc, when the command has returned), and the tasks are then
cancelled. hydra-submitit-launcher waits for its jobs' results, so it is stopped
once its tasks are queued.

    make bench                          # sets up the venv, the cluster and the baseline
    .venv/bin/python benchmarks/sweep_submit.py [--repeat N]

Targets (issue 3): paddle_hpc <= 2 s, and <= 1/10 of hydra-submitit-launcher's time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

POINTS = 1000
GRID = ("a=range(10)", "b=range(10)", "c=range(10)")

OURS = """\
program: {script: noop.py}
a: 0
b: 0
c: 0
resources: {nodes: 1, cpus_per_task: 1, mem: 4G, time: "60", sbatch: {hold: true}}
sweep: {max_parallel: 8}
"""

BASELINE_APP = """\
import hydra


@hydra.main(version_base="1.3", config_path="hconf", config_name="config")
def main(cfg):
    pass


if __name__ == "__main__":
    main()
"""

BASELINE = """\
defaults:
  - override hydra/launcher: submitit_slurm
  - _self_
a: 0
b: 0
c: 0
hydra:
  launcher:
    nodes: 1
    tasks_per_node: 1
    cpus_per_task: 1
    mem_gb: 4
    timeout_min: 60
    array_parallelism: 8
    additional_parameters: {hold: true}
"""


def queued(name: str) -> int:
    """Tasks of jobs called `name` that squeue lists, one line per array task."""
    out = subprocess.run(
        ["squeue", "--noheader", "--array", "--name", name, "--format", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def cancel(name: str) -> None:
    subprocess.run(["scancel", "--name", name], check=True)
    while queued(name):
        time.sleep(0.5)
    time.sleep(3)  # let slurmctld and slurmdbd record the cancellations before the next run


def time_to_queued(argv: Sequence[str], cwd: Path, name: str, wait_for_exit: bool) -> float:
    """Seconds from starting argv until squeue lists every task (and argv has exited)."""
    log = cwd / f"{name}.log"
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                code = proc.poll()
                if code not in (None, 0):
                    raise RuntimeError(f"{argv[1:3]} failed with exit code {code}; see {log}")
                done = code == 0 or not wait_for_exit
                if done and queued(name) >= POINTS:
                    return time.perf_counter() - start
                if time.perf_counter() - start > 600:
                    raise RuntimeError(f"{name}: not all {POINTS} tasks queued in 600 s; see {log}")
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            cancel(name)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the sweep directories")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-"))
    (work / "noop.py").write_text("")
    (work / "conf").mkdir()
    (work / "conf" / "config.yaml").write_text(OURS)
    (work / "hydra_app.py").write_text(BASELINE_APP)
    (work / "hconf").mkdir()
    (work / "hconf" / "config.yaml").write_text(BASELINE)

    ours: list[float] = []
    theirs: list[float] = []
    for i in range(args.repeat):
        name = f"bench-ours-{i}"
        command = [sys.executable, "-m", "paddle_hpc.sweep", *GRID, f"sweep.name={name}"]
        ours.append(time_to_queued(command, work, name, wait_for_exit=True))
        name = f"bench-hydra-{i}"
        command = [
            sys.executable,
            "hydra_app.py",
            "--multirun",
            *GRID,
            f"hydra.launcher.name={name}",
            f"hydra.sweep.dir=multirun/{name}",
        ]
        theirs.append(time_to_queued(command, work, name, wait_for_exit=False))
        print(
            f"round {i + 1}: paddle_hpc {ours[-1]:.2f} s, hydra-submitit-launcher "
            f"{theirs[-1]:.2f} s",
            flush=True,
        )

    mine, base = statistics.median(ours), statistics.median(theirs)
    ratio = mine / base
    print(f"\n{POINTS}-point grid, command line -> every task queued; median of {args.repeat}")
    print(
        f"  paddle_hpc.sweep          {mine:6.2f} s   target <= 2 s: "
        f"{'met' if mine <= 2 else 'MISSED'}"
    )
    print(f"  hydra-submitit-launcher   {base:6.2f} s")
    print(
        f"  ratio                     {ratio:6.3f}     target <= 0.1: "
        f"{'met' if ratio <= 0.1 else 'MISSED'}  ({base / mine:.0f}x faster)"
    )
    if args.keep:
        print(f"  files: {work}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
