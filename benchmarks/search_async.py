"""An asynchronous search against the same search in batches, on the test cluster.

24 trials, each asking for one of the cluster's 4 (fake) GPUs, 4 at a time: in batches
of 4 (`search.batch_size=4`), and kept in flight (`search.parallel=4`). Each trial
sleeps a duration drawn from its parameter, 1:4 (`--unit` s to 4x that), started like
every run through `paddle.distributed.launch`. A seeded random sampler asks the same
24 points in both, so both do the same work; the two run one after the other in the
same run of this script.

From Slurm's accounting of each trial (its start and end), with the trials sorted:
- GPU-slot idle time: slot-seconds between one trial's end and the next start on that
  slot. With every slot busy from the first K starts to the last K ends, that is
  sum(starts[K:]) - sum(ends[:-K]), whichever slot each trial ran on.
- makespan: the first start to the last end.

    make bench    (or: .venv/bin/python benchmarks/search_async.py [--unit S])

Targets (issue 28): idle time <= 1/4 of batch mode's; makespan <= 0.8 of it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from paddle_hpc.collect import load

TRIALS, K = 24, 4
TRIAL = """\
import sys
import time

from paddle_hpc.metrics import log_metrics

x, unit = float(sys.argv[1]), float(sys.argv[2])
time.sleep(unit * (1 + 3 * x))
log_metrics(step=0, loss=(x - 0.3) ** 2)
"""
CONFIG = """\
program: {{script: trial.py, args: ["${{x}}", "{unit}"]}}
x: 0.5
resources: {{nodes: 1, cpus_per_task: 1, gpus_per_node: 1, time: "30"}}
search:
  n_trials: {trials}
  params: {{x: "interval(0.0, 1.0)"}}
  objective: final.loss
  sampler: {{_target_: optuna.samplers.RandomSampler, seed: 7}}
  poll: 1
"""
MODES = {"batches": f"search.batch_size={K}", "asynchronous": f"search.parallel={K}"}


def search(work: Path, name: str, mode: str) -> pd.DataFrame:
    """Runs the search to its end; its runs table."""
    sweep_dir = work / "sweeps" / name
    subprocess.run(
        [sys.executable, "-m", "paddle_hpc.sweep", f"sweep.name={name}", mode],
        cwd=work,
        check=True,
        capture_output=True,
    )
    log = sweep_dir / "search" / "driver.log"
    deadline = time.monotonic() + 3600
    while not (log.exists() and "search done" in log.read_text()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: not done in an hour; see {log}")
        time.sleep(2)
    runs = load(sweep_dir).runs
    if len(runs) != TRIALS or (runs["state"] != "COMPLETED").any():
        raise RuntimeError(f"{name}: {runs['state'].value_counts().to_dict()}; see {log}")
    return runs


def figures(runs: pd.DataFrame) -> tuple[float, float, list[float]]:
    """Slot idle seconds, makespan seconds, and the trials' x values (sorted)."""
    starts = pd.to_datetime(runs["start"]).sort_values()
    ends = pd.to_datetime(runs["end"]).sort_values()
    idle = (starts.iloc[K:] - pd.Timestamp(0)).dt.total_seconds().sum() - (
        ends.iloc[:-K] - pd.Timestamp(0)
    ).dt.total_seconds().sum()
    makespan = (ends.iloc[-1] - starts.iloc[0]).total_seconds()
    return float(idle), makespan, sorted(runs["x"].round(9))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unit", type=float, default=20.0, help="the shortest trial, s")
    args = parser.parse_args()
    found: dict[str, tuple[float, float, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "trial.py").write_text(TRIAL)
        (work / "conf").mkdir()
        (work / "conf" / "config.yaml").write_text(CONFIG.format(unit=args.unit, trials=TRIALS))
        for name, mode in MODES.items():
            found[name] = figures(search(work, name, mode))
    (idle_b, span_b, xs_b), (idle_a, span_a, xs_a) = found["batches"], found["asynchronous"]
    assert xs_a == xs_b, "the two searches ran different trials"
    work_s = sum(args.unit * (1 + 3 * x) for x in xs_a)
    span = f"{args.unit:g}-{4 * args.unit:g} s"
    print(f"{TRIALS} trials of {span} ({work_s:.0f} s of sleep), {K} GPUs")
    print("| figure | asynchronous | batches | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    ratio = idle_a / idle_b
    print(
        f"| GPU-slot idle time | {idle_a:.0f} slot-s | {idle_b:.0f} slot-s | {ratio:.2f} | "
        f"<= 0.25: {'met' if ratio <= 0.25 else 'MISSED'} |"
    )
    ratio = span_a / span_b
    print(
        f"| makespan | {span_a:.0f} s | {span_b:.0f} s | {ratio:.2f} | "
        f"<= 0.8: {'met' if ratio <= 0.8 else 'MISSED'} |"
    )


if __name__ == "__main__":
    main()
