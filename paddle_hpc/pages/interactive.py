"""The interactive report: one HTML file, Bokeh's scripts inlined, no server.

Bokeh over Plotly: Plotly's inlined plotly.min.js alone is 4.8 MB; Bokeh's core, tables
and widgets bundles are 2.1 MB, which leaves the 5 MB budget room for 1,000 runs'
curves. The canvas backend, not WebGL: a browser without a GPU renders WebGL in
software (12.7 s against 2.5 s for the same page here).

One data source row per run feeds the runs table, the parallel coordinates and the
spreads; each curve source has a row per run in the same order, and selections are
linked, so selecting runs anywhere highlights their curves.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column
from bokeh.models import (
    BooleanFilter,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSHover,
    HoverTool,
    TabPanel,
    Tabs,
)
from bokeh.models.ui.ui_element import UIElement
from bokeh.models.widgets.inputs import MultiChoice
from bokeh.models.widgets.markups import Div
from bokeh.models.widgets.tables import DataTable, NumberFormatter, TableColumn
from bokeh.plotting import figure
from bokeh.resources import INLINE

from paddle_hpc.collect import Tables
from paddle_hpc.collect.gpu import from_samples, over_time
from paddle_hpc.collect.tables import swept_keys
from paddle_hpc.collect.usage import summary, summary_lines
from paddle_hpc.core import runstate
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.files import write_atomic
from paddle_hpc.pages import kinds, params
from paddle_hpc.pages.thin import points_per_curve, thin

CURVE_BUDGET_BYTES = 2_500_000  # of the page's 5 MB, what the curves may take
TABLE_COLUMNS = ("state", "attempts", "elapsed_s", "gpu_hours", "gpu_util")
GPU_CURVES = {  # what the nodes sampled -> its curve's title
    "util": "GPU utilisation, % (mean of the run's GPUs)",
    "mem_used_mb": "GPU memory used, MB (the most any of the run's GPUs held)",
}
FILTERED = 30  # a swept key with more distinct values than this gets no filter


def run_source(runs: pd.DataFrame, keys: Sequence[str], objective: str | None) -> ColumnDataSource:
    """A row per run: id, state, swept values, its figures and final values; each swept
    value also as text (`cat:<key>`) for the filters and the spreads."""
    shown = [*keys, *(c for c in TABLE_COLUMNS if c in runs)]
    shown += [c for c in runs.columns if c.startswith(("best.", "final."))]
    shown += [objective] if objective is not None else []
    data: dict[str, Any] = {"run_id": [str(r) for r in runs.index]}
    for name in dict.fromkeys(shown):
        values = params.scalars(runs[name])
        numeric = pd.api.types.is_numeric_dtype(values)
        data[name] = values.astype(float).to_numpy() if numeric else params.text(values).to_list()
    for key in keys:
        data[f"cat:{key}"] = params.text(runs[key]).to_list()
    if objective is not None and keys:
        data |= params.parallel_lines(runs, keys, objective)
    return ColumnDataSource(data, name="runs")


Curve = tuple[np.ndarray, np.ndarray]  # x, y


def script_curves(metrics: pd.DataFrame, name: str) -> dict[str, Curve]:
    """Each run's curve of the metric `name`, by step (by line when it has no step)."""
    rows = metrics[metrics["name"] == name]
    curves = {}
    for run_id, group in rows.groupby("run_id", observed=True, sort=False):
        x = group["step"].astype("float64").to_numpy(na_value=np.nan)
        if np.isnan(x).all():
            x = np.arange(len(group), dtype=float)
        order = np.argsort(x, kind="stable")
        curves[str(run_id)] = (x[order], group["value"].to_numpy(float)[order])
    return curves


def curve_source(
    runs: pd.Index, curves: dict[str, Curve], points: int, name: str
) -> ColumnDataSource:
    """Every run's curve (an empty one for a run without it), thinned, in the runs
    table's order: row i is run i, so selections line up (and the hover finds the run's
    id and swept values in the runs' source); with its last point, a dot, which a curve
    of one point needs to be seen."""
    nothing = (np.array([], dtype=np.float32),) * 2
    xs, ys = [], []
    for run_id in runs:
        x, y = curves.get(str(run_id), nothing)
        tx, ty = thin(x, y, points)
        xs.append(tx.astype(np.float32))
        ys.append(ty.astype(np.float32))
    data: dict[str, Any] = {"xs": xs, "ys": ys}
    data["x_end"] = np.array([x[-1] if len(x) else np.nan for x in xs], dtype=np.float32)
    data["y_end"] = np.array([y[-1] if len(y) else np.nan for y in ys], dtype=np.float32)
    return ColumnDataSource(data, name=f"curve:{name}")


