"""Runs that Slurm stops come back and resume from their checkpoints, on the test
cluster: near the time limit, and when an `urgent` job preempts them.

A requeued task waits about two minutes for its BeginTime; `release` starts it 5 s
after its requeue (`scontrol update StartTime=now+5`), which changes when it starts,
not what it does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddle_hpc.backend.charges import hours
from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from tests.cluster import (
    accounted,
    assert_nothing_left,
    charged_by_sacct,
    requeued_start_soon,
    task_ended,
)
from tests.test_sweep_cluster import sweep, write_conf

pytestmark = pytest.mark.slurm

# Deterministic: every rank draws the same data, so the losses do not depend on the
# world size or on where the run stopped. It stops when every rank agrees to.
RESUMABLE = """\
import os, sys, time
import numpy as np, paddle, paddle.distributed as dist
from paddle_hpc import checkpoint, log_metrics
epochs, pause = int(sys.argv[1]), float(sys.argv[2])
dist.init_parallel_env()
paddle.seed(0)
rng = np.random.default_rng(0)
model = paddle.nn.Linear(4, 1)
optimizer = paddle.optimizer.Adam(learning_rate=0.05, parameters=model.parameters())
start = 0
if (found := checkpoint.load(model=model, optimizer=optimizer)) is not None:
    start = found.step + 1
    rng.bit_generator.state = found.extra["rng"]
    print(f"resumed after epoch {found.step}", flush=True)
for epoch in range(start, epochs):
    x = rng.normal(size=(16, 4)).astype("float32")
    loss = ((model(paddle.to_tensor(x)) - paddle.to_tensor(x.sum(1, keepdims=True))) ** 2).mean()
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    log_metrics(step=epoch, loss=float(loss))
    print(f"epoch {epoch} loss {float(loss):.6f}", flush=True)
    checkpoint.save(epoch, model=model, optimizer=optimizer,
                    extra={"rng": rng.bit_generator.state})
    time.sleep(pause)
    stop = paddle.to_tensor([int(checkpoint.should_stop())])
    if dist.get_world_size() > 1:
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)
    if stop.item():
        print(f"stopping after epoch {epoch}", flush=True)
        break
"""


def reference_losses(tmp_path: Path, epochs: int) -> list[float]:
    """The same training left alone: one process, no Slurm."""
    folder = tmp_path / "alone"
    folder.mkdir()
    env = {**os.environ, "PADDLE_HPC_RUN_DIR": str(folder)}
    subprocess.run(
        [sys.executable, str(tmp_path / "resumable.py"), str(epochs), "0"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.fixture
def release() -> Iterator[None]:
    with requeued_start_soon():
        yield


def finished(sweep_dir: Path, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run(
            [sys.executable, "-m", "paddle_hpc.status", str(sweep_dir), "--all"],
            capture_output=True,
            text=True,
        )
        if any(f"{state} 1" in result.stdout for state in ("COMPLETED", "FAILED", "TIMEOUT")):
            break
        time.sleep(3)
    else:
        result = subprocess.run(
            [sys.executable, "-m", "paddle_hpc.status", str(sweep_dir), "--all"],
            capture_output=True,
            text=True,
        )
    (run,) = load(sweep_dir).runs
    state = json.loads((sweep_dir / "runs" / run.run_id / "state.json").read_text())
    return {"run": run, "state": state, "status": result.stdout}


def squeued(job: str) -> list[str]:
    """The job's state and reason in squeue."""
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True)
    return out.stdout.split()


def preempt() -> str:
    """An `urgent` job that takes both nodes for 5 s: it preempts whatever runs in debug."""
    return subprocess.run(
        [
            "sbatch",
            "--parsable",
            "-p",
            "urgent",
            "-N",
            "2",
            "--exclusive",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 5",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def project(
    tmp_path: Path, name: str, epochs: int, pause: float, resources: dict[str, object]
) -> None:
    (tmp_path / "resumable.py").write_text(RESUMABLE)
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "resumable.py", "args": [str(epochs), str(pause)]},
                "resources": resources,
                "sweep": {"name": name, "max_requeues": 6},
            }
        ),
    )


