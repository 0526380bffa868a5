"""Steps that follow each run (sweep.then): what a step's state is, how its files are
named, bad steps refused by name, and a sweep with a step here without Slurm and on
the test cluster, where each step waits for its own run only."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.layout import step_of
from paddle_hpc.core.manifest import load
from paddle_hpc.core.runstate import RunState, step_state
from tests.test_sweep_cluster import run_module, sweep, write_conf

TRAIN = """\
import sys, time
x = float(sys.argv[1])
time.sleep(x)
sys.exit(1 if x > 10 else 0)  # a run made to fail
"""
EVALUATE = """\
import os, sys
from paddle_hpc import log_metrics
if os.path.exists(os.environ.get("FAIL_ONCE", "")):
    os.remove(os.environ["FAIL_ONCE"])
    sys.exit("failing once")
ckpt, x = sys.argv[1], float(sys.argv[2])
assert ckpt == os.path.join(os.getcwd(), "ckpt"), (ckpt, os.getcwd())  # ${run:dir}
print("evaluating", x, flush=True)
log_metrics(step=0, acc=1 / (1 + x))
"""
CONFIG = """\
program: {script: train.py, args: ["${x}"]}
x: 0
resources: {nodes: 1, cpus_per_task: 1, time: "5"}
sweep:
  name: stepped
  then:
    evaluate:
      script: evaluate.py
      args: ["${run:dir}/ckpt", "${x}"]
      resources: {partition: right, cpus_per_task: 1, time: "5"}
