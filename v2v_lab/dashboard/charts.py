"""Charts for the dashboards, drawn by bqplot: real axes with units, a hover label per point, clicks
back to Python. Chosen over plotly by bench/charts.py, in Voila under Chromium: 2,000 points drawn in
4.3 s against 9.6 s, and an executed notebook of 149 KB against 5.1 MB (plotly's widget carries its
4.8 MB script in every saved notebook)."""

from __future__ import annotations

from collections.abc import Callable

import bqplot as bq
import ipywidgets as w
import numpy as np
import pandas as pd

from ..metrics.base import metric_of
from .markup import esc

__all__ = ["PALETTE", "axis_label", "axis_title", "nice_ticks", "run_label", "scatter", "series_charts"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def axis_label(metric: str) -> str:
    """A metric's name with its range, unit and direction, as an axis title:
    "motion_epe (range 0..∞ px, lower is better)", "temporal_consistency_rel (range 0..∞, best at 1)"."""
    m = metric_of(metric)
    return f"{metric} ({m.describe()})" if m else metric


def run_label(row: pd.Series, metrics: tuple[str, ...]) -> str:
    """What hovering a point says about its run: model, prompt, seed, and the scores."""
    scores = " · ".join(f"{m} {row[m]:.3f}" for m in metrics if m in row and pd.notna(row[m]))
    return f"{row.get('model')} · seed {row.get('seed')} · {str(row.get('prompt'))[:60]} · {scores}"


def scatter(df: pd.DataFrame, x: str, y: str, by: str, on_click: Callable[[str], None],
            metrics: tuple[str, ...] = ()) -> w.Widget:
    """One colour per `by` group; the legend beside the plot (never over a point); a click on a point
    calls on_click with its run id."""
    need = {x, y, by, "run_id"}
    d = df.dropna(subset=[x, y]) if need <= set(df.columns) else df.iloc[0:0]
    if d.empty:
        return w.HTML(f"<i>no runs with both {esc(x)} and {esc(y)}</i>")
    groups = sorted(d[by].astype(str).unique())
    sx, sy = _padded(d[x]), _padded(d[y])
    marks = []
    legend = []
    for i, group in enumerate(groups):
        part = d[d[by].astype(str) == group]
        colour = PALETTE[i % len(PALETTE)]
        mark = bq.Scatter(x=part[x].to_numpy(float), y=part[y].to_numpy(float), scales={"x": sx, "y": sy},
                          colors=[colour], default_size=48, names=[run_label(r, metrics or (x, y))
                                                                   for _, r in part.iterrows()],
                          display_names=False, tooltip=bq.Tooltip(fields=["name"]),
                          interactions={"click": "select", "hover": "tooltip"})
        ids = part["run_id"].tolist()
        mark.on_element_click(lambda _mark, event, ids=ids: on_click(ids[event["data"]["index"]]))
        marks.append(mark)
        legend.append(f"<div><span style='color:{colour};font-size:1.4em'>●</span> {esc(group)}</div>")
    figure = bq.Figure(marks=marks, axes=[bq.Axis(scale=sx, label=axis_label(x), grid_lines="dashed"),
                                          bq.Axis(scale=sy, label=axis_label(y), orientation="vertical",
                                                  grid_lines="dashed", label_offset="50px")],
                       fig_margin={"top": 20, "bottom": 50, "left": 70, "right": 20},
                       layout=w.Layout(width="560px", height="380px"))
    figure.add_class("v2v-scatter")
    note = w.HTML("<b>" + esc(by) + "</b>" + "".join(legend) + "<p style='color:#666'>hover a point for its "
                  "run; click it to play</p>")
    return w.HBox([figure, note])


def axis_title(metric: str) -> str:
    """A metric's name with its direction: "flicker ↑", "piqe ↓", "temporal_consistency_rel (best at 1)"."""
    m = metric_of(metric)
    return f"{metric} {m.direction_mark()}" if m else metric


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering lo..hi (steps of 1, 2, 2.5 or 5 times a power of
    ten), the first at or below lo and the last at or above hi."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = np.floor(lo / step) * step, np.ceil(hi / step) * step
    return [float(round(v, 12)) for v in np.arange(first, last + step / 2, step)]


def _padded(values: pd.Series) -> bq.LinearScale:
    """A scale a little wider than the data, so no point sits on an axis or under the figure's toolbar."""
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.06 or abs(hi) * 0.05 or 0.05
    return bq.LinearScale(min=lo - pad, max=hi + pad)


def series_charts(series: dict[str, list[float]], times_s: list[float] | None = None) -> w.Widget:
    """Per-frame series, one small chart per metric on a shared x axis: a per-frame value sits at its
    frame, a value over two consecutive frames (n-1 of them) between them, so every line lines up."""
    n = max((len(v) for v in series.values()), default=0)
    charts: list[w.Widget] = []
    missing = []
    xs = np.asarray(times_s[:n], float) if times_s and len(times_s) >= n else np.arange(n, dtype=float)
    x_label = "time in the clip (s)" if times_s and len(times_s) >= n else "sampled frame"
    for name, values in series.items():
        if not values:
            missing.append(name)
            continue
        x = xs[: len(values)] if len(values) == n else (xs[:-1] + xs[1:])[: len(values)] / 2
        sx = bq.LinearScale(min=float(xs[0]) if n else 0.0, max=float(xs[-1]) if n else 1.0)
        y = np.asarray(values, float)
        ticks = nice_ticks(float(np.nanmin(y)), float(np.nanmax(y))) if np.isfinite(y).any() else [0.0, 1.0]
        sy = bq.LinearScale(min=ticks[0], max=ticks[-1])
        line = bq.Lines(x=x, y=y, scales={"x": sx, "y": sy}, marker="circle",
                        marker_size=16, colors=[PALETTE[0]],
                        tooltip=bq.Tooltip(fields=["x", "y"], formats=[".2f", ".4~g"], labels=["t", name]))
        charts.append(bq.Figure(marks=[line], title=axis_title(name),
                                axes=[bq.Axis(scale=sx, label=x_label, num_ticks=5),
                                      # Round values, in as many digits as they need: warp_error's 1e-4
                                      # reads 0.0001, not 0.000; piqe's ticks fall on 40, 45, 50.
                                      bq.Axis(scale=sy, orientation="vertical", tick_values=ticks,
                                              tick_format=".3~g")],
                                fig_margin={"top": 30, "bottom": 40, "left": 60, "right": 10},
                                layout=w.Layout(width="330px", height="200px")))
    out: list[w.Widget] = [w.GridBox(charts, layout=w.Layout(grid_template_columns="repeat(3, 340px)"))]
    if missing:
        out.append(w.HTML(f"<i>no per-frame series: {esc(', '.join(missing))}</i>"))
    return w.VBox(out)