def run_hover(source: ColumnDataSource, keys: Sequence[str]) -> CustomJSHover:
    """A hover field for a curve's row: its run's id (format `run`) or the value of its
    swept key number N (format `N`), from the runs' source: a curve source repeating
    them would take more of the page than the curves."""
    code = """
        const field = format == "run" ? "run_id" : "cat:" + keys[Number(format)]
        return String(runs.data[field][special_vars.index])
    """
    return CustomJSHover(args={"runs": source, "keys": list(keys)}, code=code, name="run-hover")


def curve_tabs(
    source: ColumnDataSource, name: str, keys: Sequence[str], hover: CustomJSHover, x: str
) -> Tabs:
    """The metric's curves on a linear and a log axis, one data source for both."""
    tips = [("run", "@x_end{run}"), (x, "$x{0}" if x == "step" else "$x{0.0}"), ("value", "$y")]
    tips += [(key, f"@x_end{{{i}}}") for i, key in enumerate(keys)]
    panels = []
    for scale in ("linear", "log"):
        fig = figure(
            height=280,
            sizing_mode="stretch_width",
            title=name,
            y_axis_type=scale,
            tools="pan,wheel_zoom,box_zoom,reset,tap,save",
        )
        fig.multi_line(
            "xs",
            "ys",
            source=source,
            line_width=1,
            line_alpha=0.5,
            selection_line_color="crimson",
            selection_line_width=2,
            nonselection_line_alpha=0.08,
        )
        fig.scatter(
            "x_end",
            "y_end",
            source=source,
            size=4,
            alpha=0.6,
            selection_color="crimson",
            nonselection_alpha=0.08,
        )
        fig.add_tools(HoverTool(tooltips=tips, formatters={"@x_end": hover}))
        fig.xaxis.axis_label = x
        panels.append(TabPanel(child=fig, title=scale))
    return Tabs(tabs=panels, sizing_mode="stretch_width")


def run_filters(source: ColumnDataSource, keys: Sequence[str]) -> tuple[list[MultiChoice], CDSView]:
    """A choice of states and of each swept key's values, and the table's view of the
    runs that pass them all."""
    choices, fields = [], []
    for field in ["state", *(f"cat:{k}" for k in keys)]:
        values = params.ordered(pd.Series(source.data[field]))
        if field != "state" and len(values) > FILTERED:
            continue
        title = field.removeprefix("cat:")
        options: list[str | tuple[str, str]] = list(values)
        choices.append(
            MultiChoice(title=title, options=options, value=values, name=f"filter:{title}")
        )
        fields.append(field)
    keep = BooleanFilter(booleans=[True] * len(source.data["run_id"]), name="kept")
    code = """
        const n = source.data.run_id.length
        keep.booleans = Array.from({length: n}, (_, i) =>
            choices.every((c, j) => c.value.includes(String(source.data[fields[j]][i]))))
        source.change.emit()
    """
    update = CustomJS(
        args={"source": source, "keep": keep, "choices": choices, "fields": fields}, code=code
    )
    for choice in choices:
        choice.js_on_change("value", update)
    return choices, CDSView(filter=keep)


def table_column(name: str, values: object) -> TableColumn:
    """Numbers to 4 decimal places at most, text as it is; as wide as its first values."""
    longest = max([len(name), *(len(str(v)) for v in values[:200])])  # type: ignore[index]
    width = max(60, min(240, 8 * longest + 12))  # wide tables scroll inside the table
    if isinstance(values, np.ndarray):
        number = NumberFormatter(format="0.[0000]")
        return TableColumn(field=name, title=name, formatter=number, width=width)
    return TableColumn(field=name, title=name, width=width)


def runs_table(source: ColumnDataSource, view: CDSView) -> DataTable:
    shown = [str(c) for c in source.data if not str(c).startswith(("cat:", "px", "py"))]
    return DataTable(
        source=source,
        view=view,
        columns=[table_column(c, source.data[c]) for c in shown],
        sortable=True,
        reorderable=False,  # Bokeh's reordering needs jquery-ui, which it does not inline
        selectable="checkbox",
        name="table",
        sizing_mode="stretch_width",
        height=min(420, 60 + 26 * len(source.data["run_id"])),
        autosize_mode="none",
    )