def test_a_run_past_its_time_limit_completes_across_requeues(tmp_path: Path, release: None) -> None:
    # Slurm sends --signal at its first check (every 30 s) that finds at most the
    # signal's lead plus 30 s left (as observed here; up to 60 s early, sbatch(1) says):
    # with a two-minute limit and 25 s, 65-95 s into an attempt. 40 epochs of 2.5 s
    # outlast that, so the first attempt is stopped, saves and is requeued, and the
    # second finishes. (With a one-minute limit the signal comes 5-35 s in: some
    # attempts then save one epoch and the requeues run out.)
    project(tmp_path, "limited", 40, 2.5, {"nodes": 2, "time": "2", "signal_before": 25})
    assert sweep(tmp_path).returncode == 0
    sweep_dir = tmp_path / "sweeps" / "limited"
    found = finished(sweep_dir, timeout=600)
    state, run = found["state"], found["run"]
    assert state["state"] == "COMPLETED", found  # type: ignore[index]
    run_dir = sweep_dir / "runs" / run.run_id  # type: ignore[attr-defined]
    attempts = sorted(int(p.name) for p in (run_dir / "attempts").iterdir())
    assert len(attempts) >= 1 and state["attempt"] == len(attempts) + 1  # type: ignore[index]
    for number in attempts:  # each stopped attempt saved, then was requeued to resume
        earlier = json.loads((run_dir / "attempts" / str(number) / "state.json").read_text())
        assert earlier["state"] == "TIMEOUT" and earlier["retrying"] is True, earlier
        assert earlier["reason"].startswith("TIMEOUT: saved step ")
    later = (run_dir / "logs" / "node0" / "workerlog.0").read_text()
    assert "resumed after epoch" in later
    tables = load_tables(sweep_dir)
    losses = tables.metrics[tables.metrics["name"] == "loss"]
    assert losses["step"].tolist() == list(range(40))  # each step once
    assert losses["value"].tolist() == pytest.approx(reference_losses(tmp_path, 40), rel=1e-6)
    assert tables.runs["restarts"].tolist() == [len(attempts)]
    assert state["history"] == ["TIMEOUT"] * len(attempts)  # type: ignore[index]
    assert tables.runs["history"].tolist() == [", ".join(["TIMEOUT"] * len(attempts))]
    said = losses["attempt"].tolist()  # which attempt logged each step: 1, 1, ..., 2, ...
    assert said == sorted(said) and said[0] == 1
    # The last step is the last attempt's, or, when Slurm's signal came just after the
    # last epoch, the one before: it saved that step and came back to find nothing left.
    assert said[-1] in (state["attempt"], state["attempt"] - 1)  # type: ignore[index]


def test_a_preempted_run_saves_comes_back_and_resumes(tmp_path: Path, release: None) -> None:
    project(tmp_path, "preempted", 12, 2.0, {"nodes": 2, "time": "10", "gpus_per_node": 1})
    assert sweep(tmp_path).returncode == 0
    sweep_dir = tmp_path / "sweeps" / "preempted"
    (run,) = load(sweep_dir).runs
    metrics = sweep_dir / "runs" / run.run_id / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.5)
    urgent = preempt()
    found = finished(sweep_dir, timeout=420)
    state = found["state"]
    assert state["state"] == "COMPLETED", found  # type: ignore[index]
    run_dir = sweep_dir / "runs" / run.run_id
    first = json.loads((run_dir / "attempts" / "1" / "state.json").read_text())
    assert first["state"] == "PREEMPTED" and first["reason"].startswith("PREEMPTED: saved step")
    tables = load_tables(sweep_dir)
    losses = tables.metrics[tables.metrics["name"] == "loss"]
    assert losses["step"].tolist() == list(range(12))
    assert losses["value"].tolist() == pytest.approx(reference_losses(tmp_path, 12), rel=1e-6)
    said = losses["attempt"].tolist()
    assert said == sorted(said) and said[0] == 1 and said[-1] == 2, said
    assert tables.runs["restarts"].tolist() == [1]
    assert state["history"] == ["PREEMPTED"] and tables.runs["history"].tolist() == ["PREEMPTED"]
    # what both allocations were charged, as sacct itself counts it
    gpu_hours, cpu_hours, allocations = charged_by_sacct([state["job"]])  # type: ignore[list-item]
    assert allocations == 2 and gpu_hours > 0
    assert tables.runs["gpu_hours"].tolist() == pytest.approx([gpu_hours])
    assert tables.runs["cpu_hours"].tolist() == pytest.approx([cpu_hours])
    charged = f"{hours(gpu_hours)} GPU-hours, {hours(cpu_hours)} CPU-hours (2 allocations)"
    assert f"charged so far: {charged}" in str(found["status"])
    assert accounted(urgent) == ["COMPLETED"]
    assert_nothing_left(str(tmp_path / "resumable.py"), (state["job"],))  # type: ignore[index]


