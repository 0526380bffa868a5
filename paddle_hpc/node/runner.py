"""What runs on each node of a run's allocation: paddle.distributed.launch, then exit.

submitit starts one `NodeTask` per node (srun, one task per node). Node 0 records the
run's state in `runs/<run_id>/state.json`, and so does a node whose launcher fails.
A failed launcher raises, so srun (--kill-on-bad-exit) ends the other nodes and Slurm
records the task FAILED. With retries left (sweep.max_retries, FAILED in
sweep.retry_on), the failing node first requeues its own array task: Slurm starts it
again as the next attempt, with the same job id, and no process waits anywhere.

Each attempt starts by moving the files of the attempt before it to
`runs/<run_id>/attempts/<K>/`: each node its own log folder, node 0 the state and
metrics files. The launcher runs in a process group of its own; a SIGTERM or SIGINT
(scancel, `paddle-hpc cancel`, the time limit) is passed on to that whole group. Its
workers run in sessions of their own, so this process is their subreaper (orphans.py):
whatever the launcher leaves running is ended once it exits, and no training process
outlives its task.

Node side: imports neither pandas nor Hydra.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paddle_hpc.core import layout, runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.files import write_atomic, write_json_atomic
from paddle_hpc.core.layout import RunDir, SweepDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node import capture, container, gpu, oom, orphans
from paddle_hpc.node.attempts import Attempt, keep_earlier_attempt, slurm_job
from paddle_hpc.node.container import Guest, ImageError
from paddle_hpc.node.ending import (
    WarnedEnd,
    ended_after_warning,
    fail_to_start,
    launcher_ended,
    limit_at,
    requeue,
    requeues_allowed,
    resubmit_grown,
    saved_since,
    stalled_ended,
    stalled_state,
    stopped_state,
    warning_reason,
)
from paddle_hpc.node.guest import enter_image
from paddle_hpc.node.image_digest import ImageId
from paddle_hpc.node.launch import NodeLaunch, build_node_launch
from paddle_hpc.node.signals import SIGNALS, STOP_GRACE_S, Stop
from paddle_hpc.node.watchdog import Watchdog
from paddle_hpc.slurm.client import SlurmClient

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def paddle_has_cuda() -> bool:
    """Whether the installed Paddle is a CUDA build (paddlepaddle-gpu); the GPUs it uses
    are the ones Slurm gives (CUDA_VISIBLE_DEVICES)."""
    return capture.paddle_cuda_version() is not None


def materialize(run: RunDir, store: Path, at: tuple[int, int] | None) -> None:
    """Writes the run's config.yaml, from where it is in the sweep's run-configs.yaml, when
    the run's folder does not hold it yet: a run's folder is made when it starts."""
    if at is None or run.config.exists():
        return
    offset, length = at
    try:
        with store.open("rb") as stored:
            stored.seek(offset)
            data = stored.read(length)
        if len(data) != length:
            raise OSError(f"{store} ends before byte {offset + length}")
        run.path.mkdir(parents=True, exist_ok=True)
        write_atomic(run.config, data.decode("utf-8"))  # every node of the run may write it
    except OSError as exc:
        raise PaddleHpcError(f"run {run.path.name}: cannot read its config ({exc}).") from exc


def load_run_config(run: RunDir) -> RunConfig:
    try:
        return RunConfig.load(run.config)
    except (OSError, ValueError) as exc:
        raise PaddleHpcError(f"run {run.path.name}: cannot read its config ({exc}).") from exc


def run_node(
    sweep_dir: Path,
    run_id: str,
    config: RunConfig,
    python: str,
    env: Mapping[str, str],
    cuda: bool,
    attempt: int = 1,
    client: SlurmClient | None = None,
    image: ImageId | None = None,
    began: float | None = None,
) -> int:
    """Runs Paddle's launcher for this node; raises PaddleHpcError if it fails."""
    restarts = int(env.get("SLURM_RESTART_COUNT") or 0)
    slurm = client or SlurmClient()
    job = slurm_job(env)
    first = Attempt(
        attempt + restarts,
        restarts,
        lambda job: requeue(slurm, job),
        image=image,
        began=began,
        resubmit=(lambda state: resubmit_grown(sweep_dir, run_id, job, state)) if job else None,
    )
    return run_attempt(sweep_dir, run_id, config, python, env, cuda, first, slurm)


