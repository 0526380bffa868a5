"""1,000-point grids from the command line to every task queued on the test cluster,
for each shape of grid users write.

Times `python -m paddle_hpc.sweep` and Hydra's hydra-submitit-launcher on the same
grid with the same resources, alternating between them in the same run because this
machine is shared and noisy. Every task is held (`--hold`), so nothing runs; each
measurement ends when squeue lists all 1,000 tasks (and, for paddle_hpc, when the
command has returned), and the tasks are then cancelled. hydra-submitit-launcher
waits for its jobs' results, so it is stopped once its tasks are queued.

Shapes:
  plain      a, b, c = range(10), keys the config has
  added      a = range(10), +b, +c = range(10): keys added with `+`
  resolvers  plain, with a script path from ${oc.env:...}, ${now:...}, ${oc.decode:...}
             and references in the config (paddle_hpc also ${run:dir} in the args)
  groups     model = m0,m1,m2,m3 (a config group) x a = range(10) x b = range(25)
  hydra      plain, with Hydra's own values in the config: an output folder of
             ${hydra:runtime.output_dir}, ${hydra:job.override_dirname}, ${hydra:job.num}

    make bench                          # sets up the venv, the cluster and the baseline
    .venv/bin/python benchmarks/sweep_submit.py [--shape plain ...] [--repeat N]

Targets (issues 3, 11 and 24): each shape <= 2 s, and <= 1/10 of hydra-submitit-launcher's
time on the same grid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

POINTS = 1000

RESOURCES = """resources: {nodes: 1, cpus_per_task: 1, mem: 4G, time: "60", sbatch: {hold: true}}
sweep: {max_parallel: 8}
"""
LAUNCHER = """hydra:
  launcher:
    nodes: 1
    tasks_per_node: 1
    cpus_per_task: 1
    mem_gb: 4
    timeout_min: 60
    array_parallelism: 8
    additional_parameters: {hold: true}
"""
BASELINE_HEAD = """defaults:
  - override hydra/launcher: submitit_slurm
  - _self_
"""
GROUPS_HEAD = """defaults:
  - model: m0
  - _self_
"""
BASELINE_GROUPS_HEAD = """defaults:
  - model: m0
  - override hydra/launcher: submitit_slurm
  - _self_
"""
RESOLVED = """data: ${oc.env:HOME}/data
tag: run-${now:%Y-%m-%d}-${a}-${b}
steps: ${oc.decode:'100'}
lr: ${a}
"""
HYDRA_VALUES = """out: ${hydra:runtime.output_dir}/${hydra:job.override_dirname}
job: ${hydra:job.num}
"""


@dataclass(frozen=True)
class Shape:
    grid: tuple[str, ...]
    ours: str  # conf/config.yaml, besides RESOURCES
    theirs: str  # hconf/config.yaml, besides the launcher's settings
    groups: bool = False  # conf/model/m0..m3.yaml and hconf's


SHAPES = {
    "plain": Shape(
        ("a=range(10)", "b=range(10)", "c=range(10)"),
        "program: {script: noop.py}\na: 0\nb: 0\nc: 0\n",
        BASELINE_HEAD + "a: 0\nb: 0\nc: 0\n",
    ),
    "added": Shape(
        ("a=range(10)", "+b=range(10)", "+c=range(10)"),
        "program: {script: noop.py}\na: 0\n",
        BASELINE_HEAD + "a: 0\n",
    ),
    "resolvers": Shape(
        ("a=range(10)", "b=range(10)", "c=range(10)"),
        "program:\n  script: ${oc.env:BENCH_DIR}/noop.py\n"
        "  args: [--out, '${run:dir}/out', --tag, '${tag}']\n"
        "a: 0\nb: 0\nc: 0\n" + RESOLVED,
        BASELINE_HEAD + "script: ${oc.env:BENCH_DIR}/noop.py\na: 0\nb: 0\nc: 0\n" + RESOLVED,
    ),
    "hydra": Shape(
        ("a=range(10)", "b=range(10)", "c=range(10)"),
        "program: {script: noop.py}\na: 0\nb: 0\nc: 0\n" + HYDRA_VALUES,
        BASELINE_HEAD + "a: 0\nb: 0\nc: 0\n" + HYDRA_VALUES,
    ),
    "groups": Shape(
        ("model=m0,m1,m2,m3", "a=range(10)", "b=range(25)"),
        GROUPS_HEAD + "program: {script: noop.py}\na: 0\nb: 0\n",
        BASELINE_GROUPS_HEAD + "a: 0\nb: 0\n",
        groups=True,
    ),
}

BASELINE_APP = """\
import hydra


@hydra.main(version_base="1.3", config_path="hconf", config_name="config")
def main(cfg):
    pass


if __name__ == "__main__":
    main()
"""


def project(work: Path, shape: Shape) -> None:
    """The shape's configs for both tools in `work`."""
    for conf, text, tail in (("conf", shape.ours, RESOURCES), ("hconf", shape.theirs, LAUNCHER)):
        shutil.rmtree(work / conf, ignore_errors=True)
        (work / conf).mkdir()
        (work / conf / "config.yaml").write_text(text + tail)
        if shape.groups:
            (work / conf / "model").mkdir()
            for i in range(4):
                (work / conf / "model" / f"m{i}.yaml").write_text(f"name: m{i}\nwidth: {8 << i}\n")


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


def time_to_queued(
    argv: Sequence[str], cwd: Path, name: str, env: dict[str, str], wait_for_exit: bool
) -> float:
    """Seconds from starting argv until squeue lists every task (and argv has exited)."""
    log = cwd / f"{name}.log"
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
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
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append", help="default: all")
    parser.add_argument("--repeat", type=int, default=1, help="measurements of each (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the sweep directories")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-"))
    (work / "noop.py").write_text("")
    (work / "hydra_app.py").write_text(BASELINE_APP)
    env = {**os.environ, "BENCH_DIR": str(work)}
    results: dict[str, tuple[float, float]] = {}
    for shape_name in args.shape or list(SHAPES):
        shape = SHAPES[shape_name]
        project(work, shape)
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(args.repeat):
            name = f"bench-{shape_name}-ours-{i}"
            command = [sys.executable, "-m", "paddle_hpc.sweep", *shape.grid, f"sweep.name={name}"]
            ours.append(time_to_queued(command, work, name, env, wait_for_exit=True))
            name = f"bench-{shape_name}-hydra-{i}"
            command = [
                sys.executable,
                "hydra_app.py",
                "--multirun",
                *shape.grid,
                f"hydra.launcher.name={name}",
                f"hydra.sweep.dir=multirun/{name}",
            ]
            theirs.append(time_to_queued(command, work, name, env, wait_for_exit=False))
            print(
                f"{shape_name}, round {i + 1}: paddle_hpc {ours[-1]:.2f} s, "
                f"hydra-submitit-launcher {theirs[-1]:.2f} s",
                flush=True,
            )
        results[shape_name] = (statistics.median(ours), statistics.median(theirs))

    print(f"\n{POINTS}-point grids, command line -> every task queued; median of {args.repeat}")
    print(f"  {'shape':10} {'paddle_hpc':>11} {'hydra-submitit':>15} {'ratio':>7}  targets")
    for shape_name, (mine, base) in results.items():
        ratio = mine / base
        met = "met" if mine <= 2 and ratio <= 0.1 else "MISSED"
        print(
            f"  {shape_name:10} {mine:9.2f} s {base:13.2f} s {ratio:7.3f}  "
            f"<= 2 s and <= 0.1: {met} ({base / mine:.0f}x faster)"
        )
    if args.keep:
        print(f"  files: {work}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
