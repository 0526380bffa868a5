"""Submitting a sweep from a project whose config dir also holds its earlier sweeps.

A Hydra app with `config_path="."` keeps `config.yaml` in the project folder, and
paddle_hpc's sweeps go to `sweeps/` beside it (`-cd .`): every earlier sweep's run
folders sit inside the config dir. This times a 1,000-point submit (command line to
every task queued, held) in such a project after ten earlier 1,000-run sweeps,
against the same submit in a clean project, alternating between the two in one run.

    make bench
    .venv/bin/python benchmarks/submit_history.py [--earlier 10] [--repeat 3]

Target (issue 25): within 1.2x of the clean project.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sweep_submit import RESOURCES, cancel, time_to_queued

GRID = ("a=range(10)", "b=range(10)", "c=range(10)")
CONFIG = "program: {script: noop.py}\na: 0\nb: 0\nc: 0\n" + RESOURCES


def make_project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "noop.py").write_text("")
    (folder / "config.yaml").write_text(CONFIG)
    return folder


def sweep(folder: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "paddle_hpc.sweep", "-cd", ".", *GRID, f"sweep.name={name}"]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--earlier", type=int, default=10, help="earlier sweeps (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each (default 3)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-history-"))
    clean, history = make_project(work / "clean"), make_project(work / "history")
    env = dict(os.environ)
    for i in range(args.earlier):
        name = f"bench-earlier-{i}"
        subprocess.run(sweep(history, name), cwd=history, env=env, check=True, capture_output=True)
        cancel(name)
    folders = sum(len(dirs) for _, dirs, _ in os.walk(history))
    print(f"{args.earlier} earlier sweeps in the config dir: {folders} folders", flush=True)

    times: dict[str, list[float]] = {"clean": [], "history": []}
    for i in range(args.repeat):
        for label, folder in (("clean", clean), ("history", history)):
            name = f"bench-{label}-{i}"
            times[label].append(time_to_queued(sweep(folder, name), folder, name, env, True))
        print(
            f"round {i + 1}: clean {times['clean'][-1]:.2f} s, "
            f"after {args.earlier} sweeps {times['history'][-1]:.2f} s",
            flush=True,
        )
    mine, base = statistics.median(times["history"]), statistics.median(times["clean"])
    ratio = mine / base
    print(f"\n1,000-point submit, `-cd .`, median of {args.repeat}")
    print(f"  clean project                {base:6.2f} s")
    print(f"  after {args.earlier:2} earlier sweeps      {mine:6.2f} s")
    print(f"  ratio {ratio:.2f}: <= 1.2 {'met' if ratio <= 1.2 else 'MISSED'}")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