def run_attempt(
    sweep_dir: Path,
    run_id: str,
    config: RunConfig,
    python: str,
    env: Mapping[str, str],
    cuda: bool,
    attempt: Attempt,
    slurm: SlurmClient,
) -> int:
    """Runs one attempt of the run's launcher on this node; raises PaddleHpcError if it
    fails."""
    run = SweepDir(sweep_dir).run(run_id)
    node_rank = int(env.get("SLURM_NODEID", "0"))
    job = slurm_job(env)
    history = keep_earlier_attempt(run, node_rank, attempt.number, job, slurm.ended_before)
    failed = RunState(runstate.FAILED, attempt=attempt.number, job=job, history=history)
    allowed = requeues_allowed(config)
    if attempt.restarts > allowed > 0:  # Slurm requeued it (node failure, preemption) too often
        fail_to_start(
            run,
            node_rank,
            failed,
            f"Slurm requeued it {attempt.restarts} times; sweep.max_retries + "
            f"sweep.max_requeues is {allowed}",
        )
    image = config.cluster.container.image
    # a container sees the private folder (the secrets, the copy of paddle_hpc) in /dev/shm
    shm = "/dev/shm" if image is not None and Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="paddle-hpc-", dir=shm) as private:  # mode 0700
        guest, runtime = _runtime(config, run, env, Path(private), attempt, failed, node_rank)
        if guest is not None:
            cuda = runtime["cuda"] is not None
        secrets_file = Path(private) / "secrets.json"
        node = build_node_launch(
            python=python,
            config=config,
            run_id=run_id,
            run_dir=run.path,
            env=env,
            cuda=cuda,
            resolve=socket.gethostbyname,
            secrets_file=secrets_file,
            attempt=attempt.number,
            guest=guest,
        )
        if node.secrets:
            write_secrets(secrets_file, node.secrets)
        base = replace(
            failed,
            state=runstate.RUNNING,
            restarts=attempt.restarts,
            node=node.node_rank,
            mode=node.mode,
            master=node.master,
            host=socket.gethostname(),
            started=runstate.now(),
            devices=attempt.devices,
        )
        return _launch(run, config, node, base, attempt, guest, runtime)


# the launchers this process runs (a packed task runs several): no trial's end may end
# another's launcher
_LAUNCHERS = orphans.Launchers()


