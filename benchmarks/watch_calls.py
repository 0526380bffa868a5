"""Slurm calls per minute while paddle_hpc watches a 1,000-run sweep, on the test cluster.

Site administrators judge a sweep tool by its load on the controller: every watcher
(`sweep --follow`, `status --follow`, several at once in a user's terminals) counts
against the per-user RPC budget. This submits a 1,000-point sweep with every task
held (so nothing runs and the sweep stays to watch), then runs one `status --follow`,
and then three at once, each for a fixed window, and counts their Slurm calls through
wrappers of Slurm's tools on the PATH. The sweep is cancelled at the end.

    make bench
    .venv/bin/python benchmarks/watch_calls.py [--window 120]

Target (issue 25): at most 6 calls a minute for one watcher, and the same for three.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from lifecycle import wrappers
from sweep_submit import RESOURCES, cancel

GRID = ("a=range(10)", "b=range(10)", "c=range(10)")
NAME = "bench-watch"


def watch(sweep: Path, watchers: int, window: float, env: dict[str, str]) -> Counter[str]:
    """The Slurm calls of `watchers` status --follow processes over `window` seconds."""
    log = sweep.parent / f"calls-{watchers}.log"
    env = {**env, "PATH": f"{wrappers(sweep.parent / f'bin-{watchers}', log)}:{env['PATH']}"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "paddle_hpc.status", str(sweep), "--follow"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(watchers)
    ]
    time.sleep(window)
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        proc.wait(timeout=30)
    return Counter(log.read_text().split() if log.exists() else [])


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=120, help="seconds per watch (120)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-watch-"))
    (work / "noop.py").write_text("")
    (work / "conf").mkdir()
    (work / "conf" / "config.yaml").write_text(
        "program: {script: noop.py}\na: 0\nb: 0\nc: 0\n" + RESOURCES
    )
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-m", "paddle_hpc.sweep", *GRID, f"sweep.name={NAME}"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    sweep = work / "sweeps" / NAME
    try:
        print(f"1,000 held runs watched for {args.window:.0f} s")
        for watchers in (1, 3):
            calls = watch(sweep, watchers, args.window, env)
            per_minute = sum(calls.values()) * 60 / args.window
            shown = ", ".join(f"{tool} {n}" for tool, n in sorted(calls.items()))
            verdict = "met" if per_minute <= 6 else "MISSED"
            print(
                f"  {watchers} watcher(s): {per_minute:5.1f} calls a minute ({shown}); "
                f"<= 6: {verdict}",
                flush=True,
            )
    finally:
        cancel(NAME)
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
