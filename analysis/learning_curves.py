"""Per value of a swept key: the mean learning curve of a metric, and where it peaked.

    python analysis/learning_curves.py sweeps/digits --metric acc --key optim.lr

Joins the long metrics table to the runs table's swept key, then pivots: one row
per step, one column per key value, the mean over the runs that share it. The
last line names, per key value, the step with the best mean.
"""

from __future__ import annotations

import argparse

import pandas as pd

from paddle_hpc.collect import load


def mean_curves(metrics: pd.DataFrame, runs: pd.DataFrame, metric: str, key: str) -> pd.DataFrame:
    rows = metrics[metrics["name"] == metric].copy()
    rows["run_id"] = rows["run_id"].astype(str)
    rows = rows.join(runs[[key]], on="run_id")
    return rows.pivot_table(index="step", columns=key, values="value", aggfunc="mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--metric", required=True, help="a metric name, e.g. acc")
    parser.add_argument("--key", required=True, help="a swept key, e.g. optim.lr")
    parser.add_argument("--lowest", action="store_true", help="the best step is the lowest")
    args = parser.parse_args()
    tables = load(args.sweep_dir)
    curves = mean_curves(tables.metrics, tables.runs, args.metric, args.key)
    print(curves.to_string(float_format=lambda v: f"{v:.4g}"))
    best = curves.idxmin() if args.lowest else curves.idxmax()
    print("best step:", ", ".join(f"{args.key}={k}: {v}" for k, v in best.items()))


if __name__ == "__main__":
    main()
