"""RunBrowser: pick an experiment, filter and sort its runs, and look at one run's source, output and numbers."""

from __future__ import annotations

import os

import ipywidgets as w
import pandas as pd

from .._env import env_url
from ..metrics import metric_names
from ..metrics.base import metric_of
from ..tracking.reader import existing_experiments, load_artifact, load_runs, load_series, option_columns
from ..tracking.schema import ARTIFACT_CONTACT_SHEET, ARTIFACT_FRAMES
from .charts import axis_title, series_charts
from .choices import FILTER_CHOICES, ChoiceFilter
from .markup import esc
from .outputs import playable_output
from .run_table import RunTable
from .thumbnails import thumbnail
from .viewmodel import GRID_ORDER, RunsViewModel

__all__ = ["FILTER_CHOICES", "METRICS", "TABLE_ROWS", "RunBrowser"]

METRICS = metric_names(headline_only=True)


TABLE_ROWS = 200
SHEET_WIDTH = 1100  # px: the contact sheet as it is shown


def _table_html(df: pd.DataFrame, selected: str | None, limit: int = TABLE_ROWS) -> str:
    if df.empty:
        return "<p><i>no runs match</i></p>"
    rows = []
    shown = [c for c in df.columns if c != "run_id"]
    for run_id, *values in df.head(limit)[["run_id", *shown]].itertuples(index=False, name=None):
        mark = ' style="background:#fff3c4"' if run_id == selected else ""
        cells = "".join(f"<td>{esc(_fmt(v))}</td>" for v in values)
        rows.append(f"<tr{mark} data-run='{esc(run_id)}'>{cells}</tr>")
    head = "".join(f"<th{_direction_title(c)}>{esc(axis_title(c))}</th>" for c in df.columns if c != "run_id")
    more = f"<p>{len(df) - limit} more</p>" if len(df) > limit else ""
    return f"<table class='v2v-runs'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _direction_title(column: str) -> str:
    """A metric column's header says which way is better, on hover too."""
    m = metric_of(column)
    return f" title='{esc(m.describe())}'" if m else ""


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


