"""Each node's GPU sampler, and the idle-GPU watchdog it carries.

Every launch.gpu_sample_interval seconds the node runner asks `nvidia-smi
--query-gpu` for its GPUs' utilisation and memory, and appends one line to
`runs/<run_id>/gpu-node<N>.jsonl` in log_metrics's format (`sys.gpu.<index>.util`,
`.mem_used_mb`, `.mem_total_mb`), which the collector reads as the run's metrics. The
node's GPUs are the ones Slurm gave it (CUDA_VISIBLE_DEVICES, or launch.devices): on
a node whose devices Slurm does not constrain, nvidia-smi lists every GPU of the node.

With launch.idle_gpu_timeout, a node whose GPUs all sat at 0% for that long (a dead
rank, a hung collective) stops the run: FAILED with reason `IDLE: ...`, as the stall
watchdog's `STALLED`. nvidia-smi is the one tool every GPU node has; NVML's Python
binding would be one more dependency for the same numbers.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from paddle_hpc.core import runstate
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.ending import idle_state
from paddle_hpc.node.launch import NodeLaunch
from paddle_hpc.node.signals import stop_group

log = logging.getLogger(__name__)

QUERY = ("index", "uuid", "utilization.gpu", "memory.used", "memory.total")
SMI_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    util: float | None  # percent; None where the GPU does not say ([N/A], MIG)
    mem_used_mb: float | None
    mem_total_mb: float | None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # [N/A], [Not Supported]
        return None


def parse_smi(text: str) -> list[Gpu]:
    """The GPUs of `nvidia-smi --query-gpu=<QUERY> --format=csv,noheader,nounits`; lines
    of anything else (a driver's error message) are left out."""
    found = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(QUERY) or not fields[0].isdigit():
            continue
        util, used, total = (_number(f) for f in fields[2:])
        found.append(Gpu(int(fields[0]), fields[1], util, used, total))
    return found


def ours(gpus: Sequence[Gpu], devices: Sequence[str]) -> list[Gpu]:
    """The listed GPUs that are the node's `devices` (indices or UUIDs, as Slurm's
    CUDA_VISIBLE_DEVICES names them). Where Slurm constrains devices, nvidia-smi lists
    only the job's, numbered from 0 as CUDA_VISIBLE_DEVICES is: all of them then."""
    wanted = set(devices)
    picked = [g for g in gpus if str(g.index) in wanted or g.uuid in wanted]
    if picked or len(gpus) != len(wanted):
        return picked
    return list(gpus)


def sample_line(gpus: Sequence[Gpu], at: float, attempt: int) -> str:
    """One line of the samples file, as log_metrics writes one (no step)."""
    record: dict[str, float | int | None] = {"step": None, "time": round(at, 3)}
    record["attempt"] = attempt
    for gpu in gpus:
        for name in ("util", "mem_used_mb", "mem_total_mb"):
            value = getattr(gpu, name)
            if value is not None:
                record[f"sys.gpu.{gpu.index}.{name}"] = value
    return json.dumps(record) + "\n"


class IdleClock:
    """Since when every GPU sampled has been at 0%; None while any works or says nothing."""

    def __init__(self) -> None:
        self.since: float | None = None

    def sampled(self, gpus: Sequence[Gpu], at: float) -> float | None:
        idle = bool(gpus) and all(g.util == 0 for g in gpus)
        if not idle:
            self.since = None
        elif self.since is None:
            self.since = at
        return self.since


def smi_command(env: Mapping[str, str]) -> list[str] | None:
    """The nvidia-smi query, from the launch's PATH; None where there is no nvidia-smi."""
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi is None:
        return None
    return [smi, f"--query-gpu={','.join(QUERY)}", "--format=csv,noheader,nounits"]


class GpuSampler(threading.Thread):
    """Samples the node's GPUs into `path` every `interval` seconds, running `command`
    in the launch's environment `env`; with
    `idle_timeout`, calls `on_idle(since)` and stops the launcher's group `pgid` once
    they have all been idle that long."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        devices: Sequence[str],
        path: Path,
        attempt: int,
        interval: float,
        idle_timeout: float | None = None,
        on_idle: Callable[[float], None] = lambda since: None,
        pgid: int = 0,
    ) -> None:
        super().__init__(daemon=True, name="paddle-hpc-gpu")
        self.command, self.env = list(command), dict(env)
        self.devices, self.path = list(devices), path
        self.attempt, self.interval = attempt, interval
        self.idle_timeout, self.on_idle, self.pgid = idle_timeout, on_idle, pgid
        self.idle: float | None = None  # since when the GPUs were idle, once it stopped the run
        self._done = threading.Event()
        self._warned = False

    def query(self) -> list[Gpu]:
        try:
            done = subprocess.run(  # noqa: S603 - a fixed command
                self.command,
                capture_output=True,
                text=True,
                timeout=SMI_TIMEOUT_S,
                check=False,
                env=self.env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn(str(exc))
            return []
        gpus = ours(parse_smi(done.stdout), self.devices)
        if done.returncode != 0 or not gpus:
            self._warn(f"exit code {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}")
        return gpus

    def _warn(self, what: str) -> None:
        if not self._warned:  # once: a node without a working nvidia-smi says so every time
            log.warning("GPU sampling of %s: nvidia-smi gave no GPU (%s)", self.devices, what)
            self._warned = True

    def run(self) -> None:
        clock = IdleClock()
        while not self._done.wait(self.interval):
            gpus, at = self.query(), time.time()
            if gpus:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(sample_line(gpus, at, self.attempt))
            since = clock.sampled(gpus, at)
            if self.idle_timeout and since is not None and at - since >= self.idle_timeout:
                self.idle = since
                self.on_idle(since)
                stop_group(self.pgid)
                return

    @property
    def stopped_run(self) -> bool:
        return self.idle is not None

    def stop(self) -> None:
        self._done.set()


def start_sampler(
    run: RunDir, config: RunConfig, node: NodeLaunch, base: RunState, pgid: int
) -> GpuSampler | None:
    """The node's GPU sampler (and idle watchdog) of the launcher's group `pgid`,
    started, when the node has GPUs and nvidia-smi."""
    launch = config.launch
    command = smi_command(node.env)
    if not (launch.gpu_sample_interval and node.gpus and command):
        return None

    def idle(since: float) -> None:
        state = idle_state(base, config, node.node_rank, since)
        runstate.write_unless_ended(run.state, replace(state, node=node.node_rank))

    sampler = GpuSampler(
        command,
        node.env,
        node.gpus,
        run.gpu_samples(node.node_rank),
        base.attempt,
        launch.gpu_sample_interval,
        launch.idle_gpu_timeout,
        idle,
        pgid,
    )
    sampler.start()
    return sampler
