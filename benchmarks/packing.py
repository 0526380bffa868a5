"""Packed trials against one trial per task: the makespan of 64 small trials on the
test cluster.

Each trial sleeps about 2 s in its training script, started like every run through
`paddle.distributed.launch`. One trial per task asks for a GPU per task (a trial
cannot ask Slurm for a quarter of one); packed, each task asks for one GPU and runs
16 trials, four at a time on it (`resources.gpus_per_trial=0.25`). The test cluster
has 2 nodes x 2 (fake) GPUs and 2 real cores. Measured from the `sweep` command to
the last trial's COMPLETED state file, alternating the two in the same run.

    make bench    (or: .venv/bin/python benchmarks/packing.py [--repeat N])

Target (issue 11): packed makespan <= 1/4 of one trial per task.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

TRIALS = 64
TRIAL = """\
import time
print("first line", time.time(), flush=True)
time.sleep(2)
"""
CONFIG = """\
program: {script: train.py, args: ['${x}']}
x: 0
resources: {nodes: 1, cpus_per_task: 1, gpus_per_node: 1, time: '30'}
sweep: {max_parallel: 64}
"""
SHAPES = {
    "one per task": [],
    "packed": ["resources.gpus_per_trial=0.25", "sweep.trials_per_task=16"],
}


def completed(sweep_dir: Path) -> int:
    done = 0
    for path in (sweep_dir / "runs").glob("*/state.json"):
        try:
            done += json.loads(path.read_text())["state"] == "COMPLETED"
        except (OSError, ValueError, KeyError):
            continue
    return done


def makespan(work: Path, name: str, overrides: Sequence[str]) -> float:
    sweep_dir = work / "sweeps" / name
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle_hpc.sweep",
            f"x=range({TRIALS})",
            f"sweep.name={name}",
            *overrides,
        ],
        cwd=work,
        check=True,
        capture_output=True,
    )
    try:
        while completed(sweep_dir) < TRIALS:
            if time.perf_counter() - start > 1800:
                raise RuntimeError(f"{name}: not done in 30 minutes; see {sweep_dir}")
            time.sleep(0.5)
        return time.perf_counter() - start
    finally:
        subprocess.run(["scancel", "--name", name], check=False)
        while subprocess.run(
            ["squeue", "--noheader", "--name", name], capture_output=True, text=True, check=False
        ).stdout.strip():
            time.sleep(0.5)


def launch_cpu_seconds(work: Path) -> float:
    """CPU time (user + system) of one bare paddle.distributed.launch of the trial."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(work / "bare"),
         str(work / "train.py")],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-packing-"))
    (work / "conf").mkdir()
    (work / "conf" / "config.yaml").write_text(CONFIG)
    (work / "train.py").write_text(TRIAL)
    times: dict[str, list[float]] = {name: [] for name in SHAPES}
    cpu = launch_cpu_seconds(work)
    try:
        for i in range(args.repeat):
            for label, overrides in SHAPES.items():
                name = f"bench-packing-{label.replace(' ', '-')}-{i}"
                times[label].append(makespan(work, name, overrides))
                print(f"round {i + 1}, {label}: {times[label][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(work)
    one, packed = (statistics.median(times[k]) for k in SHAPES)
    ratio = packed / one
    print(f"\n{TRIALS} trials of ~2 s, `sweep` to the last COMPLETED; median of {args.repeat}")
    print(f"  one trial per task (a GPU each): {one:7.1f} s")
    print(f"  packed, 16 per task, 4 per GPU:  {packed:7.1f} s")
    print(f"  ratio {ratio:.2f}  target <= 0.25: {'met' if ratio <= 0.25 else 'MISSED'}")
    cores = os.cpu_count() or 1
    print(
        f"  one bare launch of the trial costs {cpu:.2f} CPU-s (Paddle's launcher imports "
        f"paddle): {TRIALS} trials need >= {TRIALS * cpu / cores:.0f} s on {cores} core(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
