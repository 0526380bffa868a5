"""`python -m paddle_hpc.cost SWEEP_DIR [--json]`

What a sweep was charged and how much of what it asked for it used, by Slurm's
accounting: GPU- and CPU-hours over every allocation of every run (requeues and
retries too), by end state; CPU efficiency; each run's peak memory against its
request and its elapsed time against its limit; the most the sweep asks for; and a
time limit and memory that fit, from its runs and your earlier sweeps of the same
program (`sweep --fit-from SWEEP_DIR` asks for them next time). It collects the sweep
first (one sacct call when anything changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from paddle_hpc.backend import backend_for
from paddle_hpc.backend.charges import asked, asked_line
from paddle_hpc.collect import load as load_tables
from paddle_hpc.collect.fit import fit_lines, fit_sweep
from paddle_hpc.collect.usage import summary, summary_lines
from paddle_hpc.core.command import console, run
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc cost", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--json", action="store_true", help="the figures as JSON, for scripts")
    args = parser.parse_args(argv)
    sweep = SweepDir(args.sweep_dir)
    manifest = load(sweep.path)
    packed = int(manifest.extra.get("base", {}).get("sweep", {}).get("trials_per_task", 1))
    most = asked(manifest, packed)
    if not backend_for(manifest.executor).accounted:
        raise ConfigError(f"{sweep.path} ran here, without Slurm: no accounting says what it cost.")
    runs = load_tables(sweep.path).runs
    found, fit = summary(runs), fit_sweep(sweep.path, runs)
    if args.json:
        record = {
            "sweep": manifest.name,
            **asdict(found),
            "asked_gpu_hours": most.gpu_hours,
            "fit": asdict(fit),
        }
        sys.stdout.write(json.dumps(record, indent=1) + "\n")
        return 0
    out = console()
    out.print(f"sweep {manifest.name}: {len(manifest.runs)} runs", markup=False)
    lines = [*summary_lines(found), f"the sweep asks for {asked_line(most)}, each run once"]
    for line in [*lines, *fit_lines(fit, sweep.path)]:
        out.print(line, markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