class RunBrowser(w.VBox):
    def __init__(self, experiment: str | None = None, *, tracking_uri: str | None = None,
                 mlflow_ui_url: str | None = None):
        self.tracking_uri = tracking_uri
        self.mlflow_ui_url = mlflow_ui_url or env_url("V2V_LAB_MLFLOW_UI")
        experiments = existing_experiments(tracking_uri) or []  # a store not there is not made by asking
        self.experiment = w.Dropdown(options=experiments, value=experiment if experiment in experiments else
                                     (experiments[0] if experiments else None), description="experiment")
        # Each filter's list of values, with a box to find one among more than FILTER_CHOICES (a
        # study of random seeds has one per run).
        self.choices = {col: ChoiceFilter(col) for col in ("model", "ratio", "seed", "status")}
        self.model, self.ratio, self.seed, self.status = (self.choices[c].select for c in self.choices)
        # One filter per model option the experiment varies (duration, audio...), made when it loads.
        self.option_filters: dict[str, w.SelectMultiple] = {}
        self.option_box = w.HBox()
        self.prompt = w.Text(description="prompt", placeholder="text in the prompt")
        # One range filter on a metric of your choice; its bounds follow the metric's values.
        self.range_metric = w.Dropdown(options=list(METRICS), value="ssim_source", description="range on")
        self.metric_range = w.FloatRangeSlider(value=(-1.0, 1.0), min=-1.0, max=1.0, step=0.001,
                                               description="", readout_format=".3f")
        self.sort = w.Dropdown(options=[GRID_ORDER, *METRICS, "seed", "model", "start_time"], value=GRID_ORDER,
                               description="sort by")
        self.descending = w.Checkbox(value=False, description="descending")
        self.shown = w.HTML()  # how many runs the filters keep, and what they are set to
        self.shown.add_class("v2v-filter-summary")
        # Videos side by side, half the row each; "larger" stacks them, each the row's width.
        self.larger = w.ToggleButton(value=False, description="larger videos", icon="expand")
        self.larger.observe(lambda _: self._size_videos(), "value")
        self.run = w.Dropdown(description="run", options=[])
        self.run.add_class("v2v-run-picker")  # stable hooks for browser tests
        self.table = RunTable()  # a row clicked selects its run, as the dropdown does
        self.detail = w.VBox()
        super().__init__([self.experiment,
                          w.HBox([choice.box for choice in self.choices.values()]), self.option_box,
                          w.HBox([self.prompt, self.range_metric, self.metric_range]),
                          w.HBox([self.sort, self.descending]), self.shown, self.table,
                          w.HBox([self.run, self.larger]), self.detail])
        self.vm = RunsViewModel(pd.DataFrame(columns=["run_id"]))
        self.experiment.observe(lambda _: self.load(), "value")
        for choice in self.choices.values():
            choice.observe(lambda _: self.refresh())
        for widget in (self.prompt, self.metric_range, self.sort, self.descending):
            widget.observe(lambda _: self.refresh(), "value")
        self.range_metric.observe(lambda _: self._reset_range(), "value")
        self.run.observe(lambda change: self.show(change["new"]), "value")
        self.table.observe(lambda change: self._pick(change["new"]), "selected")
        self.load()

    def load(self) -> None:
        name = self.experiment.value
        runs = load_runs(name, tracking_uri=self.tracking_uri) if name else pd.DataFrame(columns=["run_id"])
        self.show_runs(runs)

    def show_runs(self, runs: pd.DataFrame) -> None:
        """Browse these runs (load_runs' frame of the chosen experiment): filters listing their values."""
        self.vm = RunsViewModel(runs)
        for col, choice in self.choices.items():
            choice.fill(self.vm.options(col))
        self._option_filters()
        self._reset_range()

    def _option_filters(self) -> None:
        """A filter for each option this experiment varies; another experiment gets its own."""
        self.option_filters, boxes = {}, []
        for col in self.vm.option_columns:
            choice = ChoiceFilter(col)
            choice.fill(self.vm.options(col))
            choice.observe(lambda _: self.refresh())
            self.option_filters[col] = choice.select
            boxes.append(choice.box)
        self.option_box.children = boxes

    def _reset_range(self) -> None:
        """Span the chosen metric's observed values (the full span means: no range filter)."""
        col = self.range_metric.value
        values = self.vm.runs[col].dropna() if col in self.vm.runs.columns else None
        lo, hi = (float(values.min()), float(values.max())) if values is not None and len(values) else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1e-3
        with self.metric_range.hold_trait_notifications():
            self.metric_range.min, self.metric_range.max = -1e9, 1e9  # widen first: min may not pass max
            self.metric_range.min, self.metric_range.max = lo, hi
            self.metric_range.value = (lo, hi)
        self.refresh()

    def refresh(self) -> None:
        f = self.vm.filter
        f.models, f.ratios, f.statuses = tuple(self.model.value), tuple(self.ratio.value), tuple(self.status.value)
        f.seeds = tuple(int(s) for s in self.seed.value)
        f.prompt_contains = self.prompt.value
        f.options = {col: tuple(widget.value) for col, widget in self.option_filters.items()}
        lo, hi = self.metric_range.value
        full = (lo, hi) == (self.metric_range.min, self.metric_range.max)
        f.metric_ranges = {} if full else {self.range_metric.value: (lo, hi)}
        self.vm.sort_by, self.vm.ascending = self.sort.value, not self.descending.value
        df = self._render_table()
        # The picker lists the rows the table shows: 10,000 options would weigh on every browser.
        labels = [(f"{r.model} s{r.seed} {r.status} {str(r.prompt)[:30]}", r.run_id)
                  for r in df.head(TABLE_ROWS).itertuples()]
        current = self.run.value
        if current not in {v for _, v in labels}:
            current = labels[0][1] if labels else None  # something to look at from the start: the first row
        self.run.options = [("-", None), *labels]
        self.run.value = current
        kept = f"{len(df)} of {len(self.vm.runs)} runs"
        what = f.describe()
        self.shown.value = f"<small>{esc(kept)}{' · ' + esc(what) if what else ' (no filter)'}</small>"

    def _pick(self, run_id: str) -> None:
        """A table row clicked: the table shows the picker's rows, so the run is among its options."""
        if run_id in {v for _, v in self.run.options}:
            self.run.value = run_id

    def _render_table(self) -> pd.DataFrame:
        df = self.vm.table()
        if self.vm.runs.empty:
            self.table.value = "<p><i>this experiment has no runs yet</i></p>"
        else:
            self.table.value = _table_html(df, self.vm.selected)
        return df

    def show(self, run_id: str | None) -> None:
        row = self.vm.select(run_id)
        self._render_table()  # highlight the selected run
        if row is None or run_id is None:
            self.detail.children = []
            return
        parts: list[w.Widget] = []
        status = f"<b>status</b> {esc(row.get('status'))}"
        failure = " ".join(str(row.get(k)) for k in ("failure_code", "failure") if row.get(k))
        if failure:
            status += f" &mdash; failure: {esc(failure)}"
        if self.mlflow_ui_url:
            link = f"{self.mlflow_ui_url.rstrip('/')}/#/experiments/{row.get('experiment_id')}/runs/{run_id}"
            status += f" &mdash; <a href='{esc(link)}' target='_blank'>open in MLflow</a>"
        parts.append(w.HTML(status))
        # Videos load only now, for the selected run: opening an experiment reads no video at all.
        videos = [_source_pane(row.get("source"))]
        output, why = playable_output(run_id, self.tracking_uri)
        if output is not None:
            videos.append(w.VBox([w.HTML("<b>output</b>"), _video(str(output))]))
        else:
            videos.append(w.HTML(f"<i>{esc(why)}</i>"))
        self.videos = w.HBox(videos, layout=w.Layout(width="100%"))
        self._size_videos()
        parts.append(self.videos)
        sheet = load_artifact(run_id, ARTIFACT_CONTACT_SHEET, tracking_uri=self.tracking_uri)
        if sheet is not None:  # full width below the videos: its time labels stay readable
            parts.append(w.VBox([w.HTML("<b>contact sheet</b> (source above, output below)"),
                                 # A JPEG at its display width: the sheet's PNG is about 1.8 MB, and a
                                 # widget's value is what a saved notebook and a page weigh.
                                 w.Image(value=thumbnail(sheet.read_bytes(), SHEET_WIDTH), format="jpeg",
                                         layout=w.Layout(width="100%", max_width=f"{SHEET_WIDTH}px"))]))
        params = {k: row.get(k) for k in ("model", "prompt", "seed", "ratio", "video", "provider", "task_id")}
        params |= {k: row.get(k) for k in option_columns(self.vm.runs) if not pd.isna(row.get(k))}  # what it set
        metrics = {axis_title(m): row.get(m) for m in metric_names() if m in row}
        parts.append(w.HTML("<table>" + "".join(f"<tr><td>{esc(k)}</td><td>{esc(_fmt(v))}</td></tr>"
                                                for k, v in {**params, **metrics}.items()) + "</table>"))
        parts.append(self._series(run_id))
        self.detail.children = parts

    def _size_videos(self) -> None:
        """Half the row each, side by side; or, with "larger videos", the row's width each, stacked."""
        box = getattr(self, "videos", None)
        if box is None:
            return
        larger = self.larger.value
        box.layout.flex_flow = "column" if larger else "row"
        for pane in box.children:
            pane.layout.width = "100%" if larger else "49%"
            pane.layout.margin = "0 1% 0 0"

    def _series(self, run_id: str) -> w.Widget:
        """Per-frame charts from frames.csv (one download, with the sampled times); runs logged
        without it fall back to the per-frame metric histories."""
        table = load_artifact(run_id, ARTIFACT_FRAMES, tracking_uri=self.tracking_uri)
        if table is not None:
            frames = pd.read_csv(table)
            # Every metric the run has a series of (temporal_consistency_rel too), not just the headline.
            series = {m: frames[m].dropna().tolist() for m in metric_names() if m in frames}
            return series_charts(series, frames["time_s"].tolist() if "time_s" in frames else None)
        return series_charts({m: load_series(run_id, m, tracking_uri=self.tracking_uri) for m in METRICS})


def _video(path: str) -> w.Video:
    """A looping player as wide as its pane (the pane's width is set by RunBrowser._size_videos)."""
    video = w.Video.from_file(path, autoplay=False, loop=True, layout=w.Layout(width="100%", height="auto"))
    video.add_class("v2v-video")
    return video


def _source_pane(source: object) -> w.Widget:
    if isinstance(source, str) and os.path.isfile(source):
        return w.VBox([w.HTML("<b>source</b>"), _video(source)])
    where = esc(source) if source else "not recorded"
    return w.HTML(f"<i>source video not on this machine ({where})</i>")
