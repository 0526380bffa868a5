"""What a packed array task runs on its node: its trials, as many at once as its slots
allow (core/packing.py), each through its own paddle.distributed.launch.

Each trial gets its slot's GPUs (CUDA_VISIBLE_DEVICES), a free master port, and so,
with the CPU build, a gloo group of its own. A trial is one run, with everything a
run has (node/runner.py): its own state, logs, metrics, checkpoints, stall watchdog. A trial
that fails with retries left runs again at once in its slot, not by a requeue of the
task, which would rerun its siblings. Slurm's stop signal (USR2) and SIGTERM reach
every running trial, and no further trial starts; a task that comes back (a
preemption, a requeue to resume from checkpoints) skips the trials that have ended and
resumes the others. `paddle-hpc cancel` of one trial writes CANCELLED into its state
file: a trial not started yet is skipped, a running one is stopped by its watchdog.

Node side: imports neither pandas nor Hydra.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from paddle_hpc.core import packing, runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node import mps
from paddle_hpc.node.attempts import Attempt, slurm_job
from paddle_hpc.node.ending import requeue, requeues_allowed
from paddle_hpc.node.image_digest import ImageId
from paddle_hpc.node.runner import (
    free_port,
    load_run_config,
    materialize,
    paddle_has_cuda,
    run_attempt,
)
from paddle_hpc.node.signals import SIGNALS
from paddle_hpc.slurm.client import SlurmClient

log = logging.getLogger(__name__)
COME_BACK = frozenset(
    {runstate.TIMEOUT, runstate.PREEMPTED}
)  # a trial that ends so, retrying, needs its task


def next_attempt(state: RunState | None, submitted: int) -> int | None:
    """The attempt a trial runs as when its task starts (again), or None when it has
    ended in this submission (or was cancelled). `submitted`: the attempt the
    submission started as."""
    if state is None or state.attempt < submitted:
        return submitted
    if state.state == runstate.RUNNING or (state.retrying and state.state != runstate.CANCELLED):
        return state.attempt + 1  # the task came back after it was killed or requeued
    return None


def slot_env(env: Mapping[str, str], slot: packing.Slot) -> dict[str, str]:
    """The task's environment with the slot's GPUs as the visible ones."""
    out = dict(env)
    if slot.devices:
        out["CUDA_VISIBLE_DEVICES"] = ",".join(slot.devices)
    return out


def task_devices(env: Mapping[str, str], config: RunConfig) -> list[str]:
    """The task's GPUs as Slurm names them; where Slurm sets no CUDA_VISIBLE_DEVICES (a
    gres without File=), 0..gpus_per_node-1."""
    visible = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return visible or [str(i) for i in range(config.resources.gpus_per_node)]


class _Task:
    def __init__(
        self,
        sweep_dir: Path,
        trials: Sequence[tuple[str, int]],
        python: str,
        env: Mapping[str, str],
        cuda: bool,
        slurm: SlurmClient,
        image: ImageId | None = None,
        began: float | None = None,
    ) -> None:
        self.sweep_dir, self.python, self.env, self.cuda, self.slurm = (
            sweep_dir,
            python,
            env,
            cuda,
            slurm,
        )
        self.image, self.began = image, began
        self.queue = collections.deque(trials)
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # a signal came: no trial starts any more
        self.come_back = threading.Event()  # a trial asks for the task to run again
        self.failed: list[str] = []
        self.warned = False  # Slurm's stop signal came (a time limit or a preemption)

    def on_signal(self, signum: int) -> None:
        self.warned = self.warned or signum == signal.SIGUSR2
        self.stopping.set()

    def next(self) -> tuple[str, int] | None:
        with self.lock:
            return self.queue.popleft() if self.queue and not self.stopping.is_set() else None

    def slot(self, slot: packing.Slot) -> None:
        while (trial := self.next()) is not None:
            try:
                self.trial(slot, *trial)
            except Exception as exc:  # one trial's trouble must not end its siblings
                log.exception("trial %s: %s", trial[0], exc)
                with self.lock:
                    self.failed.append(trial[0])

    def trial(self, slot: packing.Slot, run_id: str, submitted: int) -> None:
        run = SweepDir(self.sweep_dir).run(run_id)
        config = load_run_config(run)
        attempt = next_attempt(runstate.read(run.state), submitted)
        while attempt is not None and not self.stopping.is_set():
            here = replace(config, launch=replace(config.launch, master_port=free_port()))
            trial = Attempt(
                attempt,
                attempt - submitted,
                requeue_task=lambda job: None,  # decided below, from the trial's state
                devices=",".join(slot.devices) or None,
                cancellable=True,
                image=self.image,
                began=self.began,
            )
            log.info("trial %s, attempt %d, slot %d %s", run_id, attempt, slot.index, slot.devices)
            env = slot_env(self.env, slot)
            try:
                run_attempt(
                    self.sweep_dir, run_id, here, self.python, env, self.cuda, trial, self.slurm
                )
            except PaddleHpcError as exc:
                log.warning("%s", exc)
            after = runstate.read(run.state)
            if after is None or after.attempt != attempt or not after.retrying:
                if after is None or after.state not in (runstate.COMPLETED, runstate.CANCELLED):
                    with self.lock:
                        self.failed.append(run_id)
                return
            if after.state in COME_BACK:
                self.come_back.set()
                return
            attempt += 1  # a retry after a failure or a stall: here, now


def run_trials(
    sweep_dir: Path,
    trials: Sequence[tuple[str, int]],
    python: str,
    env: Mapping[str, str],
    cuda: bool,
    client: SlurmClient | None = None,
    image: ImageId | None = None,
    began: float | None = None,
) -> int:
    """Runs a task's trials (run id, the attempt its submission starts as); raises
    PaddleHpcError naming the trials that did not complete. `began`: when the task's
    node process began, in Slurm."""
    slurm = client or SlurmClient()
    first = load_run_config(SweepDir(sweep_dir).run(trials[0][0]))
    slots = packing.slots(task_devices(env, first), first.resources.gpus_per_trial)
    task = _Task(sweep_dir, trials, python, env, cuda, slurm, image, began)
    log.info(
        "task %s: %d trials, %d at once: %s",
        slurm_job(env),
        len(trials),
        len(slots),
        ", ".join(f"slot {s.index} on GPU {','.join(s.devices) or '-'}" for s in slots),
    )
    installed = SIGNALS.install()
    SIGNALS.add(task.on_signal)
    try:
        with mps.daemon(first.resources.mps and cuda, env) as mps_env:
            task.env = {**env, **mps_env}
            threads = [threading.Thread(target=task.slot, args=(s,)) for s in slots]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():  # wakes up so that signals reach their handlers
                    thread.join(0.5)
    finally:
        SIGNALS.remove(task.on_signal)
        if installed:
            SIGNALS.uninstall()
    job = slurm_job(env)
    waiting = [run_id for run_id, _ in task.queue]
    restarts = int(env.get("SLURM_RESTART_COUNT") or 0)
    if waiting and task.warned and restarts < requeues_allowed(first):
        task.come_back.set()  # the trials not started yet run when it comes back
    if task.come_back.is_set() and job is not None and "SLURM_JOB_ID" in env:
        requeue(slurm, job)
        return 0
    if task.failed or waiting:
        raise PaddleHpcError(
            f"task {job}: of {len(trials)} trial(s), "
            + "; ".join(
                f"{len(ids)} {what}: {', '.join(ids)}"
                for what, ids in (("did not complete", task.failed), ("never started", waiting))
                if ids
            )
        )
    return 0


@dataclass(frozen=True)
class TrialsTask:
    """The callable submitit pickles for each packed array task."""

    sweep_dir: str
    run_ids: tuple[str, ...]
    python: str
    attempts: tuple[int, ...]  # the attempt each run's submission starts as
    image: ImageId | None = None  # the container image as submitted
    configs_at: tuple[tuple[int, int] | None, ...] = ()  # where in run-configs.yaml

    def __call__(self) -> int:
        SIGNALS.install()  # first: Slurm's stop signal may come while the task starts
        began = time.time()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        trials = list(zip(self.run_ids, self.attempts, strict=True))
        sweep_dir = Path(self.sweep_dir)
        sweep = SweepDir(sweep_dir)
        for run_id, at in zip(self.run_ids, self.configs_at, strict=False):
            materialize(sweep.run(run_id), sweep.run_configs, at)
        config = load_run_config(SweepDir(sweep_dir).run(self.run_ids[0]))
        cuda = config.cluster.container.image is None and paddle_has_cuda()
        env = dict(os.environ)
        return run_trials(sweep_dir, trials, self.python, env, cuda, image=self.image, began=began)
