"""`python -m paddle_hpc.report SWEEP_DIR [--out DIR] [--objective COLUMN] [--png [--color KEY]]`

Writes `SWEEP_DIR/report/index.html`: one self-contained interactive page (its scripts
inlined; it opens offline, anywhere) of the runs table, the curves, what went wrong and
what the sweep cost. With `--png`, a static page with matplotlib PNGs beside it
instead. It starts from the collector's tables (collecting first if anything changed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from paddle_hpc.collect import load
from paddle_hpc.core import manifest
from paddle_hpc.core.command import run
from paddle_hpc.pages import interactive, static


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, help="report folder (default SWEEP_DIR/report)")
    parser.add_argument(
        "--objective",
        help="the runs table's column runs are judged by (default: the search's objective, "
        "else the first final evaluation value)",
    )
    parser.add_argument("--png", action="store_true", help="a static page with PNGs instead")
    parser.add_argument("--color", help="--png: the swept key that colours the curves")
    args = parser.parse_args(argv)
    tables = load(args.sweep_dir)
    out = args.out or args.sweep_dir / "report"
    title = f"sweep {args.sweep_dir.resolve().name}"
    if args.png:
        path = static.write_report(tables, out, title, args.color)
    else:
        out.mkdir(parents=True, exist_ok=True)
        search = manifest.load(args.sweep_dir).extra.get("search") or {}
        objective = args.objective or search.get("objective")
        path = interactive.write_page(tables, out / "index.html", title, objective)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
