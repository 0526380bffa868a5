"""`python -m paddle_hpc.cancel SWEEP_DIR [RUN ...] [--state PENDING,...]`

Cancels the whole sweep, the named runs, or its runs in some states: `scancel` of
their array tasks (never anything else of yours), or locally a stop of the run's
process group. Runs that have ended are left as they are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from paddle_hpc.backend import backend_for, states
from paddle_hpc.backend.naming import described, parse_states, pick_runs
from paddle_hpc.core.command import console, run
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc cancel", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("runs", nargs="*", help="run ids, unique prefixes or JOB_TASK")
    parser.add_argument("--state", help="only the runs in these states, e.g. PENDING")
    args = parser.parse_args(argv)
    sweep = SweepDir(args.sweep_dir)
    manifest = load(sweep.path)
    named = pick_runs(manifest, args.runs) if args.runs else list(manifest.runs)
    wanted = parse_states(args.state) if args.state else None
    backend = backend_for(manifest.executor)
    now = {s.run_id: s for s in states(backend, sweep, manifest)}
    picked = [
        r
        for r in named
        if now[r.run_id].active and (wanted is None or now[r.run_id].state in wanted)
    ]
    if not picked:
        what = f" in {','.join(sorted(wanted))}" if wanted else ""
        raise PaddleHpcError(
            f"nothing to cancel: no run{what} of {sweep.path} is pending or running "
            f"(`paddle-hpc status {sweep.path}` shows their states)."
        )
    backend.cancel(sweep, manifest, [r.run_id for r in picked])
    console().print(f"cancelled {len(picked)} run(s): {described(picked)}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
