"""Every path of a sweep directory, in one place. Pure: pathlib only, safe on compute nodes.

    SWEEP_DIR/
      manifest.json              run id <-> overrides <-> submissions (job id, task)
      config.yaml                the resolved base config
      run-configs.yaml           every run's resolved config, appended as points are added;
                                 a run's node copies its own to runs/<id>/config.yaml
      sacct.txt                  the sweep's Slurm accounting as `collect` last read it
      feed.lock, feed.log        the feeder of a sweep larger than the queue may hold
      slurm/                     submitit's scripts, pickles, each node's stdout/stderr
      results/                   the collector's tables
      report/                    the HTML report
      runs/<run_id>/
        config.yaml              the run's resolved config
        state.json               its RunState (runstate.py)
        metrics.jsonl            what log_metrics wrote
        logs/node<N>/workerlog.<R>   Paddle's per-rank logs of the current attempt
        attempts/<K>/            an earlier attempt's state.json, metrics.jsonl and logs/
        logs.zip                 once `clean` ran: every attempt's logs/, its Slurm output

The collector keeps paths relative to the sweep directory as strings (thousands per
collect); `rel_*` give those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_LOCK = "manifest.lock"  # the lock every change of the manifest holds
CONFIG = "config.yaml"
RUN_CONFIGS = "run-configs.yaml"  # every run's resolved config, one after the other
SACCT = "sacct.txt"
SACCT_STEPS = "sacct-steps.txt"
SLURM = "slurm"
RESULTS = "results"
REPORT = "report"
RUNS = "runs"
STATE = "state.json"
STATE_LOCK = ".state.lock"  # held while a run's end is written (runstate.write_unless_ended)
METRICS = "metrics.jsonl"
LOGS = "logs"
LOGS_ARCHIVE = "logs.zip"  # an ended run's logs once `clean` ran (core/archive.py)
ATTEMPTS = "attempts"
WORKER_LOG = "workerlog"
CHECKPOINTS = "checkpoints"  # paddle_hpc.checkpoint's
SEARCH = "search"  # a search's study, request and driver (search/driver.py)
FEED_LOCK = "feed.lock"  # held by the sweep's feeder (backend/feed.py), its pid inside
FEED_LOG = "feed.log"
STOP_REQUEST = "stop.json"  # written when Slurm signals the job; checkpoint.should_stop()
ATTEMPT_MARK = ".attempt"  # in a node's log folder: the attempt that wrote it
THEN = "then"  # a run's sweep.then steps: then/<step>/ with its state, metrics and log
STEP_LOG = "log"  # a step's stdout and stderr


def rel_run(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def step_of(rel: str) -> str | None:
    """The step whose file `rel` (runs/<id>/then/<step>/...) is, None for a run's own."""
    parts = rel.split("/")
    return parts[3] if len(parts) > 4 and parts[0] == RUNS and parts[2] == THEN else None


def gpu_samples(node: int) -> str:
    """A run's samples of node `node`'s GPUs (node/gpu.py), beside its metrics.jsonl."""
    return f"gpu-node{node}.jsonl"


def compact(node: int) -> str:
    """The rows of node `node`'s metrics files and worker logs, which it writes when an
    attempt ends (parse/compact.py)."""
    return f"collected-node{node}.arrow"


COMPACT_FILES = compact(0).replace("0", "*")  # every node's, as a glob


def slurm_log_name(job_id: int, task: int, node: int, err: bool) -> str:
    """submitit's name for a node's Slurm output: `<job>_<task>_<node>_log.out|err`."""
    return f"{job_id}_{task}_{node}_log.{'err' if err else 'out'}"


@dataclass(frozen=True)
class RunDir:
    """`runs/<run_id>/` (or an earlier attempt's `attempts/<K>/` inside it)."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def state(self) -> Path:
        return self.path / STATE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def archive(self) -> Path:
        return self.path / LOGS_ARCHIVE

    @property
    def stop_request(self) -> Path:
        return self.path / STOP_REQUEST

    def gpu_samples(self, node: int) -> Path:
        return self.path / gpu_samples(node)

    def compact(self, node: int) -> Path:
        return self.path / compact(node)

    def node_logs(self, node: int) -> Path:
        return self.logs / f"node{node}"

    def worker_log(self, node: int, rank: int) -> Path:
        return self.node_logs(node) / f"{WORKER_LOG}.{rank}"

    def then(self, step: str) -> Path:
        """The folder of the run's step `step` (sweep.then)."""
        return self.path / THEN / step

    def attempt(self, number: int) -> RunDir:
        """Where attempt `number`'s files went once a later attempt started."""
        return RunDir(self.path / ATTEMPTS / str(number))


@dataclass(frozen=True)
class SweepDir:
    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def sacct(self) -> Path:
        return self.path / SACCT

    @property
    def run_configs(self) -> Path:
        return self.path / RUN_CONFIGS

    @property
    def slurm(self) -> Path:
        return self.path / SLURM

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def runs(self) -> Path:
        return self.path / RUNS

    @property
    def search(self) -> Path:
        return self.path / SEARCH

    @property
    def feed_lock(self) -> Path:
        return self.path / FEED_LOCK

    @property
    def feed_log(self) -> Path:
        return self.path / FEED_LOG

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.runs / run_id)

    def slurm_log(self, job_id: int, task: int, node: int, err: bool) -> Path:
        return self.slurm / slurm_log_name(job_id, task, node, err)