def blank(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def failures(errors: pd.DataFrame, runs: pd.DataFrame) -> Div:
    """The errors grouped by kind, and the runs a search pruned: each group's runs, with
    node, rank and message, and the lines that matter: the traceback's end, or the log's
    last lines (Slurm's own, or where the run stalled)."""
    pruned = runs[runs["state"] == runstate.PRUNED]
    if not pruned.empty:
        stopped = pd.DataFrame(
            {
                "run_id": pruned.index.astype(str),
                "node": None,
                "rank": None,
                "kind": runstate.PRUNED,
                "message": pruned["reason"].fillna("") if "reason" in pruned else "",
                "traceback": "",
                "tail": "",
            }
        )
        errors = pd.concat([errors, stopped], ignore_index=True)
    if errors.empty:
        return Div(text="<h2>What went wrong</h2><p>nothing</p>")
    parts = ["<h2>What went wrong</h2>"]
    for kind, group in errors.groupby("kind", sort=True):
        parts.append(
            f"<details open><summary><b>{html.escape(str(kind))}</b>: "
            f"{group['run_id'].nunique()} run(s)</summary><table>"
            "<tr><th>run</th><th>node</th><th>rank</th><th>message</th></tr>"
        )
        for row in group.itertuples():
            where = [html.escape(blank(v)) for v in (row.node, row.rank)]
            lines = blank(row.traceback) or blank(row.tail)
            parts.append(
                f"<tr><td>{html.escape(str(row.run_id))}</td><td>{where[0]}</td><td>{where[1]}"
                f"</td><td>{html.escape(str(row.message))}"
                + (f"<pre>{html.escape(lines[-1500:])}</pre>" if lines else "")
                + "</td></tr>"
            )
        parts.append("</table></details>")
    return Div(text="".join(parts), sizing_mode="stretch_width", name="failures")


def curve_panels(tables: Tables, source: ColumnDataSource, keys: Sequence[str]) -> list[UIElement]:
    """The curves, a panel each for training, evaluation and system metrics; the GPU
    samples' on the system panel, over the minutes since each run's first sample."""
    hover = run_hover(source, keys)
    scripts = tables.metrics[~from_samples(tables.metrics)]
    names = list(dict.fromkeys(scripts["name"].astype(str)))
    gpu = {title: over_time(tables.metrics, what) for what, title in GPU_CURVES.items()}
    gpu = {title: curves for title, curves in gpu.items() if curves}
    count = len(tables.runs) * max(len(names) + len(gpu), 1)
    points = points_per_curve(count, CURVE_BUDGET_BYTES)
    found: list[UIElement] = []
    for kind in kinds.PANELS:
        mine = [(n, script_curves(scripts, n)) for n in names if kinds.panel(n) == kind]
        mine += list(gpu.items()) if kind == kinds.SYSTEM else []
        if not mine:
            continue
        found.append(Div(text=f"<h2>{kind.capitalize()} curves</h2>"))
        for name, curves in mine:
            curve = curve_source(tables.runs.index, curves, points, name)
            source.selected.js_link("indices", curve.selected, "indices")
            x = "step" if name not in gpu else "minutes since the run's first sample"
            found.append(curve_tabs(curve, name, keys, hover, x))
    return found


def write_page(tables: Tables, path: Path, title: str, objective: str | None = None) -> Path:
    """Writes the interactive report to `path`; returns it. `objective`: the column runs
    are judged by (default: the first final evaluation value)."""
    runs = tables.runs
    keys = swept_keys(runs)
    if objective is not None and objective not in runs:
        raise ConfigError(f"--objective {objective}: the runs table has no such column")
    judged = params.objective_of(runs, objective)
    source = run_source(runs, keys, judged)
    cost = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(summary(runs)))
    parts: list[UIElement] = [Div(text=f"<h1>{html.escape(title)}</h1><h2>Cost</h2>{cost}")]
    if keys and judged is not None:
        parts.append(Div(text="<h2>Which hyperparameters matter</h2>"))
        parts.append(params.parallel_plot(source, runs, keys, judged))
        parts.append(params.spread_plots(source, runs, keys, judged))
    choices, view = run_filters(source, keys)
    parts += [Div(text="<h2>Runs</h2>"), *choices, runs_table(source, view)]
    parts += curve_panels(tables, source, keys)
    parts.append(failures(tables.errors, runs))
    page = column(*parts, sizing_mode="stretch_width")
    write_atomic(path, file_html(page, INLINE, title))
    return path
