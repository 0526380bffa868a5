"""The best value of one swept key for each value of another, from a sweep's tables.

    python analysis/best_per_group.py sweeps/digits --metric final.acc \
        --key optim.lr --by data.batch_size          # highest final.acc
    python analysis/best_per_group.py sweeps/digits --metric -final.loss ...  # lowest

The question it answers, "the best learning rate per batch size", is one pandas
expression on the runs table: sort by the metric, then take each group's first row.
"""

from __future__ import annotations

import argparse

import pandas as pd

from paddle_hpc.collect import load


def best_per_group(runs: pd.DataFrame, metric: str, key: str, by: str) -> pd.DataFrame:
    column = metric.lstrip("-")
    done = runs[runs["state"].eq("COMPLETED") & runs[column].notna()]
    ranked = done.sort_values(column, ascending=metric.startswith("-"))
    best = ranked.groupby(by, sort=True).head(1).set_index(by).sort_index()
    return best[[key, column]].rename(columns={key: f"best {key}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--metric", required=True, help="a runs column; '-' for lowest first")
    parser.add_argument("--key", required=True, help="the swept key to choose")
    parser.add_argument("--by", required=True, help="the swept key to group by")
    args = parser.parse_args()
    print(best_per_group(load(args.sweep_dir).runs, args.metric, args.key, args.by).to_string())


if __name__ == "__main__":
    main()
