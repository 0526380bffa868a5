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

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from paddle_hpc import checkpoint
from paddle_hpc.core import layout, runstate
from paddle_hpc.core.errors import PaddleHpcError, SlurmError
from paddle_hpc.core.files import write_json_atomic
from paddle_hpc.core.layout import RunDir, SweepDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node import capture, container, orphans
from paddle_hpc.node.container import Guest, ImageError
from paddle_hpc.node.guest import enter_image
from paddle_hpc.node.image_digest import ImageId
from paddle_hpc.node.launch import NodeLaunch, build_node_launch
from paddle_hpc.slurm.client import SlurmClient
from paddle_hpc.slurm.parse import time_limit_minutes

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0
# A SIGTERM that comes this close to the time limit (counted from when the node process
# began, a little after the job) without Slurm's USR2 before it is the time limit.
LIMIT_SLACK_S = 15.0
NO_CHECKPOINT = "no checkpoint saved in this attempt (paddle_hpc.checkpoint)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def paddle_has_cuda() -> bool:
    """Whether the installed Paddle is a CUDA build (paddlepaddle-gpu); the GPUs it uses
    are the ones Slurm gives (CUDA_VISIBLE_DEVICES)."""
    return capture.paddle_cuda_version() is not None


def load_run_config(run: RunDir) -> RunConfig:
    try:
        return RunConfig.load(run.config)
    except (OSError, ValueError) as exc:
        raise PaddleHpcError(f"run {run.path.name}: cannot read its config ({exc}).") from exc


def slurm_job(env: Mapping[str, str]) -> str | None:
    """This task as '12_3' (array job id and task), the convention of the runs table."""
    if "SLURM_ARRAY_JOB_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '0')}"
    return env.get("SLURM_JOB_ID")


def keep_earlier_attempt(
    run: RunDir,
    node: int,
    attempt: int,
    job: str | None,
    ended_before: Callable[[str], str | None],
) -> tuple[str, ...]:
    """Moves what an earlier attempt left on this node to `attempts/<K>/` (node 0: its
    state and metrics files too), so that attempt `attempt` (of Slurm task `job`)
    starts clean. Node 0 returns the run's history: how each earlier attempt ended."""
    logs = run.node_logs(node)
    if logs.is_dir():
        try:
            earlier = int((logs / layout.ATTEMPT_MARK).read_text(encoding="ascii"))
        except (OSError, ValueError):
            earlier = max(1, attempt - 1)
        if earlier != attempt:
            target = run.attempt(earlier).node_logs(node)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            logs.rename(target)
    if node != 0:
        return ()
    state = runstate.read(run.state)
    if state is None or state.attempt == attempt:
        return state.history if state is not None else ()
    folder = run.attempt(state.attempt)
    folder.path.mkdir(parents=True, exist_ok=True)
    for path, kept in ((run.metrics, folder.metrics), (run.state, folder.state)):
        if path.exists():
            path.replace(kept)
    if (latest := checkpoint.latest(run.checkpoints)) is not None:
        carry_metrics(folder.metrics, run.metrics, latest.step)
    return (*state.history, ended_as(state, job, ended_before))


def ended_as(state: RunState, job: str | None, ended_before: Callable[[str], str | None]) -> str:
    """How an earlier attempt ended: its own state's word (STALLED for a stalled one).
    Slurm's instead for one that never said (killed outright), and for one that took
    Slurm's SIGTERM for a cancel yet came back in the same task `job`: Slurm ended it
    (a node failure), not scancel."""
    requeued = state.state == runstate.CANCELLED and state.job is not None and state.job == job
    if state.state != runstate.RUNNING and not requeued:
        stalled = state.reason is not None and state.reason.startswith(runstate.STALLED)
        return runstate.STALLED if stalled else state.state
    if state.job is not None:
        try:
            return ended_before(state.job) or "UNKNOWN"
        except SlurmError as exc:
            log.warning("how attempt %d ended: %s", state.attempt, exc.slurm_message)
    return "UNKNOWN"


