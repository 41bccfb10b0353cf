"""CompareView: prompts as rows, groups as columns, a poster per cell, and the summary with intervals."""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from ..errors import InputError
from ..metrics import metric_names
from ..tracking.compare import compare_frame
from ..tracking.reader import load_artifact, load_runs
from ..tracking.schema import ARTIFACT_OUTPUT, ARTIFACT_POSTER


class CompareView(w.VBox):
    def __init__(self, experiment: str, by: str = "model", *, metric: str = "ssim_source",
                 baseline: str | None = None, tracking_uri: str | None = None, seed: int | None = None):
        self.experiment, self.by, self.tracking_uri = experiment, by, tracking_uri
        self.runs = load_runs(experiment, tracking_uri=tracking_uri)
        groups = sorted(self.runs[by].dropna().astype(str).unique()) if by in self.runs else []
        self.metric = w.Dropdown(options=list(metric_names(headline_only=True)),
                                 value=metric, description="metric")
        scored = [g for g in groups if metric in self.runs and self.runs.loc[
            self.runs[by].astype(str) == g, metric].notna().any()]
        default = baseline if baseline in groups else (scored or groups or [None])[0]
        self.baseline = w.Dropdown(options=groups, value=default, description="baseline")
        self.summary = w.HTML()
        self.grid = w.GridBox()
        self.player = w.Output()
        self.scatter = w.HTML()
        super().__init__([w.HBox([self.metric, self.baseline]), self.summary, self.scatter, self.grid, self.player])
        self.metric.observe(lambda _: self.refresh(), "value")
        self.baseline.observe(lambda _: self.refresh(), "value")
        self.groups = groups
        self.build_grid(seed)
        self.refresh()

    def summary_table(self) -> pd.DataFrame:
        if self.runs.empty or self.baseline.value is None:
            return pd.DataFrame()
        return compare_frame(self.runs, self.by, self.metric.value, self.baseline.value)

    def refresh(self) -> None:
        try:
            table = self.summary_table()
        except InputError as exc:  # e.g. a baseline whose cells all failed: say so, never raise
            self.summary.value = f"<p><i>no comparison: {html.escape(str(exc))}</i></p>"
            self.scatter.value = _scatter(self.runs, self.by)
            return
        if table.empty:
            self.summary.value = "<p><i>no scored runs to compare</i></p>"
        else:
            self.summary.value = table.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")
        self.scatter.value = _scatter(self.runs, self.by)

    def build_grid(self, seed: int | None) -> None:
        df = self.runs
        if df.empty:
            self.grid.children = [w.HTML("<i>this experiment has no runs</i>")]
            return
        if seed is not None:
            df = df[df["seed"] == seed]
        # Rows are prompts; when the columns are prompts, rows are models.
        rows_by = "model" if self.by == "prompt" else "prompt"
        row_values = sorted(df[rows_by].dropna().astype(str).unique())
        cells: list[w.Widget] = [w.HTML("")] + [w.HTML(f"<b>{html.escape(g[:60])}</b>") for g in self.groups]
        for value in row_values:
            cells.append(w.HTML(html.escape(value[:60])))
            for g in self.groups:
                sub = df[(df[rows_by].astype(str) == value) & (df[self.by].astype(str) == g)]
                cells.append(self._cell(sub.iloc[0] if len(sub) else None))
        self.grid.layout = w.Layout(grid_template_columns=f"200px repeat({len(self.groups)}, 220px)")
        self.grid.children = cells

    def _cell(self, row) -> w.Widget:
        if row is None:
            return w.HTML("<i>no run</i>")
        poster = load_artifact(row["run_id"], ARTIFACT_POSTER, tracking_uri=self.tracking_uri)
        text = f"{row.get('status')}<br>ssim {row.get('ssim_source', float('nan')):.3f} · tc " \
               f"{row.get('temporal_consistency', float('nan')):.3f}"
        if poster is None:
            return w.HTML(f"<i>no output</i><br>{text}")
        button = w.Button(description="play", layout=w.Layout(width="200px"))
        run_id = row["run_id"]

        def play(_):
            video = load_artifact(run_id, ARTIFACT_OUTPUT, tracking_uri=self.tracking_uri)
            self.player.clear_output()
            if video is not None:
                self.player.append_display_data(w.Video.from_file(str(video), autoplay=True, loop=True, width=480))
        button.on_click(play)
        return w.VBox([w.Image(value=poster.read_bytes(), format="png", width=200), w.HTML(text), button])


def _scatter(df: pd.DataFrame, by: str) -> str:
    """ssim_source against temporal_consistency, one colour per group, as inline SVG."""
    need = {"ssim_source", "temporal_consistency", by}
    if df.empty or not need <= set(df.columns):
        return ""
    d = df.dropna(subset=["ssim_source", "temporal_consistency"])
    if d.empty:
        return ""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    groups = sorted(d[by].astype(str).unique())
    x0, x1 = d["ssim_source"].min(), d["ssim_source"].max()
    y0, y1 = d["temporal_consistency"].min(), d["temporal_consistency"].max()
    sx, sy = (x1 - x0) or 1, (y1 - y0) or 1
    dots = []
    for _, r in d.iterrows():
        c = palette[groups.index(str(r[by])) % len(palette)]
        x = 30 + (r["ssim_source"] - x0) / sx * 260
        y = 170 - (r["temporal_consistency"] - y0) / sy * 150
        dots.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{c}'/>")
    legend = "".join(f"<text x='300' y='{20 + 15 * i}' fill='{palette[i % len(palette)]}'>{html.escape(g)}</text>"
                     for i, g in enumerate(groups))
    return (f"<svg width='420' height='190'><text x='100' y='188'>ssim_source</text>"
            f"<text x='0' y='12'>temporal_consistency</text>{''.join(dots)}{legend}</svg>")
