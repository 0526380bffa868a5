"""`python -m paddle_hpc.list [ROOT]`: every sweep you submitted, newest first.

Reads the per-user index the sweep command writes ($PADDLE_HPC_INDEX, by default
~/.local/state/paddle_hpc/sweeps.jsonl); with ROOT, only the sweeps under it. The
states of every Slurm sweep's runs come from one sacct call. A sweep directory that
was moved or deleted is listed as missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from paddle_hpc.backend import RunStatus, backend_for
from paddle_hpc.backend.view import as_json, state_counts
from paddle_hpc.core import index
from paddle_hpc.core.command import console, run
from paddle_hpc.core.errors import PaddleHpcError, SlurmError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, load

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listed:
    entry: index.Entry
    manifest: Manifest | None
    problem: str  # why there is no manifest: 'missing', 'unreadable: ...'
    statuses: tuple[RunStatus, ...] | None = None  # None when they could not be read


def under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def gather(entries: Sequence[index.Entry], run_files: bool = False) -> list[Listed]:
    """Each sweep with its runs' states: one backend call per executor. With run_files,
    what the runs' state files add (attempt, reason) too."""
    listed: list[Listed] = []
    for entry in entries:
        sweep = SweepDir(entry.dir)
        if not sweep.manifest.exists():
            listed.append(Listed(entry, None, "missing (moved or deleted)"))
            continue
        try:
            listed.append(Listed(entry, load(sweep.path), ""))
        except PaddleHpcError as exc:
            listed.append(Listed(entry, None, f"unreadable: {exc}"))
    by_executor: dict[str, list[int]] = {}
    for i, item in enumerate(listed):
        if item.manifest:
            by_executor.setdefault(item.manifest.executor, []).append(i)
    for executor, picked in by_executor.items():
        pairs = [(SweepDir(listed[i].entry.dir), listed[i].manifest) for i in picked]
        try:
            found = backend_for(executor).states_of(pairs, run_files=run_files)  # type: ignore[arg-type]
        except SlurmError as exc:
            log.warning("run states unknown: %s", exc)
            continue
        for i, statuses in zip(picked, found, strict=True):
            item = listed[i]
            listed[i] = Listed(item.entry, item.manifest, "", tuple(statuses))
    return listed


def table(listed: Sequence[Listed]) -> Table:
    out = Table(title=f"{len(listed)} sweep(s), newest first", title_justify="left")
    for column in ("name", "directory", "submitted", "runs", "states", "active"):
        out.add_column(column)
    for item in listed:
        runs = str(len(item.manifest.runs)) if item.manifest else ""
        if item.problem:
            states, active = item.problem, ""
        elif item.statuses is None:
            states, active = "unknown (Slurm did not answer)", "?"
        else:
            states = state_counts(item.statuses)
            active = "yes" if any(s.active for s in item.statuses) else "no"
        out.add_row(item.entry.name, str(item.entry.dir), item.entry.created, runs, states, active)
    return out


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc list", description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, help="only the sweeps under this folder")
    parser.add_argument("--json", action="store_true", help="the sweeps as JSON, for scripts")
    args = parser.parse_args(argv)
    entries = index.entries()
    if args.root is not None:
        root = args.root.resolve()
        entries = [e for e in entries if under(e.dir, root)]
    if not entries:
        where = f" under {args.root}" if args.root is not None else ""
        raise PaddleHpcError(
            f"no sweeps{where} in {index.index_path()}: `paddle-hpc sweep` records each "
            "sweep it submits there."
        )
    listed = gather(entries)
    if args.json:
        sys.stdout.write(json.dumps([listed_json(item) for item in listed], indent=1) + "\n")
    else:
        console().print(table(listed))
    return 0


def listed_json(item: Listed) -> dict[str, Any]:
    """One sweep as `list --json` prints it; `runs` null when Slurm did not answer."""
    record: dict[str, Any] = {
        "name": item.entry.name,
        "dir": str(item.entry.dir),
        "submitted": item.entry.created,
        "problem": item.problem or None,
    }
    if item.manifest is not None and item.statuses is not None:
        record |= as_json(item.statuses)
    return record


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
