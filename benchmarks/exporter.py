"""`paddle-hpc exporter` scraped as Prometheus scrapes it, on the test cluster.

The sweeps are lifecycle.py's: 50 sweeps of 100 runs (10 arrays that ran, 40 held and
cancelled), in an index of their own. The exporter runs as a user runs it, with
Slurm's tools wrapped on the PATH to count its calls. It is scraped over HTTP, a
fresh snapshot's scrape and a cached one's alternating with one bare `sacct` call for
the same jobs (the controller's cost of one snapshot), and then scraped every second
for 30 s with the default 10 s cache, counting the Slurm calls.

    make bench
    .venv/bin/python benchmarks/exporter.py [--repeat N]

Target (issue 13): one sacct call per scrape at most, cached for a few seconds, so
that scraping every 15 s costs the controller nothing noticeable.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from paddle_hpc.core import index, runstate
from paddle_hpc.slurm.client import sacct_argv

_spec = importlib.util.spec_from_file_location(
    "lifecycle", Path(__file__).with_name("lifecycle.py")
)
assert _spec is not None and _spec.loader is not None
lifecycle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lifecycle)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
        answer.read()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ran, cancelled = lifecycle.jobs()
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-bench-"))
    exporters: list[subprocess.Popen[str]] = []
    try:
        log = work / "slurm-calls.log"
        tools = lifecycle.wrappers(work / "bin", log)
        env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
        env["PADDLE_HPC_INDEX"] = str(work / "index.jsonl")
        for number, job in enumerate(ran + cancelled):
            folder = work / "sweeps" / f"sweep{number:02d}"
            lifecycle.write_sweep(folder, folder.name, [job])
            index.record(folder, folder.name, runstate.now(), work / "index.jsonl")
        bare = ["sacct", *sacct_argv(ran + cancelled)[1:]]

        def start(cache: float) -> int:
            port = free_port()
            argv = [sys.executable, "-m", "paddle_hpc.exporter", "--addr", "127.0.0.1"]
            process = subprocess.Popen(
                [*argv, "--port", str(port), "--cache", str(cache)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            exporters.append(process)
            assert process.stdout is not None and "serving" in process.stdout.readline()
            return port

        fresh_port, cached_port = start(0.0), start(3600.0)
        scrape(cached_port)  # its one snapshot
        times: dict[str, list[float]] = {"fresh": [], "cached": [], "sacct": []}
        for _ in range(args.repeat):
            times["fresh"].append(scrape(fresh_port))
            times["cached"].append(scrape(cached_port))
            begin = time.perf_counter()
            subprocess.run(bare, env=env, capture_output=True, check=True)
            times["sacct"].append(time.perf_counter() - begin)
        fresh, cached, sacct = (statistics.median(times[k]) for k in ("fresh", "cached", "sacct"))
        print(
            f"scrape of 50 sweeps x 100 runs: fresh snapshot {fresh:.3f} s, cached "
            f"{cached * 1000:.1f} ms; one bare sacct {sacct:.3f} s; ratio fresh/sacct "
            f"{fresh / sacct:.1f}"
        )

        for process in exporters:
            process.terminate()
            process.wait(timeout=30)
        exporters.clear()
        port = start(10.0)
        log.write_text("")
        scrapes = 0
        end = time.monotonic() + 30
        while time.monotonic() < end:
            scrape(port)
            scrapes += 1
            time.sleep(1.0)
        calls = log.read_text().split()
        per_scrape = len(calls) / scrapes
        verdict = "met" if set(calls) <= {"sacct"} and len(calls) <= 4 else "MISSED"
        print(
            f"scraped every second for 30 s ({scrapes} scrapes, cache 10 s): "
            f"{len(calls)} Slurm calls ({', '.join(sorted(set(calls)))}), {per_scrape:.2f} "
            f"per scrape; at Prometheus' 15 s: one sacct per scrape, 4 a minute; "
            f"target <= one sacct per scrape, cached: {verdict}"
        )
    finally:
        for process in exporters:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
