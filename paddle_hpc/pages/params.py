"""Which hyperparameters matter: a parallel-coordinates view of the swept keys against
the objective, and per key the objective's spread by value. Both draw from the runs'
data source, so a selection in either is a selection of runs everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.models.annotations.labels import LabelSet
from bokeh.models.plots import GridPlot
from bokeh.models.ranges import FactorRange, Range1d
from bokeh.plotting import figure
from bokeh.transform import linear_cmap

SPREAD_WIDTH = 260


def objective_of(runs: pd.DataFrame, wanted: str | None) -> str | None:
    """The column runs are judged by: `wanted`, else the first final evaluation value,
    else the first final value."""
    if wanted is not None:
        return wanted
    finals = [c for c in runs.columns if c.startswith(("best.", "final."))]
    finals.sort(key=lambda c: (not c.startswith("best."), not c.startswith("final.eval.")))
    return finals[0] if finals else None


def scalars(values: pd.Series) -> pd.Series:
    """The values, a list or a mapping (a swept `+files=[a,b]`) as its text."""
    return values.map(lambda v: v if pd.api.types.is_scalar(v) else str(v))


def text(values: pd.Series) -> pd.Series:
    """The values as text, a missing one as "" (pandas' str keeps it missing)."""
    return scalars(values).map(lambda v: "" if pd.isna(v) else str(v)).astype(object)


def ordered(values: pd.Series) -> list[str]:
    """The distinct values as text, in numeric order when they are all numbers."""
    distinct = scalars(values).dropna().unique()
    numbers = pd.to_numeric(pd.Series(distinct), errors="coerce")
    if numbers.notna().all():
        return [str(v) for v in pd.Series(distinct)[np.argsort(numbers.to_numpy())]]
    return sorted(map(str, distinct))


MISSING = -0.08  # where a run without a value crosses a numeric axis: just below it


def axis_positions(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each run's place on a 0-1 axis, and the axis's end labels: numbers by value (log
    spaced when they span two decades or more, a missing one just below the axis), anything
    else by its ordered labels."""
    values = scalars(values)
    numeric = pd.to_numeric(values, errors="coerce")
    present = values.notna().to_numpy()
    if present.any() and numeric[present].notna().all():
        x = numeric.to_numpy(float)
        known = x[present]
        if (known > 0).all() and known.max() / known.min() >= 100:
            x, known = np.log10(x), np.log10(known)
        low, high = float(known.min()), float(known.max())
        spread = (x - low) / (high - low) if high > low else np.where(present, 0.5, np.nan)
        return np.where(present, spread, MISSING), [f"{numeric.min():g}", f"{numeric.max():g}"]
    named = text(values)
    labels = ordered(named)
    place = {label: i / max(len(labels) - 1, 1) for i, label in enumerate(labels)}
    return np.array([place[v] for v in named]), labels


MAX_TICKS = 12  # a text axis with more values names its ends only


def axis_ticks(runs: pd.DataFrame, axes: Sequence[str]) -> dict[str, Any]:
    """The parallel coordinates' labels beside each axis: a numeric axis's lowest and
    highest value at its ends, a text axis's values where runs cross it."""
    ticks: dict[str, Any] = {"x": [], "y": [], "text": []}
    for i, axis in enumerate(axes):
        _, labels = axis_positions(runs[axis])
        shown = list(enumerate(labels))
        if len(shown) > MAX_TICKS:
            shown = [shown[0], shown[-1]]
        for j, label in shown:
            ticks["x"].append(i)
            ticks["y"].append(j / max(len(labels) - 1, 1))
            ticks["text"].append(label)
    return ticks


def parallel_lines(
    runs: pd.DataFrame, keys: Sequence[str], objective: str
) -> dict[str, list[list[float]]]:
    """Each run's line through the axes `keys` and the objective, for a multi_line."""
    axes = [*keys, objective]
    ys = np.column_stack([axis_positions(runs[key])[0] for key in axes])
    xs = [[float(i) for i in range(len(axes))]] * len(runs)
    return {"px": xs, "py": [row.tolist() for row in ys]}


def colour_by(source: ColumnDataSource, column: str) -> Any:
    """A colour per run by a numeric column (Viridis, a missing value grey); one colour
    for a column of text."""
    try:
        values = np.asarray(source.data[column], dtype=float)
    except (TypeError, ValueError):
        return "steelblue"
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return linear_cmap(column, "Viridis256", low, high, nan_color="lightgrey")


def parallel_plot(
    source: ColumnDataSource, runs: pd.DataFrame, keys: Sequence[str], objective: str
) -> figure:
    axes = [*keys, objective]
    fig = figure(
        height=320,
        sizing_mode="stretch_width",
        title=f"swept keys against {objective} (the colour): select runs with a tap",
        tools="tap,reset,save",
        x_range=Range1d(start=-0.3, end=len(axes) - 0.7),
        y_range=Range1d(start=-0.12, end=1.12),
    )
    fig.multi_line(
        "px",
        "py",
        source=source,
        line_color=colour_by(source, objective),
        line_alpha=0.5,
        selection_line_color="crimson",
        selection_line_width=2,
        nonselection_line_alpha=0.05,
    )
    for i in range(len(axes)):
        fig.line([i, i], [0, 1], color="black", line_width=1)
    labels = ColumnDataSource(
        {"x": list(range(len(axes))), "y": [1.06] * len(axes), "text": list(axes)}
    )
    fig.add_layout(LabelSet(x="x", y="y", text="text", source=labels, text_align="center"))
    ticks = ColumnDataSource(axis_ticks(runs, axes))
    fig.add_layout(
        LabelSet(
            x="x",
            y="y",
            text="text",
            source=ticks,
            x_offset=4,
            text_baseline="middle",
            text_font_size="11px",
            text_color="dimgray",
            background_fill_color="white",
            background_fill_alpha=0.8,
        )
    )
    fig.xaxis.visible = fig.yaxis.visible = False
    fig.add_tools(HoverTool(tooltips=[("run", "@run_id")]))
    return fig


def spread_plots(
    source: ColumnDataSource, runs: pd.DataFrame, keys: Sequence[str], objective: str
) -> GridPlot:
    """Per key, the objective of each run by the key's value (values as categories)."""
    figs = []
    for key in keys:
        factors = ordered(text(runs[key]))
        fig = figure(
            width=SPREAD_WIDTH,
            height=240,
            title=key,
            x_range=FactorRange(factors=factors),
            tools="tap,box_select,reset",
        )
        fig.scatter(
            f"cat:{key}",
            objective,
            source=source,
            size=6,
            alpha=0.6,
            selection_color="crimson",
            nonselection_alpha=0.1,
        )
        fig.yaxis.axis_label = objective
        fig.add_tools(HoverTool(tooltips=[("run", "@run_id"), (key, f"@{{cat:{key}}}")]))
        figs.append(fig)
    return gridplot(list(figs), ncols=4)
