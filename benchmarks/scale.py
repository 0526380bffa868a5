"""A 10,000-point sweep on the test cluster: submit, status, list and collect.

In one run, on this machine:

- **submit**: `python -m paddle_hpc.sweep a=range(100) b=range(100)` of a trivial
  program, held (one node each), from the command line until squeue lists all
  10,000 tasks; against the floor, the same 10 arrays of 1,000 submitted with bare
  `sbatch --hold --array` calls. Alternating, `--repeat` times.
- **status** of that sweep and **list** with it among ten 100-run sweeps, each a fresh
  process as a user runs it, with Slurm's tools counted through wrappers on the PATH;
  against one bare `sacct` of the same jobs.
- **collect** of the sweep once its 10,000 runs have ended, each with 100 metric rows
  (50 steps of loss and acc), its state file and a worker log: a full collect
  (results removed first) against `pandas.read_json(lines=True)` per file and
  `concat`, and a collect with nothing changed. Making 10,000 tasks actually run
  takes this machine about 100 minutes, so the tasks are cancelled and Slurm's
  accounting of them is a stand-in `sacct` on the PATH that prints, for each task,
  the row the real sacct printed for a task of the same kind (recorded here first).

    make cluster
    .venv/bin/python benchmarks/scale.py [--repeat N]

Targets (issue 25): submit <= 5 s; status <= 0.5 s with one Slurm call (since issue
26, a second, squeue, says why the held runs wait); list <= 0.5 s;
full collect <= 3 s; collect with nothing changed <= 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sweep_submit import cancel, queued

from paddle_hpc.collect import collect
from paddle_hpc.core import runstate
from paddle_hpc.core.manifest import load
from paddle_hpc.core.runstate import RunState
from paddle_hpc.slurm.client import sacct_argv
from paddle_hpc.slurm.parse import SACCT_FIELDS

POINTS, CHUNK, STEPS = 10_000, 1000, 50
CONFIG = """program: {script: noop.py}
a: 0
b: 0
resources: {nodes: 1, time: "60", sbatch: {hold: true}}
sweep: {name: NAME, max_parallel: 8}
"""
SLURM_TOOLS = ("sacct", "sbatch", "scancel", "scontrol", "squeue", "sinfo", "sacctmgr")


def until_queued(argv: list[str], cwd: Path, name: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    while queued(name) < POINTS:
        if time.perf_counter() - start > 600:
            raise RuntimeError(f"{name}: not all {POINTS} tasks queued in 600 s")
        time.sleep(0.05)
    return time.perf_counter() - start


def bare_sbatch(name: str) -> float:
    start = time.perf_counter()
    for _ in range(POINTS // CHUNK):
        subprocess.run(
            [
                *("sbatch", "--hold", f"--array=0-{CHUNK - 1}%8", "--job-name", name),
                *("--time=60", "--output=/dev/null", "--wrap=true"),
            ],
            check=True,
            capture_output=True,
        )
    while queued(name) < POINTS:
        time.sleep(0.05)
    return time.perf_counter() - start


def project(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "noop.py").write_text("")
    (folder / "conf").mkdir()
    (folder / "conf" / "config.yaml").write_text(CONFIG.replace("NAME", name))
    return folder


def wrappers(folder: Path, log: Path, sacct: str | None = None) -> Path:
    """Scripts named like Slurm's tools that log each call, then run the real one (or,
    for sacct, `sacct` when given: a stand-in's command)."""
    folder.mkdir(parents=True)
    for tool in SLURM_TOOLS:
        real = shutil.which(tool)
        if real is None:
            continue
        run = sacct if tool == "sacct" and sacct else f'exec "{real}" "$@"'
        script = folder / tool
        script.write_text(f'#!/bin/sh\necho {tool} >> "{log}"\n{run}\n')
        script.chmod(0o755)
    return folder


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def recorded_row() -> list[str]:
    """A real sacct row of an ended one-node task of this cluster, fields split."""
    job = subprocess.run(
        ["sbatch", "--parsable", "--array=0", "--output=/dev/null", "--wrap=true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(";")[0]
    for _ in range(600):
        out = subprocess.run(sacct_argv([job]), capture_output=True, text=True, check=True)
        rows = [line.split("|") for line in out.stdout.splitlines()[1:] if line]
        if rows and rows[0][2] == runstate.COMPLETED:
            return rows[0]
        time.sleep(0.5)
    raise RuntimeError(f"sacct did not record job {job} ending")


def stand_in_sacct(sweep: Path, folder: Path) -> Path:
    """The sacct text of every task of the sweep, as if each had run like the recorded one."""
    row = recorded_row()
    lines = ["|".join(SACCT_FIELDS)]
    manifest = load(sweep)
    for array in manifest.arrays:
        for task in range(len(array.run_ids)):
            fields = list(row)
            fields[0], fields[1] = f"{array.job_id}_{task}", str(array.job_id + task + 1)
            fields[-1] = manifest.name
            lines.append("|".join(fields))
    text = folder / "sacct.txt"
    text.write_text("\n".join(lines) + "\n")
    return text


def write_runs(sweep: Path) -> list[Path]:
    """Each run's files as a trivial run that logged 50 steps of loss and acc leaves them."""
    files = []
    for number, run in enumerate(load(sweep).runs):
        folder = sweep / "runs" / run.run_id
        (folder / "logs" / "node0").mkdir(parents=True, exist_ok=True)
        start = 1_763_900_000.0 + number
        rows = [
            json.dumps(
                {"step": s, "time": start + s, "loss": 1 / (s + 1) + number * 1e-6, "acc": s / 50}
            )
            for s in range(STEPS)
        ]
        (folder / "metrics.jsonl").write_text("\n".join(rows) + "\n")
        (folder / "logs" / "node0" / "workerlog.0").write_text("step 49 loss 0.02\n")
        runstate.write(
            folder / "state.json",
            RunState(runstate.COMPLETED, attempt=1, job=run.job, returncode=0),
        )
        files.append(folder / "metrics.jsonl")
    return files


def naive(files: list[Path]) -> float:
    start = time.perf_counter()
    pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    return time.perf_counter() - start


def report(name: str, ours: list[float], base: list[float], base_name: str, target: float) -> None:
    o, b = statistics.median(ours), statistics.median(base)
    verdict = "met" if o <= target else "MISSED"
    print(
        f"| {name} | {o:.3f} s | {b:.3f} s ({base_name}) | {o / b:.2f} "
        f"| <= {target} s: {verdict} |",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-scale-"))
    env = {**os.environ, "PADDLE_HPC_INDEX": str(work / "index.jsonl")}
    python = sys.executable
    print("| case | paddle_hpc | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    try:
        ours, floor = [], []
        rounds = {**env, "PADDLE_HPC_INDEX": str(work / "rounds.jsonl")}  # not in `list`
        for i in range(args.repeat):
            name = f"scale-{i}"
            folder = project(work / name, name)
            argv = [python, "-m", "paddle_hpc.sweep", "a=range(100)", "b=range(100)"]
            ours.append(until_queued(argv, folder, name, rounds))
            cancel(name)
            floor.append(bare_sbatch(f"bare-{i}"))
            cancel(f"bare-{i}")
        report("submit 10,000 runs", ours, floor, "10 bare sbatch --array", 5.0)

        big = project(work / "big", "big")
        until_queued(
            [python, "-m", "paddle_hpc.sweep", "a=range(100)", "b=range(100)"], big, "big", env
        )
        sweep = big / "sweeps" / "big"
        for i in range(10):  # the other sweeps `list` shows
            small = project(work / f"small-{i}", f"small-{i}")
            subprocess.run(
                [python, "-m", "paddle_hpc.sweep", "a=range(10)", "b=range(10)"],
                cwd=small,
                env=env,
                check=True,
                capture_output=True,
            )
        log = work / "calls.log"
        tools = wrappers(work / "bin", log)
        counted = {**env, "PATH": f"{tools}:{env['PATH']}"}
        jobs = [a.job_id for a in load(sweep).arrays]
        for name, argv in {
            "status, 10,000 runs": [python, "-m", "paddle_hpc.status", str(sweep)],
            "list, it and 10 sweeps of 100": [python, "-m", "paddle_hpc.list"],
        }.items():
            log.write_text("")
            subprocess.run(argv, env=counted, check=True, capture_output=True)
            calls = log.read_text().split()
            times = {"ours": [], "bare": []}
            for _ in range(args.repeat):
                times["ours"].append(timed(argv, counted))
                times["bare"].append(timed(sacct_argv(jobs), env))
            report(
                f"{name} ({len(calls)} Slurm call: {', '.join(calls)})",
                times["ours"],
                times["bare"],
                "one bare sacct",
                0.5,
            )
        cancel("big")
        for i in range(10):
            cancel(f"small-{i}")

        files = write_runs(sweep)
        recorded = stand_in_sacct(sweep, work)
        stand_in = wrappers(work / "stand-in", work / "stand-in.log", f'cat "{recorded}"')
        os.environ["PATH"] = f"{stand_in}:{os.environ['PATH']}"
        full, plain, unchanged = [], [], []
        for _ in range(args.repeat):
            shutil.rmtree(sweep / "results", ignore_errors=True)
            (sweep / "sacct.txt").unlink(missing_ok=True)
            start = time.perf_counter()
            collect(sweep)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            collect(sweep)
            unchanged.append(time.perf_counter() - start)
            plain.append(naive(files))
        report(
            "collect 10,000 ended runs x 100 rows", full, plain, "pandas.read_json per file", 3.0
        )
        report("collect, nothing changed", unchanged, plain, "pandas.read_json per file", 0.1)
    finally:
        for name in ["big", *(f"small-{i}" for i in range(10))]:
            subprocess.run(["scancel", "--name", name], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
