"""Waits and checks the cluster tests share: for Slurm to end a task, then for what
paddle_hpc promises once it has (no process of the run left, within Slurm's KillWait
and a margin); and that a sweep's manifest tracks every array Slurm has for it.

A run's own state can say how it ended before Slurm has ended its task (node 0 writes
it at the signal, or as its launcher exits, while the other nodes and the task are
still ending), so a check of processes or of a requeue waits for Slurm first. A
requeued task's BeginTime is moved nearer (requeued_start_soon), which changes when it
starts, not what it does.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from paddle_hpc.core.manifest import load
from paddle_hpc.core.runstate import SLURM_ENDED
from paddle_hpc.slurm import SlurmClient

# squeue's states of a task that has not ended yet
NOT_ENDED = frozenset(
    {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
)
MARGIN_S = 15.0  # past KillWait: the node runners' own clean-up on a loaded machine


def task_ended(job: str, timeout: float = 300) -> str:
    """Waits until Slurm has ended task `job` ('12_0'); returns its state in squeue then:
    'PENDING' when it was requeued, '' once Slurm has forgotten it."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False
        )
        state = out.stdout.strip() if out.returncode == 0 else ""
        if state not in NOT_ENDED:
            return state
        assert time.monotonic() < deadline, f"Slurm's task {job} is still {state}"
        time.sleep(1)


def charged_by_sacct(jobs: list[str]) -> tuple[float, float, int]:
    """GPU-hours, CPU-hours and allocations of tasks ('12_3'), every requeue's run too,
    by sacct's own figures: AllocTRES' GPUs times ElapsedRaw, and CPUTimeRAW."""
    fields = "AllocTRES,ElapsedRaw,CPUTimeRAW,Start"
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-D", "-o", fields, "-j", ",".join(jobs)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    gpu_s = cpu_s = count = 0
    for line in out.splitlines():
        tres, elapsed, cpu_time, start = line.split("|")
        if start in ("Unknown", "None"):  # pending: never allocated
            continue
        gpus = [int(item.split("=")[1]) for item in tres.split(",") if item.startswith("gres/gpu=")]
        gpu_s += sum(gpus) * int(elapsed)
        cpu_s += int(cpu_time)
        count += 1
    return gpu_s / 3600, cpu_s / 3600, count


def accounted(job: str, timeout: float = 60) -> list[str]:
    """Waits until sacct records how task or job `job` ended; returns its states. The
    database lags the controller: a task squeue has forgotten can have no row yet."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], capture_output=True, text=True
        )
        states = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
        if states and all(state in SLURM_ENDED for state in states):
            return states
        assert time.monotonic() < deadline, f"sacct has not recorded the end of {job}: {states}"
        time.sleep(1)


def kill_wait() -> float:
    """Slurm's KillWait: how long a task's processes have between SIGTERM and SIGKILL."""
    return float(SlurmClient().show_config()["KillWait"].split()[0])


def assert_nothing_left(pattern: str, jobs: tuple[str, ...] = ()) -> None:
    """Once Slurm has ended `jobs`, no process whose command line holds `pattern` is
    left within KillWait and MARGIN_S."""
    for job in jobs:
        task_ended(job)
    deadline = time.monotonic() + kill_wait() + MARGIN_S
    while subprocess.run(["pgrep", "-f", pattern], check=False).returncode == 0:
        left = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
        assert time.monotonic() < deadline, f"left after its task ended: {left}"
        time.sleep(0.5)


def slurm_arrays(name: str) -> set[int]:
    """The job ids of the arrays Slurm holds (squeue) or has started (sacct) under the
    job name `name`, a sweep's name. (An array cancelled before it was ever eligible,
    such as a held one, is in neither: sacct selects jobs by when they were eligible.)"""
    queued = subprocess.run(
        ["squeue", "-h", "--name", name, "-o", "%F"], capture_output=True, text=True, check=True
    ).stdout
    started = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--name", name, "-S", "now-6hours", "-o", "JobID"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(line.split("_")[0]) for line in [*queued.split(), *started.split()]}


def tracks_every_array(sweep_dir: Path, name: str) -> None:
    """Every array Slurm has for the sweep is in its manifest, and every run's current
    task is one Slurm has (slurmdbd records a start a moment after it happens)."""
    manifest = load(sweep_dir)
    tracked = {a.job_id for a in manifest.arrays}
    current = {r.job_id for r in manifest.runs if r.job_id is not None}
    deadline = time.monotonic() + 30
    while not (tracked >= (known := slurm_arrays(name)) >= current):
        assert time.monotonic() < deadline, (
            f"Slurm has arrays {sorted(known)}; the manifest tracks {sorted(tracked)}, "
            f"its runs are in {sorted(current)}"
        )
        time.sleep(1)


def run_logs(sweep_dir: Path, lines: int = 30) -> str:
    """The last lines of every log of every run in a sweep: what a failed cluster test
    shows, so that a rare failure in CI says its cause."""
    shown = []
    for log in sorted((sweep_dir / "runs").glob("*/**/*")):
        if log.is_file() and (log.suffix in {".log", ".out", ".err"} or "workerlog" in log.name):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            shown.append(f"==> {log.relative_to(sweep_dir)} <==\n" + "\n".join(tail))
    return "\n".join(shown)


@contextlib.contextmanager
def requeued_start_soon() -> Iterator[None]:
    """Starts requeued tasks soon (their BeginTime is 2 min out): 5 s after the requeue,
    not at once. A task that Slurm starts again within the second it was requeued in
    fails on the node ("Job credential revoked": slurmd compares the new credential's
    time, in seconds, with the revocation's)."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(1.0):
            out = subprocess.run(
                ["squeue", "-h", "-t", "PD", "-O", "JobArrayID,Reason,EligibleTime"],
                capture_output=True,
                text=True,
            ).stdout
            soon = datetime.now() + timedelta(seconds=15)
            for line in out.splitlines():
                job, reason, start = line.split()
                # Only a task still due late: one moved already must not be moved again.
                if (
                    reason == "BeginTime"
                    and start[:1].isdigit()
                    and datetime.fromisoformat(start) > soon
                ):
                    subprocess.run(
                        ["scontrol", "update", f"jobid={job}", "StartTime=now+5"],
                        capture_output=True,
                    )

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