def a_minute_on_two_nodes(tmp_path: Path, name: str, body: str) -> Path:
    """Submits a sweep of one run of the script `body` on two nodes, with a one-minute
    time limit and Slurm's signal 30 s before it; returns the sweep directory."""
    (tmp_path / f"{name}.py").write_text(body)
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": f"{name}.py"},
                "resources": {"nodes": 2, "time": "1", "signal_before": 30},
                "sweep": {"name": name},
            }
        ),
    )
    assert sweep(tmp_path).returncode == 0
    return tmp_path / "sweeps" / name


def test_a_run_without_checkpoints_ends_timeout_and_is_not_requeued(tmp_path: Path) -> None:
    sweep_dir = a_minute_on_two_nodes(  # a script that knows nothing of checkpoints
        tmp_path, "sleepy", "import time\nprint('working', flush=True)\ntime.sleep(600)\n"
    )
    found = finished(sweep_dir, timeout=300)
    deadline = time.monotonic() + 120
    while "TIMEOUT 1" not in str(found["status"]) and time.monotonic() < deadline:
        time.sleep(3)
        found = finished(sweep_dir, timeout=0)
    assert "TIMEOUT 1" in str(found["status"]), found
    state = found["state"]
    assert state["state"] == "TIMEOUT" and state["retrying"] is False, state  # type: ignore[index]
    assert "no checkpoint saved" in state["reason"]  # type: ignore[index]
    assert task_ended(state["job"]) != "PENDING"  # type: ignore[index]  # not requeued
    run_dir = sweep_dir / "runs" / found["run"].run_id  # type: ignore[attr-defined]
    assert not (run_dir / "attempts").exists()
    assert_nothing_left(str(tmp_path / "sleepy.py"))


def test_a_stop_signal_that_comes_while_the_task_starts_is_heard(tmp_path: Path) -> None:
    """Slurm sends its stop signal up to a minute before it is due: with a one-minute
    limit it can come as the task starts, before any handler. Sent here at once, over
    and over while the task starts, it must stop the run as asked, not end it FAILED."""
    sweep_dir = a_minute_on_two_nodes(
        tmp_path,
        "heedful",
        "import time\n"
        "from paddle_hpc import checkpoint\n"
        "while not checkpoint.should_stop():\n"
        "    time.sleep(0.2)\n"
        "print('told to stop', flush=True)\n",
    )
    (run,) = load(sweep_dir).runs
    job = f"{load(sweep_dir).arrays[0].job_id}_0"
    deadline = time.monotonic() + 120
    while squeued(job)[:1] != ["RUNNING"]:
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    # slurmstepd opens the step's output files, then starts each task's shell, which
    # ignores USR2 before it starts Python (slurm/executor.py); a signal in the shell's
    # first millisecond is Slurm's start, not the task's, and the barrage waits it out
    outputs = [sweep_dir / "slurm" / f"{job}_{task}_log.err" for task in (0, 1)]
    while not all(path.exists() for path in outputs):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.01)
    time.sleep(0.3)  # Python's start and imports, before any handler, take longer
    until = time.monotonic() + 3
    while time.monotonic() < until:
        subprocess.run(["scancel", "-s", "USR2", job], capture_output=True, check=False)
        time.sleep(0.05)
    assert task_ended(job, timeout=120) != "PENDING"
    assert accounted(job) == ["COMPLETED"]
    run_dir = sweep_dir / "runs" / run.run_id
    asked = json.loads((run_dir / "stop.json").read_text())
    assert asked["reason"] == "TIMEOUT"  # the limit is a minute away: Slurm's early signal
    for node in (0, 1):
        assert "told to stop" in (run_dir / "logs" / f"node{node}" / "workerlog.0").read_text()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["state"] == "COMPLETED", state
    assert_nothing_left(str(tmp_path / "heedful.py"))


