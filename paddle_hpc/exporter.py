"""`python -m paddle_hpc.exporter [ROOT] [--port 9464]`: a Prometheus endpoint for
every sweep you submitted (the index `list` reads; with ROOT, the sweeps under it).

Per sweep, its runs per state; per active run, its attempt, its latest step and
logged metrics (the tail of `metrics.jsonl`), and the seconds since it last wrote
anything. A scrape reuses the last snapshot while it is younger than `--cache`
seconds, and a snapshot makes one sacct call at most (as `list` does), so a
Prometheus scraping every 15 s costs the controller about one sacct call per scrape
at most.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paddle_hpc.core import index, runstate
from paddle_hpc.core.command import run
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.list import Listed, gather, under
from paddle_hpc.metrics import RESERVED
from paddle_hpc.node.watchdog import last_output

TAIL_BYTES = 64 * 1024  # the end of a metrics file holds each metric's latest value


def latest_metrics(path: Path) -> tuple[int | None, dict[str, float]]:
    """The latest step and each metric's latest value in a metrics.jsonl, read from its
    tail; lines that are not JSON objects of numbers (a line being written) are skipped."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - TAIL_BYTES))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None, {}
    step: int | None = None
    values: dict[str, float] = {}
    for line in tail.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if isinstance(row.get("step"), int):
            step = row["step"]
        for name, value in row.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and name != "step" and name not in RESERVED:
                values[name] = float(value)
    return step, values


@dataclass
class Snapshot:
    taken: float
    families: list[Metric] = field(default_factory=list)


def families(listed: Sequence[Listed], now: float) -> list[Metric]:
    """The metric families of a snapshot of sweeps and their runs' states."""
    labels = ["sweep", "dir"]
    runs = GaugeMetricFamily(
        "paddle_hpc_runs", "Runs of a sweep per state", labels=[*labels, "state"]
    )
    attempt = GaugeMetricFamily(
        "paddle_hpc_run_attempt", "An active run's attempt", labels=[*labels, "run"]
    )
    step = GaugeMetricFamily(
        "paddle_hpc_run_step", "An active run's latest logged step", labels=[*labels, "run"]
    )
    quiet = GaugeMetricFamily(
        "paddle_hpc_run_seconds_since_output",
        "Seconds since an active run last wrote to a worker log or metrics.jsonl",
        labels=[*labels, "run"],
    )
    metric = GaugeMetricFamily(
        "paddle_hpc_run_metric",
        "An active run's latest value of a metric it logs (log_metrics)",
        labels=[*labels, "run", "name"],
    )
    for item in listed:
        if item.manifest is None or item.statuses is None:
            continue
        sweep = [item.entry.name, str(item.entry.dir)]
        counts: dict[str, int] = {}
        for status in item.statuses:
            counts[status.state] = counts.get(status.state, 0) + 1
        for state, count in sorted(counts.items()):
            runs.add_metric([*sweep, state], count)
        for status in item.statuses:
            if not status.active:
                continue
            run_dir = SweepDir(item.entry.dir).run(status.run_id)
            labels = [*sweep, status.run_id]
            attempt.add_metric(labels, status.attempt)
            latest, values = latest_metrics(run_dir.metrics)
            if latest is not None:
                step.add_metric(labels, latest)
            for name, value in sorted(values.items()):
                metric.add_metric([*labels, name], value)
            if status.state == runstate.RUNNING and (last := last_output(run_dir, 0.0)) > 0:
                quiet.add_metric(labels, max(0.0, now - last))
    return [runs, attempt, step, quiet, metric]


class SweepsCollector(Collector):
    """Every scrape's answer; a new snapshot once the last is `cache` seconds old."""

    def __init__(self, root: Path | None, cache: float) -> None:
        self.root, self.cache = root, cache
        self.snapshots = 0  # how many snapshots (each at most one sacct call) were taken
        self._lock = threading.Lock()
        self._last: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.time()
            if self._last is None or now - self._last.taken >= self.cache:
                entries = index.entries()
                if self.root is not None:
                    entries = [e for e in entries if under(e.dir, self.root)]
                listed = gather(entries, run_files=True)
                self._last = Snapshot(now, families(listed, now))
                self.snapshots += 1
            return self._last

    def collect(self) -> Iterator[Metric]:
        last = self.snapshot()
        yield from last.families
        taken = CounterMetricFamily(
            "paddle_hpc_exporter_snapshots",
            "Snapshots taken: each reads the sweeps and asks sacct once at most",
        )
        taken.add_metric([], self.snapshots)
        yield taken
        age = GaugeMetricFamily("paddle_hpc_exporter_snapshot_age_seconds", "Age of the answer")
        age.add_metric([], time.time() - last.taken)
        yield age


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc exporter", description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, help="only the sweeps under this folder")
    parser.add_argument(
        "--port", type=int, default=9464, help="port to serve /metrics on (default: 9464)"
    )
    parser.add_argument(
        "--addr",
        default="127.0.0.1",
        help="address to listen on (default: this host only; 0.0.0.0 serves every user's "
        "sweeps to anyone who can reach the host)",
    )
    parser.add_argument(
        "--cache", type=float, default=10.0, help="seconds a snapshot answers scrapes (default: 10)"
    )
    args = parser.parse_args(argv)
    registry = CollectorRegistry()
    root = args.root.resolve() if args.root is not None else None
    registry.register(SweepsCollector(root, args.cache))
    server, thread = start_http_server(args.port, args.addr, registry)
    print(f"serving http://{args.addr}:{args.port}/metrics", flush=True)
    try:
        thread.join()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