def write_secrets(path: Path, secrets: Mapping[str, str]) -> None:
    """The secrets for secrets_shim.py, readable by this user only, in a new file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(secrets), handle)


def _runtime(
    config: RunConfig,
    run: RunDir,
    env: Mapping[str, str],
    private: Path,
    attempt: Attempt,
    failed: RunState,
    node_rank: int,
) -> tuple[Guest | None, dict[str, Any]]:
    """The container the launcher runs in, if any, and what its Python reported (its
    CUDA); an image that cannot be entered fails the attempt (`failed`)."""
    if config.cluster.container.image is None:
        return None, {"cuda": capture.paddle_cuda_version()}
    try:
        return enter_image(config, run, env, private, attempt.number, attempt.image)
    except ImageError as exc:
        stopped = replace(failed, node=node_rank, host=socket.gethostname())
        fail_to_start(run, node_rank, stopped, str(exc))


def _launch(
    run: RunDir,
    config: RunConfig,
    node: NodeLaunch,
    base: RunState,
    attempt: Attempt,
    guest: Guest | None,
    runtime: Mapping[str, Any],
) -> int:
    """Runs the launcher of attempt `base` on this node until it ends; says how it ended."""
    _record_node(run, config, node, base, guest, runtime)
    orphans.become_subreaper()
    started = time.time()
    if node.node_rank == 0:
        run.stop_request.unlink(missing_ok=True)  # an earlier attempt's

    def on_warning() -> str:
        reason = warning_reason(started, config, time.time())
        write_json_atomic(run.stop_request, {"reason": reason, "time": runstate.now()})
        log.info("run %s: Slurm's signal (%s): the run is asked to stop", run.path.name, reason)
        return reason

    def stopped(signum: int) -> None:
        # Slurm's KillWait may end this process before the launcher has: say it now
        if node.node_rank == 0:
            saved = saved_since(run, started) if stop.warning else None
            state = stopped_state(base, signum, stop.warning, config, saved)
            runstate.write_unless_ended(run.state, state)

    cgroups = oom.own_cgroups()
    kills = oom.oom_kills(cgroups)
    with Stop(on_warning, stopped, limit_at(attempt.began, config)) as stop:
        proc = _LAUNCHERS.start(node.argv, node.env, config.program.cwd, _launcher_setup)
        stop.watch(proc)
        if node.node_rank == 0:
            runstate.write_unless_ended(run.state, replace(base, pgid=proc.pid))
        watchdog = _watchdog(run, config, node, base, attempt, proc.pid)
        sampler = gpu.start_sampler(run, config, node, base, proc.pid)
        returncode = proc.wait()
        _LAUNCHERS.ended(proc.pid)
        if guest is not None and (argv := container.cleanup(guest)):
            subprocess.run(argv, capture_output=True, timeout=60, check=False)  # noqa: S603
        for thread in (watchdog, sampler):
            if thread is not None:
                thread.stop()
        if left := _LAUNCHERS.end_left(STOP_GRACE_S):
            log.warning("run %s: ended %d process(es) the launcher left", run.path.name, left)
    write_compact(run, node.node_rank)
    requeue_task = attempt.requeue_task
    if any(t is not None and t.stopped_run for t in (watchdog, sampler)):
        return stalled_ended(run, base, returncode, requeue_task)
    if stop.warning is not None:
        warned = WarnedEnd(stop.warning, stop.signal, started)
        return ended_after_warning(run, node, base, returncode, warned, config, requeue_task)
    killed = oom.oom_kills(cgroups) - kills
    return launcher_ended(
        run, node, base, returncode, stop.signal, config, requeue_task, killed, attempt.resubmit
    )


def write_compact(run: RunDir, node_rank: int) -> None:
    """This node's rows of the run, for the collector (parse/compact.py), before its
    state says the attempt ended; without them the collector reads the text."""
    from paddle_hpc.parse import compact  # pyarrow: not needed until the run ends

    started = time.monotonic()
    try:
        path = compact.write(run.path.parent.parent, run.path.name, node_rank)
    except Exception as exc:  # the run's end must be written whatever happens here
        log.warning("run %s: no compact file of node %d (%r)", run.path.name, node_rank, exc)
        return
    log.info("run %s: %s written in %.2f s", run.path.name, path.name, time.monotonic() - started)


def _record_node(
    run: RunDir,
    config: RunConfig,
    node: NodeLaunch,
    base: RunState,
    guest: Guest | None,
    runtime: Mapping[str, Any],
) -> None:
    """The node's log folder, marked with its attempt, and its environment.json."""
    node.log_dir.mkdir(parents=True, exist_ok=True)
    (node.log_dir / layout.ATTEMPT_MARK).write_text(str(base.attempt), encoding="ascii")
    record = capture.node_environment(node.env, node.mode, runtime["cuda"])
    capture.write_node_environment(node.log_dir, record | ({"container": runtime} if guest else {}))
    workdir = config.program.cwd
    if workdir is not None and Path(workdir).is_relative_to(run.path):
        Path(workdir).mkdir(parents=True, exist_ok=True)  # plan checked every other cwd
    log.info(
        "run %s, attempt %d, node %d of %d: %s mode, %d processes, master %s, logs in %s",
        run.path.name,
        base.attempt,
        node.node_rank,
        node.nnodes,
        node.mode,
        node.nproc_per_node,
        node.master,
        node.log_dir,
    )


def _watchdog(
    run: RunDir, config: RunConfig, node: NodeLaunch, base: RunState, attempt: Attempt, pgid: int
) -> Watchdog | None:
    """Node 0's watchdog of the launcher's group `pgid`, when the run needs one."""
    timeout = config.launch.stall_timeout
    if node.node_rank != 0 or not (timeout or attempt.cancellable):
        return None

    def stalled(last: float) -> None:
        assert timeout is not None
        runstate.write_unless_ended(run.state, stalled_state(base, config, timeout, last))

    watchdog = Watchdog(run, timeout, pgid, stalled, base.attempt if attempt.cancellable else None)
    watchdog.start()
    return watchdog


def _launcher_setup() -> None:
    """In the launcher: SIGUSR2 ignored, which its workers inherit (they ask
    checkpoint.should_stop() instead); SIGTERM once this node runner is gone."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    orphans.die_with_parent()


@dataclass(frozen=True)
class NodeTask:
    """The callable submitit pickles for each array task."""

    sweep_dir: str
    run_id: str
    python: str
    attempt: int = 1  # the attempt this submission starts as
    image: ImageId | None = None  # the container image as submitted
    config_at: tuple[int, int] | None = None  # where its config is in run-configs.yaml

    def __call__(self) -> int:
        SIGNALS.install()  # first: Slurm's stop signal may come while the task starts
        began = time.time()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        sweep = SweepDir(Path(self.sweep_dir))
        sweep_dir = sweep.path
        materialize(sweep.run(self.run_id), sweep.run_configs, self.config_at)
        config = load_run_config(sweep.run(self.run_id))
        env = dict(os.environ)
        cuda = config.cluster.container.image is None and paddle_has_cuda()
        return run_node(
            sweep_dir,
            self.run_id,
            config,
            self.python,
            env,
            cuda,
            self.attempt,
            image=self.image,
            began=began,
        )