def carry_metrics(earlier: Path, into: Path, upto: int) -> None:
    """The rows of an earlier attempt's metrics file up to the checkpoint the new attempt
    resumes from: the run's metrics then hold each step once, as if it had not stopped."""
    try:
        lines = earlier.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return
    kept = []
    for line in lines:
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int) and step <= upto:
            kept.append(line if line.endswith("\n") else line + "\n")
    into.write_text("".join(kept), encoding="utf-8")


class _Signals:
    """This process's SIGTERM, SIGINT and SIGUSR2, passed to every listener registered:
    the one run a node runner runs, or each trial a packed task runs at the moment.
    Handlers live in the main thread, installed as the task's first step: Slurm sends
    its stop signal up to a minute before it is due, so it can come while the task is
    still starting. A USR2 stays said: a listener registered after it hears it at once."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.RLock()  # the handler runs in a thread that may hold it
        self._previous: dict[int, Any] = {}
        self.told = False  # Slurm's USR2 came

    def install(self) -> bool:
        """Installs the handlers (main thread only); False when that is not possible or
        they already are."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return False
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        self.told = False

    def add(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
            told = self.told
        if told:
            listener(signal.SIGUSR2)

    def remove(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        with self._lock:
            self.told = self.told or signum == signal.SIGUSR2
            listeners = list(self._listeners)
        for listener in listeners:
            listener(signum)


SIGNALS = _Signals()


class _Stop:
    """Passes SIGTERM and SIGINT on to the launcher's process group (SIGKILL after
    STOP_GRACE_S), then calls `stopped(signum)`. Slurm's USR2 (the time limit is near,
    or a preemption) is not passed on: it calls `told`, which writes the run's stop
    request and returns why (TIMEOUT or PREEMPTED), and the launcher ignores it. A
    SIGTERM with no USR2 before it, from `limit_at` on, is the time limit: TIMEOUT."""

    def __init__(
        self,
        told: Callable[[], str] = lambda: "PREEMPTED",
        stopped: Callable[[int], None] = lambda signum: None,
        limit_at: float | None = None,
    ) -> None:
        self.signal: int | None = None
        self.told: str | None = None  # why Slurm's USR2 came, once it came
        self._told, self._stopped, self._limit_at = told, stopped, limit_at
        self._proc: subprocess.Popen[bytes] | None = None
        self._installed = False

    def __enter__(self) -> _Stop:
        self._installed = SIGNALS.install()
        SIGNALS.add(self.on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        SIGNALS.remove(self.on_signal)
        if self._installed:
            SIGNALS.uninstall()

    def watch(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc

    def _past_limit(self) -> bool:
        return self._limit_at is not None and time.time() >= self._limit_at

    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGUSR2:
            if self.told is None:
                self.told = self._told()
            return
        if self.told is None and signum == signal.SIGTERM and self._past_limit():
            self.told = "TIMEOUT"
        first = self.signal is None
        self.signal = signum
        if self._proc is not None and self._proc.poll() is None:
            stop_group(self._proc.pid, signum)
        if first:
            self._stopped(signum)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def stop_group(pgid: int, signum: int = signal.SIGTERM) -> None:
    """signum to the group now, SIGKILL after STOP_GRACE_S."""
    signal_group(pgid, signum)
    timer = threading.Timer(STOP_GRACE_S, signal_group, (pgid, signal.SIGKILL))
    timer.daemon = True
    timer.start()


def last_output(run: RunDir, since: float) -> float:
    """When the run last wrote to a worker log (any node) or to metrics.jsonl; `since`
    when it has written nothing yet."""
    newest = since
    paths = [run.metrics, *run.logs.glob("node*/workerlog.*")]
    for path in paths:
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest


class Watchdog(threading.Thread):
    """Node 0's: stops the run once no rank has written anything for `timeout` seconds
    (launch.stall_timeout), and, for a packed trial (`cancelled_in`: its attempt), once
    its state file says CANCELLED (`paddle-hpc cancel` of one trial of a task).
    `on_stall(last)` runs first, with the time of the last output."""

    def __init__(
        self,
        run: RunDir,
        timeout: int | None,
        pgid: int,
        on_stall: Callable[[float], None],
        cancelled_in: int | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.timeout, self.pgid, self.on_stall = run, timeout, pgid, on_stall
        self.cancelled_in = cancelled_in
        self.started = time.time()
        self.stalled: float | None = None
        self._done = threading.Event()

    def run(self) -> None:
        poll = min(5.0, self.timeout / 4) if self.timeout else 5.0
        if self.cancelled_in is not None:
            poll = min(poll, 1.0)
        while not self._done.wait(poll):
            if self.cancelled_in is not None:
                now = runstate.read(self.run_dir.state)
                if now and now.state == runstate.CANCELLED and now.attempt == self.cancelled_in:
                    stop_group(self.pgid)
                    return
            if self.timeout is None:
                continue
            last = last_output(self.run_dir, self.started)
            if time.time() - last >= self.timeout:
                self.stalled = last
                self.on_stall(last)
                stop_group(self.pgid)
                return

    def stop(self) -> None:
        self._done.set()


@dataclass(frozen=True)
class Attempt:
    """One attempt of a run on this node, and what its task lets it do."""

    number: int
    restarts: int  # earlier attempts in this submission: Slurm's requeues, in-task reruns
    again: Callable[[str], None]  # asks for Slurm task `job` to run again
    devices: str | None = None  # a packed trial's GPUs
    cancellable: bool = False  # a packed trial: stops once its state file says CANCELLED
    image: ImageId | None = None  # the container image as submitted
    began: float | None = None  # when the task's node process began (None: not in Slurm)


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
    this = Attempt(
        attempt + restarts, restarts, lambda job: requeue(slurm, job), image=image, began=began
    )
    return run_attempt(sweep_dir, run_id, config, python, env, cuda, this, slurm)


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
    allowed = requeues_allowed(config)
    if attempt.restarts > allowed > 0:  # Slurm requeued it (node failure, preemption) too often
        _fail(
            run,
            node_rank,
            RunState("FAILED", attempt=attempt.number, job=job, history=history),
            f"Slurm requeued it {attempt.restarts} times; sweep.max_retries + "
            f"sweep.max_requeues is {allowed}",
        )
    image = config.cluster.container.image
    # a container sees the private folder (the secrets, the copy of paddle_hpc) in /dev/shm
    shm = "/dev/shm" if image is not None and Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="paddle-hpc-", dir=shm) as private:  # mode 0700
        guest: Guest | None = None
        inside: dict[str, Any] = {"cuda": None if image else capture.paddle_cuda_version()}
        if image is not None:
            try:
                guest, inside = enter_image(
                    config, run, env, Path(private), attempt.number, attempt.image
                )
            except ImageError as exc:
                state = RunState("FAILED", attempt=attempt.number, job=job, history=history)
                _fail(
                    run,
                    node_rank,
                    replace(state, node=node_rank, host=socket.gethostname()),
                    str(exc),
                )
            cuda = inside["cuda"] is not None
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
            fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(node.secrets, handle)
        return _launch(run, config, node, job, history, attempt, slurm, guest, inside)


def _fail(run: RunDir, node_rank: int, state: RunState, reason: str) -> NoReturn:
    """An attempt that cannot start: FAILED, and no retry (it would fail the same way).
    The first node to say so is heard; the others only raise."""
    if node_rank == 0 or not _settled(runstate.read(run.state), state.attempt):
        runstate.write(run.state, replace(state, reason=reason))
    raise PaddleHpcError(f"run {run.path.name}: {reason}")


# the launchers this process runs (a packed task runs several): no trial's end may end
# another's launcher
_LAUNCHERS = orphans.Launchers()


def _launch(
    run: RunDir,
    config: RunConfig,
    node: NodeLaunch,
    job: str | None,
    history: tuple[str, ...],
    this: Attempt,
    slurm: SlurmClient,
    guest: Guest | None,
    where: Mapping[str, Any],
) -> int:
    run_id = run.path.name
    attempt, restarts = this.number, this.restarts
    node.log_dir.mkdir(parents=True, exist_ok=True)
    (node.log_dir / layout.ATTEMPT_MARK).write_text(str(attempt), encoding="ascii")
    record = capture.node_environment(node.env, node.mode, where["cuda"])
    capture.write_node_environment(node.log_dir, record | ({"container": where} if guest else {}))
    workdir = config.program.cwd
    if workdir is not None and Path(workdir).is_relative_to(run.path):
        Path(workdir).mkdir(parents=True, exist_ok=True)  # plan checked every other cwd
    log.info(
        "run %s, attempt %d, node %d of %d: %s mode, %d processes, master %s, logs in %s",
        run_id,
        attempt,
        node.node_rank,
        node.nnodes,
        node.mode,
        node.nproc_per_node,
        node.master,
        node.log_dir,
    )
    base = RunState(
        "RUNNING",
        attempt=attempt,
        job=job,
        restarts=restarts,
        node=node.node_rank,
        mode=node.mode,
        master=node.master,
        host=socket.gethostname(),
        history=history,
        started=runstate.now(),
        devices=this.devices,
    )
    orphans.become_subreaper()
    started = time.time()
    if node.node_rank == 0:
        run.stop_request.unlink(missing_ok=True)  # an earlier attempt's

    def told() -> str:
        reason = told_reason(started, config, time.time())
        write_json_atomic(run.stop_request, {"reason": reason, "time": runstate.now()})
        log.info("run %s: Slurm's signal (%s): the run is asked to stop", run_id, reason)
        return reason

    def stopped(signum: int) -> None:
        # Slurm's KillWait may end this process before the launcher has: say it now
        if node.node_rank == 0 and not _settled(runstate.read(run.state), attempt):
            saved = saved_since(run, started) if stop.told else None
            runstate.write(run.state, stopped_state(base, signum, stop.told, config, saved))

    with _Stop(told, stopped, limit_at(this.began, config)) as stop:
        proc = _LAUNCHERS.start(node.argv, node.env, workdir, _launcher_setup)
        stop.watch(proc)
        if node.node_rank == 0 and not _settled(runstate.read(run.state), attempt):
            runstate.write(run.state, replace(base, pgid=proc.pid))
        watchdog = None
        timeout = config.launch.stall_timeout
        if node.node_rank == 0 and (timeout or this.cancellable):

            def stalled(last: float) -> None:
                assert timeout is not None
                runstate.write(run.state, stalled_state(base, config, timeout, last))

            cancelled_in = attempt if this.cancellable else None
            watchdog = Watchdog(run, timeout, proc.pid, stalled, cancelled_in)
            watchdog.start()
        returncode = proc.wait()
        _LAUNCHERS.ended(proc.pid)
        if guest is not None and (argv := container.cleanup(guest)):
            subprocess.run(argv, capture_output=True, timeout=60, check=False)  # noqa: S603
        if watchdog is not None:
            watchdog.stop()
        if left := _LAUNCHERS.end_left(STOP_GRACE_S):
            log.warning("run %s: ended %d process(es) the launcher left running", run_id, left)
    if watchdog is not None and watchdog.stalled is not None:
        return _stalled(run, base, returncode, this.again)
    if stop.told is not None:
        told_end = _ToldEnd(stop.told, stop.signal, started)
        return _told_ended(run, node, base, returncode, told_end, config, this.again)
    return _ended(run, node, base, returncode, stop.signal, config, this.again)


def _launcher_setup() -> None:
    """In the launcher: SIGUSR2 ignored, which its workers inherit (they ask
    checkpoint.should_stop() instead); SIGTERM once this node runner is gone."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    orphans.die_with_parent()


def limit_at(began: float | None, config: RunConfig) -> float | None:
    """From when a SIGTERM is Slurm's time limit for a task whose node process began at
    `began`; None without a limit, or outside Slurm."""
    minutes = time_limit_minutes(config.resources.time)
    if began is None or minutes is None:
        return None
    return began + minutes * 60 - LIMIT_SLACK_S


def told_reason(started: float, config: RunConfig, now: float) -> str:
    """TIMEOUT when Slurm's signal came about resources.signal_before seconds before the
    time limit (give or take a minute: the limit counts from the job's start, a little
    before this node's), PREEMPTED otherwise."""
    minutes = time_limit_minutes(config.resources.time)
    if minutes is None:
        return "PREEMPTED"
    limit_at = started + minutes * 60 - config.resources.signal_before
    return "TIMEOUT" if now >= limit_at - 60 else "PREEMPTED"


def saved_since(run: RunDir, since: float) -> int | None:
    """The step of a checkpoint saved after `since`, if any."""
    found = checkpoint.latest(run.checkpoints)
    if found is None:
        return None
    try:
        written = (found.path / "state.json").stat().st_mtime
    except OSError:
        return None
    return found.step if written >= since - 1 else None


@dataclass(frozen=True)
class _ToldEnd:
    reason: str  # why Slurm's USR2 came: TIMEOUT or PREEMPTED
    stopped_by: int | None  # the signal that then stopped the launcher, if any
    started: float  # when this attempt's launcher started


def _told_ended(
    run: RunDir,
    node: NodeLaunch,
    base: RunState,
    returncode: int,
    told: _ToldEnd,
    config: RunConfig,
    again: Callable[[str], None],
) -> int:
    """After Slurm's stop signal: a run that exited cleanly with a checkpoint saved in
    this attempt is requeued to resume from it (node 0 asks, up to sweep.max_requeues);
    one that saved none ends TIMEOUT, or PREEMPTED, which Slurm requeues itself. A run
    stopped by a signal meanwhile ends as `stopped_state` said when the signal came, so
    its state is the same whether or not Slurm's KillWait ended this process first."""
    reason, started = told.reason, told.started
    step = saved_since(run, started)
    now = runstate.read(run.state)
    if _settled(now, base.attempt) and node.node_rank != 0:
        return 0 if now is not None and now.state != runstate.FAILED else 1
    if returncode == 0 and step is None:  # it ended by itself in the meantime
        return _ended(run, node, base, returncode, None, config, again)
    left = requeue_left(base, config)
    if step is not None and returncode == 0 and left:
        state = replace(
            base,
            state=reason,
            returncode=returncode,
            retrying=True,
            reason=f"{reason}: saved step {step}; requeued to resume from it",
        )
        if node.node_rank == 0:
            runstate.write(run.state, state)
            assert base.job is not None
            again(base.job)
        return 0
    if told.stopped_by is not None:
        stopped = stopped_state(base, told.stopped_by, reason, config, step)
        state = replace(stopped, returncode=returncode)
    else:
        if step is None:
            why = NO_CHECKPOINT
        elif returncode != 0:
            why = f"the program did not exit cleanly after saving step {step}"
        else:
            why = "no requeues left (sweep.max_requeues)"
        slurm_requeues = reason == "PREEMPTED" and left
        state = replace(
            base,
            state=reason,
            returncode=returncode,
            retrying=slurm_requeues,
            reason=f"{reason}: {why}" + ("; Slurm requeues it" if slurm_requeues else ""),
        )
    if node.node_rank == 0 or returncode != 0:
        runstate.write(run.state, state)
    raise PaddleHpcError(f"run {run.path.name}: {state.reason}")


def stopped_state(
    base: RunState, signum: int, told: str | None, config: RunConfig, saved: int | None = None
) -> RunState:
    """How an attempt ends that is stopped by `signum`: CANCELLED (scancel, `paddle-hpc
    cancel`), or after Slurm's stop signal (`told`) as PREEMPTED or TIMEOUT, with the
    step of the checkpoint `saved` in this attempt, if any; Slurm requeues a preempted
    run while requeues are left. This reason is complete because Slurm's KillWait may
    end the node runner before it says more."""
    name = signal.Signals(signum).name
    if told is None:
        return replace(base, state=runstate.CANCELLED, reason=f"stopped by {name}")
    requeued = told == "PREEMPTED" and requeue_left(base, config)
    why = f"{told}: stopped by {name} before it exited; " + (
        NO_CHECKPOINT if saved is None else f"it had saved step {saved}"
    )
    return replace(
        base,
        state=told,
        retrying=requeued,
        reason=why + ("; Slurm requeues it" if requeued else ""),
    )


def stalled_state(base: RunState, config: RunConfig, timeout: int, last: float) -> RunState:
    """FAILED with reason STALLED and the time of the last output; retrying when
    sweep.retry_on and sweep.max_retries allow another attempt."""
    when = datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds")
    retry = base.job is not None and retry_left(config, base.restarts)
    return replace(
        base,
        state=runstate.FAILED,
        reason=f"{runstate.STALLED}: no output for {timeout} s; the last at {when}",
        retrying=retry,
    )


def _stalled(run: RunDir, base: RunState, returncode: int, again: Callable[[str], None]) -> int:
    """Node 0 after its watchdog stopped the run: requeue it when the state says so."""
    state = runstate.read(run.state)
    if state is not None and state.retrying and base.job is not None:
        again(base.job)
    raise PaddleHpcError(
        f"run {run.path.name}: stopped, {state.reason if state else runstate.STALLED} "
        f"(the launcher exited with code {returncode})"
    )


def _ended(
    run: RunDir,
    node: NodeLaunch,
    base: RunState,
    returncode: int,
    stopped_by: int | None,
    config: RunConfig,
    again: Callable[[str], None],
) -> int:
    """Records how the launcher ended; requeues the task for a retry when one is left.
    The first word on an attempt's end stands: `paddle-hpc cancel`, or the node that
    failed first (the others are then stopped by srun, which is no news). Node 0's
    COMPLETED is the exception: it speaks for node 0 only, so a node that fails after
    it (its ranks still running when node 0's ended) makes the attempt FAILED."""
    now = runstate.read(run.state)
    said = now.state if now is not None and _settled(now, base.attempt) else None
    failed_after_node0 = said == runstate.COMPLETED and returncode != 0 and stopped_by is None
    if said is not None and not failed_after_node0:
        returncode = returncode or (0 if said == runstate.COMPLETED else 1)
    elif stopped_by is not None:
        state = stopped_state(base, stopped_by, None, config)
        runstate.write(run.state, replace(state, returncode=returncode))
        returncode = returncode or 1
    elif returncode != 0 or node.node_rank == 0:
        # Node 0 records success; the node that failed records the failure, since srun
        # (--kill-on-bad-exit) may end node 0 before it learns of it.
        ended = "COMPLETED" if returncode == 0 else "FAILED"
        state = replace(base, state=ended, returncode=returncode)
        retry = returncode != 0 and base.job is not None and retry_left(config, base.restarts)
        if retry:
            state = replace(state, retrying=True, reason="requeued for another attempt")
        runstate.write(run.state, state)
        if retry:
            assert base.job is not None
            again(base.job)
    if returncode != 0:
        raise PaddleHpcError(
            f"run {run.path.name}: paddle.distributed.launch exited with code {returncode} "
            f"on node {node.node_rank}; see {node.log_dir}/workerlog.*"
        )
    return 0


def _settled(state: RunState | None, attempt: int) -> bool:
    """Whether `state` already says how `attempt` ended."""
    return state is not None and state.attempt == attempt and state.state != runstate.RUNNING


# End states a node sees itself (its launcher failed), and so requeues its task for.
IN_JOB = frozenset({"FAILED", "OUT_OF_MEMORY"})


def requeues_allowed(config: RunConfig) -> int:
    """How often a task may come back: a retry after a failure, or a requeue after Slurm's
    stop signal, a preemption or a node failure."""
    return config.sweep.max_retries + config.sweep.max_requeues


def requeue_left(base: RunState, config: RunConfig) -> bool:
    """Whether this attempt, a Slurm task, may come back once more."""
    return base.job is not None and base.restarts < requeues_allowed(config)


def retry_left(config: RunConfig, restarts: int) -> bool:
    return bool(IN_JOB & set(config.sweep.retry_on)) and restarts < config.sweep.max_retries


def requeue(client: SlurmClient, job: str) -> None:
    """Asks Slurm to start this task again. Another node may have asked first: fine."""
    try:
        client.requeue(job)
    except SlurmError as exc:
        log.warning("requeue of %s: %s", job, exc.slurm_message)


@dataclass(frozen=True)
class NodeTask:
    """The callable submitit pickles for each array task."""

    sweep_dir: str
    run_id: str
    python: str
    attempt: int = 1  # the attempt this submission starts as
    image: ImageId | None = None  # the container image as submitted

    def __call__(self) -> int:
        SIGNALS.install()  # first: Slurm's stop signal may come while the task starts
        began = time.time()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        sweep_dir = Path(self.sweep_dir)
        config = load_run_config(SweepDir(sweep_dir).run(self.run_id))
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
