"""`python -m paddle_hpc.collect SWEEP_DIR`: collect, then print counts and the best runs."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.table import Table

from paddle_hpc.collect import visualdl
from paddle_hpc.collect.collector import collect
from paddle_hpc.collect.results import FORMATS, NAMES, RESULTS, read_table, table_path
from paddle_hpc.collect.tables import Tables, swept_keys
from paddle_hpc.core.command import console as make_console
from paddle_hpc.core.command import run
from paddle_hpc.core.errors import ConfigError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="paddle-hpc collect", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--out", type=Path, help=f"where the tables go (default SWEEP_DIR/{RESULTS})"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="parquet", help="table files (default: parquet)"
    )
    parser.add_argument(
        "--sort", help="rank runs by a column, e.g. final.acc, or -final.loss for lowest first"
    )
    parser.add_argument(
        "--top", type=int, default=5, help="how many of the best runs to show (default: 5)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="processes that read the changed files (default: the cores this one may use)",
    )
    parser.add_argument(
        "--visualdl",
        action="store_true",
        help="also write each run's metrics as VisualDL logs in SWEEP_DIR/visualdl",
    )
    return parser.parse_args(joined_sort(argv))


def joined_sort(argv: Sequence[str]) -> list[str]:
    """'--sort -final.loss' -> '--sort=-final.loss': argparse would take the value for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--sort" and arg.startswith("-"):
            out[-1] = f"--sort={arg}"
        else:
            out.append(arg)
    return out


def best(runs: pd.DataFrame, key: str, top: int) -> pd.DataFrame:
    """The top runs by `key` (highest first), or by `-key` (lowest first)."""
    column = key.lstrip("-")
    if column not in runs.columns:
        raise ConfigError(
            f"--sort {key}: no column {column!r}; the runs table has: {', '.join(runs.columns)}"
        )
    ranked = runs[runs[column].notna()].sort_values(column, ascending=key.startswith("-"))
    shown: pd.DataFrame = ranked.head(top)
    return shown


def summary(tables: Tables, sort: str | None, top: int) -> Table | str:
    """Runs per state, and the `top` best runs by `sort` when given."""
    counts = tables.runs["state"].value_counts().sort_index()
    title = f"{len(tables.runs)} runs: " + "  ".join(f"{s} {n}" for s, n in counts.items())
    title += f"; {len(tables.metrics)} metric rows, {len(tables.errors)} errors"
    if sort is None:
        return title
    axes = swept_keys(tables.runs)
    shown = best(tables.runs, sort, top)
    table = Table(title=f"{title}\nbest {len(shown)} by {sort}")
    for column in ("run", *axes, "state", sort.lstrip("-")):
        table.add_column(column)
    for run_id, row in shown.iterrows():
        cells = [str(run_id), *(str(row[a]) for a in axes), str(row["state"])]
        table.add_row(*cells, f"{row[sort.lstrip('-')]:.6g}")
    return table


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    console = make_console()
    outcome = collect(args.sweep_dir, args.out, args.format, workers=args.workers)
    out = (args.out or args.sweep_dir / RESULTS).resolve()
    if outcome.tables is None:
        console.print(f"nothing changed since the last collect; tables in {out}")
        tables = Tables(*(read_table(table_path(out, n, args.format), args.format) for n in NAMES))
    else:
        tables = outcome.tables
        skipped = ", ".join(f"{n} {what}" for what, n in outcome.skipped.items())
        nodes = outcome.from_nodes
        console.print(
            f"parsed {outcome.parsed} changed file(s)"
            + (f" ({nodes} from the nodes' compact files)" if nodes else "")
            + (f"; skipped: {skipped}" if skipped else "")
            + f"; tables in {out}"
        )
    console.print(summary(tables, args.sort, args.top))
    if args.visualdl:
        folder = args.sweep_dir / visualdl.FOLDER
        if outcome.tables is not None or not folder.exists():
            folder = visualdl.write(tables, args.sweep_dir)
        console.print(f"VisualDL logs: visualdl --logdir {shlex.quote(str(folder))}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