def test_a_run_whose_node_fails_resumes_on_a_healthy_node(tmp_path: Path) -> None:
    project(tmp_path, "nodefail", 12, 2.0, {"nodes": 1, "time": "10"})
    assert sweep(tmp_path).returncode == 0
    sweep_dir = tmp_path / "sweeps" / "nodefail"
    (run,) = load(sweep_dir).runs
    run_dir = sweep_dir / "runs" / run.run_id
    deadline = time.monotonic() + 120
    while not (
        (run_dir / "metrics.jsonl").exists()
        and len((run_dir / "metrics.jsonl").read_text().splitlines()) >= 3
    ):
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.5)
    node = json.loads((run_dir / "state.json").read_text())["job"]
    host = subprocess.run(
        ["squeue", "-h", "-j", node, "-o", "%N"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert host in ("n1", "n2"), host
    try:
        subprocess.run(
            ["scontrol", "update", f"nodename={host}", "state=down", "reason=paddle_hpc test"],
            check=True,
        )
        # The failed node's slurmd needs a moment to clean up before it can take a job
        # again (started at once, the launch fails and Slurm holds the task); the
        # requeue's own BeginTime is two minutes: start it after twenty seconds.
        time.sleep(20)
        subprocess.run(
            ["scontrol", "update", f"jobid={node}", "StartTime=now"], capture_output=True
        )
        found = finished(sweep_dir, timeout=420)
    finally:  # ReturnToService=2 brings it back by itself; make sure
        subprocess.run(
            ["scontrol", "update", f"nodename={host}", "state=resume"], capture_output=True
        )
    assert found["state"]["state"] == "COMPLETED", found  # type: ignore[index]
    assert found["state"]["restarts"] == 1  # type: ignore[index]
    assert found["state"]["history"] == ["NODE_FAIL"]  # type: ignore[index]
    second = (run_dir / "logs" / "node0" / "workerlog.0").read_text()
    assert "resumed after epoch" in second
    tables = load_tables(sweep_dir)
    losses = tables.metrics[tables.metrics["name"] == "loss"]
    assert losses["step"].tolist() == list(range(12))
    assert losses["value"].tolist() == pytest.approx(reference_losses(tmp_path, 12), rel=1e-6)
    assert tables.runs["restarts"].tolist() == [1]
    assert_nothing_left(str(tmp_path / "resumable.py"), (node,))


def test_a_preempted_run_that_ignores_every_signal_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "stubborn.py").write_text(  # no checkpoints; deaf to SIGTERM and USR2
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('working', flush=True)\n"
        "time.sleep(600)\n"
    )
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "stubborn.py"},
                "resources": {"nodes": 2, "time": "10"},
                "sweep": {"name": "stubborn"},
            }
        ),
    )
    assert sweep(tmp_path).returncode == 0
    sweep_dir = tmp_path / "sweeps" / "stubborn"
    (run,) = load(sweep_dir).runs
    run_dir = sweep_dir / "runs" / run.run_id
    try:
        deadline = time.monotonic() + 120
        while "working" not in "".join(
            p.read_text() for p in run_dir.glob("logs/node*/workerlog.*")
        ):
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.5)
        preempt()
        # GraceTime 20 s, then SIGTERM; SIGKILL 10 s later; the requeued task then
        # waits two minutes for its BeginTime: nothing of the run may be left meanwhile.
        deadline = time.monotonic() + 60
        while json.loads((run_dir / "state.json").read_text())["state"] == "RUNNING":
            assert time.monotonic() < deadline, "the run's state stayed RUNNING"
            time.sleep(1)
        state = json.loads((run_dir / "state.json").read_text())
        assert state["state"] == "PREEMPTED" and state["retrying"] is True, state
        assert state["reason"].startswith("PREEMPTED: stopped by SIGTERM"), state
        assert task_ended(state["job"]) == "PENDING"
        assert_nothing_left(str(tmp_path / "stubborn.py"))
        deadline = time.monotonic() + 30
        while (queued := squeued(state["job"])) != ["PENDING", "BeginTime"]:
            assert time.monotonic() < deadline, f"not requeued by Slurm: {queued}"
            time.sleep(1)
    finally:
        subprocess.run(["scancel", *(str(a.job_id) for a in load(sweep_dir).arrays)])
