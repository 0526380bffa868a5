"""An Optuna search on the test cluster, as a user runs it: `sweep` with search.n_trials
starts a detached driver and returns; 4 trials stay in flight (in batches of 2 in the
second test), a median pruner stops runs that lag, and the study itself is the oracle
of every trial's state, Slurm's accounting of when each ran."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pandas as pd
import pytest

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from tests.cluster import tracks_every_array
from tests.test_sweep_cluster import queued_jobs, run_module, sweep, write_conf

pytestmark = pytest.mark.slurm

# The loss at each step: far from x=0.3 is worse at every step, so laggards are plain.
CURVE = """\
import argparse
import time

from paddle_hpc.metrics import log_metrics

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--steps", type=int)
args = parser.parse_args()
for step in range(1, args.steps + 1):
    log_metrics(step=step, loss=10 * (args.x - 0.3) ** 2 + 1.0 / step)
    time.sleep(1.0)
"""

CONFIG = """\
program:
  script: curve.py
  args: [--x, "${x}", --steps, "${steps}"]
x: 0.5
steps: 14
resources:
  nodes: 1
  cpus_per_task: 1
  time: "00:05:00"
sweep:
  name: searched
search:
  n_trials: 12
  parallel: 4
  params:
    x: interval(0.0, 1.0)
  objective: final.loss
  sampler: {_target_: optuna.samplers.RandomSampler, seed: 3}
  pruner: {_target_: optuna.pruners.MedianPruner, n_startup_trials: 4, n_warmup_steps: 2}
  poll: 2
