"""Slurm calls per minute while paddle_hpc watches a 1,000-run sweep, on the test cluster.

Site administrators judge a sweep tool by its load on the controller: every watcher
(`sweep --follow`, `status --follow`, several at once in a user's terminals) counts
against the per-user RPC budget. This submits a 1,000-point sweep with every task
held (so nothing runs and the sweep stays to watch), then runs one `status --follow`,
and then three at once, each for a fixed window, and counts their Slurm calls through
wrappers of Slurm's tools on the PATH. The sweep is cancelled at the end. Then a
search's driver (`search.poll` 10 s, its default) watches a batch of 8 held trials
for the same window, while one `status --follow` watches the same sweep.

    make bench
    .venv/bin/python benchmarks/watch_calls.py [--window 120]

Target (issue 25): at most 6 calls a minute for one watcher, and the same for three
and for a search with a watcher beside it.
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

from paddle_hpc.core.manifest import load

GRID = ("a=range(10)", "b=range(10)", "c=range(10)")
NAME = "bench-watch"


SEARCH = """
search:
  n_trials: 8
  batch_size: 8
  params: {a: "interval(0.0, 1.0)"}
  objective: final.loss
"""


def watch(
    sweep: Path, watchers: int, window: float, env: dict[str, str], search: Path | None = None
) -> Counter[str]:
    """The Slurm calls of `watchers` status --follow processes over `window` seconds,
    and of a search's driver, started in `search`, if given."""
    log = sweep.parent / f"calls-{watchers}-{search is not None}.log"
    tools = wrappers(sweep.parent / f"bin-{watchers}-{search is not None}", log)
    env = {**env, "PATH": f"{tools}:{env['PATH']}"}
    if search is not None:
        command = [sys.executable, "-m", "paddle_hpc.sweep", "sweep.name=bench-search"]
        subprocess.run(command, cwd=search, env=env, check=True, capture_output=True)
        sweep = search / "sweeps" / "bench-search"
        while not (sweep / "manifest.json").exists() or not load(sweep).arrays:
            time.sleep(0.5)  # its driver submits the batch: calls of a submission, not counted
        time.sleep(2)
        log.write_text("")
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
    calls = Counter(log.read_text().split() if log.exists() else [])
    if search is not None:
        driver = int((sweep / "search" / "driver.lock").read_text())
        os.kill(driver, signal.SIGTERM)
        cancel("bench-search")
    return calls


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
    searched = work / "search"
    shutil.copytree(work / "conf", searched / "conf")
    with (searched / "conf" / "config.yaml").open("a") as config:
        config.write(SEARCH)
    (searched / "noop.py").write_text("")
    try:
        print(f"1,000 held runs watched for {args.window:.0f} s")
        for watchers, search in ((1, None), (3, None), (1, searched)):
            calls = watch(sweep, watchers, args.window, env, search)
            per_minute = sum(calls.values()) * 60 / args.window
            shown = ", ".join(f"{tool} {n}" for tool, n in sorted(calls.items()))
            verdict = "met" if per_minute <= 6 else "MISSED"
            who = f"{watchers} watcher(s)" + (" and a search's driver" if search else "")
            print(
                f"  {who}: {per_minute:5.1f} calls a minute ({shown}); <= 6: {verdict}",
                flush=True,
            )
    finally:
        cancel(NAME)
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
