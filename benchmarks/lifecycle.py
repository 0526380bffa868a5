"""`status` of a 1,000-run sweep and `list` of 50 sweeps of 100 runs, on the test cluster.

Each is timed as a user runs it (`python -m paddle_hpc.status DIR`, a fresh process)
against one bare `sacct` call for the same jobs, alternating in the same run because
this machine is shared and noisy. Slurm's commands are counted through wrappers on
the PATH: each verb must make exactly one call.

The jobs are real: 10 arrays of 100 tasks that ran `true` (1,000 rows in sacct; about
ten minutes to make, once: their ids are kept in /var/tmp/paddle-hpc-bench), and for
`list` 40 more arrays that were held and cancelled (one collapsed row each, as Slurm
keeps a cancelled array that never started). The sweep directories are written by
paddle_hpc's own manifest code, each run with its state file.

    make bench
    .venv/bin/python benchmarks/lifecycle.py [--repeat N]

Targets (issue 8): status and list within 0.5 s, exactly one Slurm call each.
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

from paddle_hpc.core import index, runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import ArrayEntry, Manifest, RunEntry, save
from paddle_hpc.core.runstate import RunState
from paddle_hpc.slurm.client import sacct_argv

CACHE = Path("/var/tmp/paddle-hpc-bench/lifecycle.json")
RAN, CANCELLED, TASKS = 10, 40, 100
SLURM_TOOLS = ("sacct", "sbatch", "scancel", "scontrol", "squeue", "sinfo")


def sbatch(*args: str) -> int:
    out = subprocess.run(
        ["sbatch", "--parsable", "--output=/dev/null", "--wrap=true", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split(";")[0])


def ended(jobs: list[int], tasks: int) -> bool:
    """Whether sacct lists every array and every task of those that ran has ended."""
    text = subprocess.run(sacct_argv(jobs), capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in text.splitlines()[1:] if line]
    live = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "SUSPENDED"}
    listed = {int(row[0].split("_")[0]) for row in rows}
    return (
        listed == set(jobs)
        and len(rows) >= tasks
        and not any(row[2].split()[0] in live for row in rows)
    )


def jobs() -> tuple[list[int], list[int]]:
    """Ids of the arrays that ran and of those cancelled, made once and kept."""
    if CACHE.exists():
        kept = json.loads(CACHE.read_text())
        if ended(kept["ran"] + kept["cancelled"], RAN * TASKS):
            return kept["ran"], kept["cancelled"]
    print(f"making {RAN} arrays of {TASKS} tasks that run `true` (about ten minutes, once)")
    ran = [sbatch(f"--array=0-{TASKS - 1}", "--cpus-per-task=1", "--mem=10M") for _ in range(RAN)]
    cancelled = [sbatch(f"--array=0-{TASKS - 1}", "--hold") for _ in range(CANCELLED)]
    subprocess.run(["scancel", *map(str, cancelled)], check=True)
    while not ended(ran + cancelled, RAN * TASKS):
        time.sleep(10)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps({"ran": ran, "cancelled": cancelled}))
    return ran, cancelled


def write_sweep(folder: Path, name: str, arrays: list[int]) -> None:
    """A sweep of len(arrays) * TASKS runs, each array's tasks one run each."""
    runs, entries = [], []
    for job in arrays:
        ids = tuple(f"r{job:05d}{task:05d}" for task in range(TASKS))
        entries.append(ArrayEntry(job, 0, ids))
        for task, run_id in enumerate(ids):
            swept = {"optim.lr": f"{task / 1000}", "model.width": str(job)}
            overrides = tuple(f"{k}={v}" for k, v in swept.items())
            runs.append(RunEntry(run_id, len(runs), overrides, swept, 0))
            state = RunState("COMPLETED", attempt=1, job=f"{job}_{task}", returncode=0)
            runstate.write(SweepDir(folder).run(run_id).state, state)
    manifest = Manifest(
        name, runstate.now(), ("bench",), "slurm", ("optim.lr", "model.width"), ({},), tuple(runs)
    )
    save(folder, manifest.with_arrays(tuple(entries), "submitted"))


def wrappers(folder: Path, log: Path) -> Path:
    """Scripts named like Slurm's tools that log each call, then run the real one."""
    folder.mkdir()
    for tool in SLURM_TOOLS:
        real = shutil.which(tool)
        if real is None:
            continue
        script = folder / tool
        script.write_text(f'#!/bin/sh\necho {tool} >> "{log}"\nexec "{real}" "$@"\n')
        script.chmod(0o755)
    return folder


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ran, cancelled = jobs()
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-"))
    try:
        log = work / "slurm-calls.log"
        tools = wrappers(work / "bin", log)
        env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
        env["PADDLE_HPC_INDEX"] = str(work / "index.jsonl")
        big = work / "big"
        write_sweep(big, "big", ran)
        sweeps = [ran[i : i + 1] for i in range(RAN)] + [[job] for job in cancelled]
        for number, arrays in enumerate(sweeps):
            folder = work / "many" / f"sweep{number:02d}"
            write_sweep(folder, f"sweep{number:02d}", arrays)
            index.record(folder, folder.name, runstate.now(), work / "index.jsonl")
        python = sys.executable
        cases = {
            "status, 1,000 runs": (
                [python, "-m", "paddle_hpc.status", str(big)],
                ["sacct", *sacct_argv(ran)[1:]],
            ),
            "list, 50 sweeps x 100 runs": (
                [python, "-m", "paddle_hpc.list"],
                ["sacct", *sacct_argv(ran + cancelled)[1:]],
            ),
        }
        for name, (ours, bare) in cases.items():
            log.write_text("")
            subprocess.run(ours, env=env, capture_output=True, check=True)
            calls = log.read_text().split()
            times: dict[str, list[float]] = {"paddle_hpc": [], "sacct": []}
            for _ in range(args.repeat):
                times["paddle_hpc"].append(timed(ours, env))
                times["sacct"].append(timed(bare, env))
            ours_s, bare_s = (statistics.median(times[k]) for k in ("paddle_hpc", "sacct"))
            verdict = "met" if ours_s <= 0.5 and len(calls) == 1 else "MISSED"
            print(
                f"{name}: paddle_hpc {ours_s:.3f} s ({min(times['paddle_hpc']):.3f}-"
                f"{max(times['paddle_hpc']):.3f}), one bare sacct {bare_s:.3f} s, "
                f"ratio {ours_s / bare_s:.1f}; Slurm calls: {len(calls)} ({', '.join(calls)}); "
                f"target <= 0.5 s and 1 call: {verdict}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