"""


CONFIG_POLL = 2
SUBMITTED_WITHIN = 15  # s from a look that sees a trial end to the next one's start


def stays_in_flight(runs: pd.DataFrame, k: int, gap: tuple[datetime, datetime]) -> None:
    """By Slurm's start and end of each trial: never more than k ran at once, and each
    trial that ended (but the last k) was followed by a start within a poll and a
    submission, or once the next driver took up the search when it ended in the `gap`
    without a driver."""
    starts = pd.to_datetime(runs["start"]).sort_values().tolist()
    ends = pd.to_datetime(runs["end"]).sort_values().tolist()
    for at in starts:
        running = sum(s <= at for s in starts) - sum(e <= at for e in ends)
        assert running <= k, f"{running} trials ran at once at {at}"
    for end in ends[: len(ends) - k]:
        wait = (min(s for s in starts if s >= end) - end).total_seconds()
        allowed = CONFIG_POLL + SUBMITTED_WITHIN
        if gap[0] <= end <= gap[1]:
            allowed += (gap[1] - end).total_seconds()
        assert wait <= allowed, f"a trial ended at {end}, the next started {wait} s later"


def study_of(sweep_dir: Path) -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(sweep_dir / "search" / "study.journal")))
    return optuna.load_study(study_name="paddle_hpc", storage=storage)


def asked(sweep_dir: Path) -> int:
    """The trials the study has, 0 before the driver made it."""
    try:
        return len(study_of(sweep_dir).trials)
    except KeyError:  # Optuna's "Record does not exist."
        return 0


def driver_pid(sweep_dir: Path) -> int:
    return int((sweep_dir / "search" / "driver.lock").read_text().split()[0])


def wait_for(log: Path, text: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, f"no {count}x {text!r} in {log}:\n{log.read_text()}"
        time.sleep(2)


def test_a_search_prunes_survives_its_driver_and_goes_on_with_more_trials(tmp_path: Path) -> None:
    write_conf(tmp_path, CONFIG)
    (tmp_path / "curve.py").write_text(CURVE)
    sweep_dir = tmp_path / "sweeps" / "searched"
    log = sweep_dir / "search" / "driver.log"

    started = sweep(tmp_path)  # returns at once: the driver runs detached
    assert started.returncode == 0, started.stdout + started.stderr
    assert "driver: pid" in started.stdout and "search of 12 trials" in started.stdout

    # the login session ends once 7 trials were asked: the driver is killed mid-search
    deadline = time.monotonic() + 300
    while asked(sweep_dir) < 7:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    os.kill(driver_pid(sweep_dir), signal.SIGKILL)
    killed = datetime.now()
    again = sweep(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    wait_for(log, "running trial(s)", 1, timeout=60)
    taken_up = datetime.now()
    assert re.search(r"taking up [1-4] running trial\(s\)", log.read_text()), log.read_text()
    wait_for(log, "search done", 1, timeout=600)

    study = study_of(sweep_dir)
    assert len(study.trials) == 12
    states = {t.number: t.state.name for t in study.trials}
    assert "RUNNING" not in states.values()
    assert list(states.values()).count("PRUNED") >= 1, states

    tables = load_tables(sweep_dir)
    runs = tables.runs.set_index("search.trial")
    assert sorted(runs.index) == list(range(12))
    for trial in study.trials:
        row = runs.loc[trial.number]
        assert row["trial_state"] == trial.state.name
        assert row["x"] == pytest.approx(trial.params["x"])
        if trial.state.name == "COMPLETE":
            assert row["state"] == "COMPLETED" and row["final.loss"] == trial.value
        if trial.state.name == "PRUNED":
            assert row["state"] == "PRUNED" and "pruned by Optuna at step" in row["reason"]
    run_ids = {trial.number: trial.user_attrs["run_id"] for trial in study.trials}
    metrics = tables.metrics
    for number, state in states.items():
        logged = metrics[metrics["run_id"] == run_ids[number]]["step"]
        if state == "PRUNED":  # stopped well before its last step
            assert logged.max() < 14
        if state == "COMPLETE":
            assert logged.max() == 14
    arrays = {str(a.job_id) for a in load(sweep_dir).arrays}
    assert len(arrays) >= 4 and not [j for j in queued_jobs() if j.split("_")[0] in arrays]
    stays_in_flight(tables.runs, 4, (killed, taken_up))

    status = run_module("paddle_hpc.status", str(sweep_dir), "--all")
    assert status.returncode == 0, status.stderr
    assert "PRUNED" in status.stdout and "search.trial" in status.stdout

    # the same command with more trials: the study goes on, the first 12 stay as they are
    more = sweep(tmp_path, "search.n_trials=16")
    assert more.returncode == 0, more.stdout + more.stderr
    wait_for(log, "search done", 2, timeout=300)
    study = study_of(sweep_dir)
    assert len(study.trials) == 16
    assert {t.number: t.state.name for t in study.trials[:12]} == states
    assert len(load(sweep_dir).runs) == 16
    with_more = load_tables(sweep_dir).runs
    assert sorted(with_more["search.trial"]) == list(range(16))
    assert (with_more["trial_state"] != "RUNNING").all()
    # the driver exits by itself once done; its last log line comes before Python's exit
    driver = ["pgrep", "-f", f"paddle_hpc.search {sweep_dir}"]
    deadline = time.monotonic() + 30
    while subprocess.run(driver, capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the search driver is still running once done"
        time.sleep(0.5)


def test_retries_while_a_search_driver_submits_lose_no_submission(tmp_path: Path) -> None:
    """`retry` over and over, three at a time, while the driver plans and submits its
    batches of the same sweep: every array Slurm got stays tracked by the manifest."""
    name = f"racing{os.getpid()}"
    (tmp_path / "fails.py").write_text(  # a trial with x above 0.5 fails at once
        "import sys\nsys.exit(1 if float(sys.argv[1]) > 0.5 else 0)\n"
    )
    write_conf(
        tmp_path,
        f"""\
program: {{script: fails.py, args: ["${{x}}"]}}
x: 0.5
resources: {{nodes: 1, cpus_per_task: 1, time: "00:05:00"}}
sweep: {{name: {name}}}
search:
  n_trials: 8
  batch_size: 2
  params: {{x: "interval(0.0, 1.0)"}}
  objective: final.loss
  sampler: {{_target_: optuna.samplers.RandomSampler, seed: 5}}
  poll: 1
""",
    )
    sweep_dir = tmp_path / "sweeps" / name
    log = sweep_dir / "search" / "driver.log"
    assert sweep(tmp_path).returncode == 0
    retries = 0
    try:
        deadline = time.monotonic() + 600
        while not (sweep_dir / "manifest.json").exists():  # the driver's first batch
            assert time.monotonic() < deadline, "the driver planned nothing"
            time.sleep(0.2)
        while not (log.exists() and "search done" in log.read_text()):
            assert time.monotonic() < deadline, log.read_text()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "paddle_hpc.retry", str(sweep_dir)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(3)
            ]
            for proc in procs:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0 or "nothing to retry" in err, (out, err)
                retries += "retrying" in out
        assert retries >= 1  # the race happened: retries submitted while the driver ran
        assert len(load(sweep_dir).runs) == 8
        tracks_every_array(sweep_dir, name)
    finally:  # by name: what a lost submission left in the queue too
        subprocess.run(["scancel", "--name", name], check=False)
