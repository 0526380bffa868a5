"""`python -m paddle_hpc.status SWEEP_DIR [--watch]`: counts per state and a table of runs.

Each refresh makes one sacct call for the whole sweep, whatever its size. `--watch`
refreshes with a progress bar, backing off from 2 s to 30 s between calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from paddle_hpc.cli import run
from paddle_hpc.manifest import Manifest, load
from paddle_hpc.node import STATE
from paddle_hpc.slurm import TERMINAL_STATES, SacctRecord, SlurmClient


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    swept: dict[str, str]
    state: str
    elapsed_s: int | None
    nodes: tuple[str, ...]
    job: str  # '12_3', or '' when not submitted to Slurm


def slurm_states(manifest: Manifest, records: Iterable[SacctRecord]) -> list[RunStatus]:
    """Joins sacct's array-task rows to the runs. Pure.

    A run whose task sacct does not list yet (just submitted, or still in the array's
    collapsed pending row) is PENDING; a run never submitted is NOT_SUBMITTED.
    """
    by_task: dict[tuple[int, int], SacctRecord] = {}
    for row in records:
        if row.ref.step is not None or row.ref.tasks is None:
            continue
        for task in row.ref.tasks:
            by_task[(row.ref.job, task)] = row
    statuses = []
    for run_entry in manifest.runs:
        if run_entry.job_id is None or run_entry.array_task is None:
            statuses.append(
                RunStatus(run_entry.run_id, run_entry.swept, "NOT_SUBMITTED", None, (), "")
            )
            continue
        record = by_task.get((run_entry.job_id, run_entry.array_task))
        job = f"{run_entry.job_id}_{run_entry.array_task}"
        if record is None:
            statuses.append(RunStatus(run_entry.run_id, run_entry.swept, "PENDING", None, (), job))
        else:
            statuses.append(
                RunStatus(
                    run_entry.run_id,
                    run_entry.swept,
                    record.state,
                    record.elapsed_s,
                    record.nodes,
                    job,
                )
            )
    return statuses


def local_states(sweep_dir: Path, manifest: Manifest) -> list[RunStatus]:
    """States of a local sweep, from each run's state file."""
    statuses = []
    for run_entry in manifest.runs:
        path = sweep_dir / "runs" / run_entry.run_id / STATE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))["state"]
        except (OSError, ValueError, KeyError):
            state = "PENDING"
        statuses.append(
            RunStatus(run_entry.run_id, run_entry.swept, state, None, ("localhost",), "")
        )
    return statuses


def read_states(sweep_dir: Path, manifest: Manifest, client: SlurmClient) -> list[RunStatus]:
    if manifest.executor == "local":
        return local_states(sweep_dir, manifest)
    return slurm_states(manifest, client.sacct(a.job_id for a in manifest.arrays))


def is_done(statuses: Sequence[RunStatus]) -> bool:
    return all(s.state in TERMINAL_STATES or s.state == "NOT_SUBMITTED" for s in statuses)


def _elapsed(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


_COLOURS = {"COMPLETED": "green", "RUNNING": "cyan", "PENDING": "yellow"}


def state_counts(statuses: Sequence[RunStatus]) -> str:
    """'COMPLETED 3  FAILED 1': runs per state, states in alphabetical order."""
    counts = Counter(s.state for s in statuses)
    return "  ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def render(manifest: Manifest, statuses: Sequence[RunStatus]) -> Table:
    title = f"sweep {manifest.name}: {len(statuses)} runs  ({state_counts(statuses)})"
    table = Table(title=title)
    for column in ("run", "job", *manifest.axes, "state", "elapsed", "nodes"):
        table.add_column(column)
    for s in statuses:
        colour = _COLOURS.get(s.state, "red")
        table.add_row(
            s.run_id,
            s.job,
            *(s.swept.get(axis, "") for axis in manifest.axes),
            f"[{colour}]{s.state}[/]",
            _elapsed(s.elapsed_s),
            ",".join(s.nodes),
        )
    return table


def watch(
    sweep_dir: Path,
    manifest: Manifest,
    client: SlurmClient,
    console: Console,
    sleep: Callable[[float], None] = time.sleep,
    max_interval_s: float = 30.0,
) -> list[RunStatus]:
    """Polls until every run has ended; the interval grows from 2 s to max_interval_s."""
    interval = 2.0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("runs ended", total=len(manifest.runs))
        while True:
            statuses = read_states(sweep_dir, manifest, client)
            ended = sum(1 for s in statuses if s.state in TERMINAL_STATES)
            progress.update(bar, completed=ended, description=state_counts(statuses))
            if is_done(statuses):
                return statuses
            sleep(interval)
            interval = min(interval * 1.5, max_interval_s)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc status", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--watch", action="store_true", help="refresh until every run ended")
    args = parser.parse_args(argv)
    console, client = Console(), SlurmClient()
    manifest = load(args.sweep_dir)
    if args.watch:
        statuses = watch(args.sweep_dir, manifest, client, console)
    else:
        statuses = read_states(args.sweep_dir, manifest, client)
    console.print(render(manifest, statuses))
    failed = [s for s in statuses if s.state in TERMINAL_STATES and s.state != "COMPLETED"]
    return 1 if failed and is_done(statuses) else 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
