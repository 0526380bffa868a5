"""The static report: an HTML page with matplotlib PNGs beside it, for papers and for
machines without a browser (`report --png`)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a login node

import matplotlib.pyplot as plt
import pandas as pd

from paddle_hpc.collect import Tables
from paddle_hpc.collect.gpu import from_samples
from paddle_hpc.collect.tables import swept_keys
from paddle_hpc.collect.usage import summary, summary_lines
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.files import write_atomic

MAX_METRICS = 12


def colours(values: pd.Series) -> dict[object, tuple[float, float, float, float]]:
    """A colour per distinct value: a sequential map for numbers, a palette otherwise."""
    distinct = sorted(values.dropna().unique(), key=lambda v: (str(type(v)), v))
    cmap = plt.get_cmap("viridis" if pd.api.types.is_numeric_dtype(values) else "tab10")
    steps = max(len(distinct) - 1, 1)
    return {
        value: cmap(i / steps if cmap.name == "viridis" else i % 10)
        for i, value in enumerate(distinct)
    }


def literal(text: object) -> str:
    """Text matplotlib shows as it is: a '$' would start mathtext."""
    return str(text).replace("$", r"\$")


class Lines:
    """A figure of one line per run (or per run and node), coloured by a swept key."""

    def __init__(self, runs: pd.DataFrame, key: str | None) -> None:
        self.runs, self.key = runs, key
        self.palette = colours(runs[key]) if key else {}
        self.labelled: set[object] = set()
        self.fig, self.ax = plt.subplots(figsize=(6.4, 4))

    def line(self, run_id: object, x: pd.Series, y: pd.Series) -> None:
        key = self.key
        value = self.runs.loc[str(run_id), key] if key else None
        label = literal(f"{key}={value!s}") if key and value not in self.labelled else None
        self.labelled.add(value)
        marker = "o" if len(x) == 1 else None  # a line of one point is not drawn
        color = self.palette.get(value)
        self.ax.plot(x, y, color=color, label=label, linewidth=1, marker=marker)

    def save(self, path: Path, **labels: object) -> None:
        self.ax.set(**labels)
        if self.key and self.labelled:
            self.ax.legend(fontsize="small")
        self.fig.tight_layout()
        self.fig.savefig(path, dpi=90)
        plt.close(self.fig)


def curve_plot(tables: Tables, name: str, key: str | None, path: Path) -> None:
    rows = tables.metrics[tables.metrics["name"] == name]
    lines = Lines(tables.runs, key)
    for run_id, group in rows.groupby("run_id", observed=True, sort=False):
        x = group["step"].astype("float64")
        if x.isna().all():
            x = pd.Series(range(len(group)), index=group.index, dtype="float64")
        lines.line(run_id, x, group["value"])
    lines.save(path, xlabel="step", ylabel=literal(name), title=literal(name))


def gpu_plot(tables: Tables, key: str | None, path: Path) -> bool:
    """Each node's mean utilisation of its GPUs over the run's time, if sampled."""
    samples = tables.metrics[from_samples(tables.metrics)]
    util = samples[samples["name"].astype(str).str.endswith(".util")]
    if util.empty:
        return False
    lines = Lines(tables.runs, key)
    for (run_id, _), group in util.groupby(["run_id", "source"], observed=True, sort=False):
        mean = group.groupby("time")["value"].mean()
        start = util.loc[util["run_id"] == run_id, "time"].min()
        lines.line(run_id, (mean.index - start).total_seconds() / 60, mean)
    lines.save(
        path,
        xlabel="minutes since the run's first sample",
        ylabel="GPU utilisation, %",
        title="GPU utilisation: each node's mean over its GPUs",
        ylim=(-3, 103),
    )
    return True


def final_plot(runs: pd.DataFrame, column: str, keys: Sequence[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        data = runs[[key, column]].dropna()
        if pd.api.types.is_numeric_dtype(data[key]):
            ax.scatter(data[key], data[column], s=18)
            if data[key].gt(0).all() and data[key].max() / max(data[key].min(), 1e-300) > 50:
                ax.set_xscale("log")
        else:
            order = sorted(data[key].astype(str).unique())
            ax.scatter([order.index(v) for v in data[key].astype(str)], data[column], s=18)
            ax.set_xticks(range(len(order)), [literal(v) for v in order], rotation=30, ha="right")
        ax.set(xlabel=literal(key), ylabel=literal(column))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def blank_na(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing values of nullable integer and text columns blank: to_html's na_rep does
    not reach them (it would print <NA> and None)."""
    out: pd.DataFrame = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.Int64Dtype) or out[column].dtype == object:
            out[column] = out[column].astype(object).where(out[column].notna(), "")
    return out


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f"<h2>{html.escape(head)}</h2>\n{content}" for head, content in sections)
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%;margin:4px}pre{white-space:pre-wrap;font-size:85%}"
    )
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_report(tables: Tables, out: Path, title: str, color: str | None = None) -> Path:
    """Writes out/index.html and its PNGs; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    keys = swept_keys(tables.runs)
    if color is not None and color not in keys:
        raise ConfigError(f"--color {color}: not a swept key; the swept keys are {keys}")
    key = color or (keys[0] if keys else None)
    runs_html = blank_na(tables.runs).to_html(na_rep="", float_format=lambda v: f"{v:.6g}")
    cost = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(summary(tables.runs)))
    if gpu_plot(tables, key, out / "gpu_util.png"):
        cost += "<img src='gpu_util.png' alt='GPU utilisation'>"
    sections = [("Cost", cost), ("Runs", runs_html)]

    scripts = tables.metrics[~from_samples(tables.metrics)]  # the samples have their plot
    names = list(dict.fromkeys(scripts["name"].astype(str)))[:MAX_METRICS]
    images = []
    for index, name in enumerate(names):
        curve_plot(tables, name, key, out / f"curve_{index}.png")
        images.append(f"<img src='curve_{index}.png' alt='{html.escape(name)}'>")
    caption = f"<p>coloured by {html.escape(key)}</p>" if key else ""
    sections.append(("Learning curves", caption + "".join(images) or "<p>no metrics yet</p>"))

    finals = sorted(  # evaluation values first: they are the ones runs are judged by
        (c for c in tables.runs.columns if c.startswith(("best.", "final."))),
        key=lambda c: (not c.startswith("best."), not c.startswith("final.eval.")),
    )[:MAX_METRICS]
    images = []
    for index, column in enumerate(finals):
        if keys:
            final_plot(tables.runs, column, keys, out / f"final_{index}.png")
            images.append(f"<img src='final_{index}.png' alt='{html.escape(column)}'>")
    sections.append(("Final metrics by swept key", "".join(images) or "<p>nothing to plot</p>"))

    errors = tables.errors
    failures = (
        blank_na(errors.drop(columns=["traceback", "tail"])).to_html(na_rep="", index=False)
        + "".join(
            f"<details><summary>{html.escape(str(r.run_id))}: {html.escape(str(r.kind))}"
            f"</summary><pre>{html.escape(str(r.traceback or r.tail))}</pre></details>"
            for r in errors.itertuples()
            if r.traceback or r.tail
        )
        if not errors.empty
        else "<p>none</p>"
    )
    sections.append(("Failures", failures))
    path = out / "index.html"
    write_atomic(path, page(title, sections))
    return path
