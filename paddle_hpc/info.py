"""`python -m paddle_hpc.info [SWEEP_DIR]`: the Slurm cluster as paddle_hpc sees it; with a
sweep directory, what the sweep costs its filesystem (files, folders, bytes, per run)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from paddle_hpc.core.command import console, run
from paddle_hpc.core.disk import DiskUse, disk_use_by_entry
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.parse import max_array_size

SHOWN = ("ClusterName", "SLURM_VERSION", "SlurmctldHost[0]", "SelectType", "PreemptType")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc info", description=__doc__)
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="a sweep's directory")
    parser.add_argument("--json", action="store_true", help="the settings as JSON, for scripts")
    args = parser.parse_args(argv)
    if args.sweep_dir is not None:
        return show_disk_use(SweepDir(args.sweep_dir), args.json)
    config = SlurmClient().show_config()
    if args.json:
        shown = {key: config.get(key) for key in SHOWN}
        shown["MaxArraySize"] = str(max_array_size(config))
        sys.stdout.write(json.dumps(shown, indent=1) + "\n")
        return 0
    table = Table("setting", "value", title="Slurm, through paddle_hpc's seam")
    for key in SHOWN:
        table.add_row(key, config.get(key, "(not set)"))
    table.add_row("MaxArraySize", str(max_array_size(config)))
    console().print(table)
    return 0


def show_disk_use(sweep: SweepDir, as_json: bool) -> int:
    runs = len(load(sweep.path).runs)
    parts = disk_use_by_entry(sweep.path)
    whole = sum(parts.values(), DiskUse(0, 1, sweep.path.lstat().st_blocks * 512))
    # what lies under runs/ and slurm/, those two folders left out
    under = [parts.get(f.name, DiskUse(0, 1)).inodes - 1 for f in (sweep.runs, sweep.slurm)]
    per_run = sum(under) / max(runs, 1)
    found = {
        "runs": runs,
        "files": whole.files,
        "folders": whole.folders,
        "inodes": whole.inodes,
        "inodes_per_run": round(per_run, 1),
        "bytes": whole.bytes,
    }
    if as_json:
        sys.stdout.write(json.dumps(found, indent=1) + "\n")
        return 0
    table = Table("", "value", title=f"{sweep.path} on its filesystem")
    for key, value in found.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("on disk", f"{whole.bytes / 2**20:,.1f} MiB")
    console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
