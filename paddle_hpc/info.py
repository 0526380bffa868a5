"""`python -m paddle_hpc.info`: the Slurm cluster as paddle_hpc sees it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.table import Table

from paddle_hpc.core.command import console, run
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.parse import max_array_size

SHOWN = ("ClusterName", "SLURM_VERSION", "SlurmctldHost[0]", "SelectType", "PreemptType")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc info", description=__doc__)
    parser.add_argument("--json", action="store_true", help="the settings as JSON, for scripts")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
