"""The Prometheus exporter: the tail of a metrics file (literal, ugly inputs), and, on
the test cluster, scrapes over HTTP while a sweep runs."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from paddle_hpc.exporter import TAIL_BYTES, families, latest_metrics
from tests.test_sweep_cluster import write_conf

LONG = "eval.bbox.AP_at_IoU=0.50:0.95_area=all_maxDets=100" * 3


def test_latest_metrics_from_an_ugly_tail(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        json.dumps({"step": 0, "time": 1.0, "attempt": 1, "loss": 2.5, "acc": 0.1}),
        "not json",
        json.dumps([1, 2]),
        json.dumps({"step": 1, "loss": 1.5, LONG: 0.25, "flag": True, "note": "x"}),
        json.dumps({"step": 2, "acc": 0.5}),
        '{"step": 3, "loss": 0.',  # being written
    ]
    path.write_text("\n".join(lines))
    step, values = latest_metrics(path)
    assert step == 2
    assert values == {"loss": 1.5, "acc": 0.5, LONG: 0.25}
    assert latest_metrics(tmp_path / "none.jsonl") == (None, {})
    path.write_text(json.dumps({"step": 0, "old": 1.0}) + "\n" + " " * TAIL_BYTES + "\n")
    assert latest_metrics(path) == (None, {})  # only the tail is read


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


SLOW = """\
import sys, time
from paddle_hpc import log_metrics
for step in range(int(sys.argv[1])):
    time.sleep(1.0)
    log_metrics(step=step, loss=1.0 / (step + 1), **{"eval.top-1 acc": step / 10})
"""


@pytest.mark.slurm
def test_scraped_during_a_sweep(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    config = {
        "program": {"script": "slow.py", "args": ["${steps}"]},
        "steps": 40,
        "resources": {"nodes": 1, "time": "5"},
        "sweep": {"name": "watched", "grid": {"+x": [1, 2, 3]}},
    }
    write_conf(tmp_path, json.dumps(config))
    env = {**os.environ, "PADDLE_HPC_INDEX": str(tmp_path / "index.jsonl")}
    cli = [sys.executable, "-m", "paddle_hpc.cli"]
    submitted = subprocess.run(
        [*cli, "sweep"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert submitted.returncode == 0, submitted.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = subprocess.Popen(
        [*cli, "exporter", str(tmp_path), "--port", str(port), "--addr", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert exporter.stdout is not None and "serving" in exporter.stdout.readline()
        deadline = time.time() + 240
        while time.time() < deadline:
            found = scrape(port)
            runs = {labels["state"]: value for labels, value in found.get("paddle_hpc_runs", [])}
            metrics = found.get("paddle_hpc_run_metric", [])
            if runs.get("RUNNING") and any(v["name"] == "eval.top-1 acc" for v, _ in metrics):
                break
            time.sleep(2)
        else:
            pytest.fail(f"no running run with metrics was exported: {found}")
        assert sum(runs.values()) == 3
        assert {labels["sweep"] for labels, _ in found["paddle_hpc_runs"]} == {"watched"}
        running = {labels["run"] for labels, _ in found["paddle_hpc_run_attempt"]}
        assert running and all(v == 1 for _, v in found["paddle_hpc_run_attempt"])
        assert {labels["run"] for labels, _ in metrics} <= running
        quiet = [v for _, v in found["paddle_hpc_run_seconds_since_output"]]
        assert quiet and all(0 <= v < 60 for v in quiet)
        steps = [v for _, v in found["paddle_hpc_run_step"]]
        assert steps and all(0 <= v < 40 for v in steps)

        before = scrape(port)["paddle_hpc_exporter_snapshots_total"][0][1]
        for _ in range(5):  # five scrapes within the cache time: no new snapshot
            scrape(port)
        after = scrape(port)["paddle_hpc_exporter_snapshots_total"][0][1]
        assert after - before <= 1
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
        subprocess.run([*cli, "cancel", str(tmp_path / "sweeps" / "watched")], env=env, check=False)


def test_the_grafana_dashboard_asks_only_for_what_the_exporter_exports() -> None:
    dashboard = json.loads(
        (Path(__file__).parent.parent / "analysis" / "grafana-dashboard.json").read_text()
    )
    exported = {family.name for family in families([], 0.0)}
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    asked = {name for query in queries for name in re.findall(r"paddle_hpc_\w+", query)}
    assert asked and asked <= exported, asked - exported


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at `port` (the kernel's own table)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_it_serves_this_host_only_unless_told(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PADDLE_HPC_INDEX": str(tmp_path / "index.jsonl")}
    exporter = subprocess.Popen(
        [sys.executable, "-m", "paddle_hpc.exporter", str(tmp_path), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert exporter.stdout is not None and "serving" in exporter.stdout.readline()
        assert listening_on(port) == {"127.0.0.1"}
    finally:
        exporter.terminate()
        exporter.wait(30)
