"""`python -m paddle_hpc.status SWEEP_DIR [--all] [--state S,...] [-f] [--json]`

Counts per state, then the runs that need attention (ended but not COMPLETED), with
the reason; every run with --all (or when there are at most 20), the runs in some
states with --state. Each refresh
asks the backend once (one sacct call for the whole sweep, whatever its size);
-f (--follow) refreshes with a progress bar, backing off from 2 s to 30 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from paddle_hpc.backend import Backend, RunStatus, backend_for, states
from paddle_hpc.backend.feed import waiting_note
from paddle_hpc.backend.naming import parse_states
from paddle_hpc.backend.view import SHOWN, as_json, exit_code, pending_lines, render, watch
from paddle_hpc.core import runstate
from paddle_hpc.core.command import console as make_console
from paddle_hpc.core.command import run
from paddle_hpc.core.errors import SlurmError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, load, step_state
from paddle_hpc.core.runstate import PENDING
from paddle_hpc.core.schema import step_names
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.pending import Pending, parse_pending

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc status", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--all", action="store_true", help="a row for every run")
    parser.add_argument("--state", help="rows for the runs in these states, e.g. FAILED,TIMEOUT")
    parser.add_argument("-f", "--follow", action="store_true", help="refresh until every run ended")
    parser.add_argument("--watch", dest="follow", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="the runs' states as JSON, for scripts")
    args = parser.parse_args(argv)
    only = parse_states(args.state) if args.state else frozenset()
    console = make_console()
    sweep = SweepDir(args.sweep_dir)
    manifest = load(sweep.path)
    backend = backend_for(manifest.executor)
    if args.follow:  # with --json, the progress goes to stderr and the JSON at the end
        found = watch(sweep, manifest, backend, make_console(stderr=True) if args.json else console)
    else:
        found = states(backend, sweep, manifest)
    queue = pending_in_queue(backend, found)
    if args.json:
        record = {"sweep": manifest.name, "dir": str(sweep.path.resolve()), **as_json(found)}
        record["then"] = step_states(sweep, manifest, found)
        record["pending"] = {
            s.run_id: {"reason": p.reason, "start": p.start.isoformat() if p.start else None}
            for s in found
            if (p := queue.get(s.job)) is not None
        }
        sys.stdout.write(json.dumps(record, indent=1) + "\n")
        return exit_code(found)
    every = args.all or (not only and len(found) <= SHOWN)
    for part in render(manifest, found, every=every, only=only):
        console.print(part)
    for line in [*pending_lines(found, queue), *step_lines(step_states(sweep, manifest, found))]:
        console.print(line, markup=False)
    note = waiting_note(sweep, load(sweep.path) if args.follow else manifest)
    if note:
        console.print(note, markup=False)
    return exit_code(found)


def step_states(
    sweep: SweepDir, manifest: Manifest, found: Sequence[RunStatus]
) -> dict[str, dict[str, str]]:
    """Per step of sweep.then, each run's step state (manifest.step_state)."""
    return {
        name: {s.run_id: step_state(sweep, manifest, s.run_id, name, s.state) for s in found}
        for name in step_names(sweep.config)
    }


def step_lines(steps: dict[str, dict[str, str]]) -> list[str]:
    """`then evaluate: COMPLETED 3, CANCELLED 1 (its run did not complete)`."""
    lines = []
    for name, states_of in steps.items():
        counts = Counter(states_of.values())
        parts = [f"{state} {count}" for state, count in sorted(counts.items())]
        if counts[runstate.CANCELLED]:
            parts[sorted(counts).index(runstate.CANCELLED)] += " (its run did not complete)"
        lines.append(f"then {name}: " + ", ".join(parts))
    return lines


def pending_in_queue(backend: Backend, found: Sequence[RunStatus]) -> dict[str, Pending]:
    """Why the sweep's pending tasks wait, and when they are expected to start: one
    squeue call, when any run is pending in Slurm."""
    if not backend.accounted or not any(s.state == PENDING and s.job for s in found):
        return {}
    try:
        return parse_pending(SlurmClient().pending_jobs())
    except SlurmError as exc:
        log.warning("squeue failed (%s): no pending reasons", exc)
        return {}


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