"""


@pytest.mark.parametrize(
    ("own", "run", "slurm", "expected"),
    [
        (RunState("COMPLETED", job="9_1"), "COMPLETED", None, "COMPLETED"),
        (RunState("RUNNING", job="9_1"), "COMPLETED", "RUNNING", "RUNNING"),
        (None, "COMPLETED", None, "PENDING"),  # its task waits in the queue
        (None, "RUNNING", None, "PENDING"),
        (None, "FAILED", None, "CANCELLED"),  # its dependency can never be met
        (None, "PRUNED", None, "CANCELLED"),
        (None, "COMPLETED", "NODE_FAIL", "NODE_FAIL"),  # its task never started
        (None, "COMPLETED", "PENDING", "PENDING"),
        # the file of the submission before: retried, the step waits for its task again
        (RunState("FAILED", job="5_1"), "COMPLETED", None, "PENDING"),
    ],
)
def test_a_steps_state(own: RunState | None, run: str, slurm: str | None, expected: str) -> None:
    assert step_state(own, run, slurm, "9_1") == expected
    if own is not None:  # without Slurm a step has no task: its file is its state
        assert step_state(own, run, slurm, None) == own.state


def test_a_steps_files_are_named_after_it() -> None:
    assert step_of("runs/r1/then/evaluate/metrics.jsonl") == "evaluate"
    assert step_of("runs/r1/metrics.jsonl") is None
    assert step_of("runs/r1/then/metrics.jsonl") is None  # a run's own file named so
    assert step_of("runs/then/then/x/metrics.jsonl") == "x"


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("+sweep.then.evaluate.module=x", "set exactly one of sweep.then.evaluate.script"),
        ("sweep.then.evaluate.script=gone.py", "sweep.then.evaluate.script is 'gone.py'"),
        ("sweep.trials_per_task=2", "sweep.then.evaluate: a step follows its run's array task"),
        ("sweep.then.evaluate.resources.time=soon", "sweep.then.evaluate.resources.time"),
        ("sweep.then.evaluate.nope=1", "Could not override 'sweep.then.evaluate.nope'"),
    ],
)
def test_a_bad_step_is_refused_by_name_before_anything_is_written(
    tmp_path: Path, override: str, says: str
) -> None:
    project(tmp_path)
    result = sweep(tmp_path, "cluster.executor=local", "x=1", override)
    assert result.returncode != 0, result.stdout
    assert says in result.stdout + result.stderr
    assert not (tmp_path / "sweeps" / "stepped").exists()


def test_a_step_named_what_no_folder_or_job_can_be_named_is_refused(tmp_path: Path) -> None:
    project(tmp_path, CONFIG.replace("evaluate:", "'eval uate':"))
    result = sweep(tmp_path, "cluster.executor=local", "x=1")
    assert result.returncode != 0 and "sweep.then.eval uate: a step's name starts" in result.stderr


def project(tmp_path: Path, config: str = CONFIG) -> Path:
    write_conf(tmp_path, config)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "evaluate.py").write_text(EVALUATE)
    return tmp_path / "sweeps" / "stepped"


def test_without_slurm_each_run_is_followed_by_its_step(tmp_path: Path) -> None:
    sweep_dir = project(tmp_path)
    dry = sweep(tmp_path, "--dry-run", "cluster.executor=local", "x=0,20")
    assert "# then evaluate: an array of the same tasks" in dry.stdout, dry.stdout + dry.stderr
    assert f"evaluate.py {sweep_dir}/runs/" in dry.stdout and "/ckpt 0" in dry.stdout
    done = sweep(tmp_path, "--wait", "cluster.executor=local", "x=0,20")
    assert "step evaluate" in done.stdout, done.stdout + done.stderr
    table = load_tables(sweep_dir).runs
    runs = table.set_index("x")
    assert runs.loc[0, "then.evaluate"] == "COMPLETED" and runs.loc[0, "final.evaluate.acc"] == 1
    assert runs.loc[20, "state"] == "FAILED" and runs.loc[20, "then.evaluate"] == "CANCELLED"
    status = run_module("paddle_hpc.status", str(sweep_dir))
    assert "then evaluate: CANCELLED 1 (its run did not complete), COMPLETED 1" in status.stdout
    run_id = str(table.index[table["x"] == 0][0])
    logs = run_module("paddle_hpc.logs", str(sweep_dir), run_id, "--then", "evaluate")
    assert "evaluating 0.0" in logs.stdout, logs.stdout + logs.stderr


def sacct(job: str, fields: str) -> list[str]:
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", job, "-o", fields],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().split("|")


def sacct_times(job: str) -> tuple[datetime, datetime]:
    start, end = sacct(job, "Start,End")
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def sacct_state(job: str) -> str:
    return sacct(job, "State")[0]


@pytest.mark.slurm
def test_each_step_follows_its_own_run_and_a_failed_runs_step_is_cancelled(
    tmp_path: Path,
) -> None:
    sweep_dir = project(tmp_path)
    flag = tmp_path / "fail-once"
    flag.touch()  # the quick run's step fails once, and is retried by hand
    started = sweep(tmp_path, "x=0,30,40", f"+sweep.then.evaluate.env.FAIL_ONCE={flag}")
    assert started.returncode == 0, started.stdout + started.stderr
    runs = wait_for_steps(sweep_dir)
    assert runs["state"].to_dict() == {0: "COMPLETED", 30: "FAILED", 40: "FAILED"}
    assert runs["then.evaluate"].to_dict() == {0: "FAILED", 30: "CANCELLED", 40: "CANCELLED"}
    manifest = load(sweep_dir)
    train, step = manifest.arrays
    assert step.step == "evaluate" and step.run_ids == train.run_ids
    quick, slow = (manifest.runs[i] for i in (0, 1))
    _, quick_end = sacct_times(f"{train.job_id}_{quick.array_task}")
    step_start, _ = sacct_times(f"{step.job_id}_0")
    _, slow_end = sacct_times(f"{train.job_id}_{slow.array_task}")
    assert quick_end <= step_start < slow_end  # after its own run, not the whole array
    assert sacct_state(f"{step.job_id}_2").startswith("CANCELLED")  # never started
    logs = run_module("paddle_hpc.logs", str(sweep_dir), quick.run_id, "--then", "evaluate")
    assert "failing once" in logs.stdout, logs.stdout + logs.stderr

    retried = run_module("paddle_hpc.retry", str(sweep_dir), "--then", "evaluate")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "retrying step evaluate of 1 run(s)" in retried.stdout
    runs = wait_for_steps(sweep_dir)
    assert runs["then.evaluate"].to_dict() == {0: "COMPLETED", 30: "CANCELLED", 40: "CANCELLED"}
    assert runs.loc[0, "final.evaluate.acc"] == 1.0
    again = load(sweep_dir).arrays[-1]
    assert again.step == "evaluate" and again.run_ids == (quick.run_id,)
    status = run_module("paddle_hpc.status", str(sweep_dir))
    assert "then evaluate: CANCELLED 2 (its run did not complete), COMPLETED 1" in status.stdout


def wait_for_steps(sweep_dir: Path) -> pd.DataFrame:
    """The runs table, by x, once every run's step has ended."""
    deadline = time.monotonic() + 300
    while True:
        runs = load_tables(sweep_dir).runs.set_index("x")
        if set(runs["then.evaluate"]) <= {"COMPLETED", "CANCELLED", "FAILED"}:
            return runs
        assert time.monotonic() < deadline, runs.to_string()
        time.sleep(3)
