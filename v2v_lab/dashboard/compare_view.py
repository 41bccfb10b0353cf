"""CompareView: prompts as rows, groups as columns, a poster per cell, and the summary with intervals."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd

from ..errors import InputError
from ..metrics import metric_names
from ..metrics.base import metric_of
from ..tracking.comparison import compare_frame, groupable
from ..tracking.reader import load_artifact, load_runs
from ..tracking.schema import ARTIFACT_POSTER
from .charts import scatter
from .markup import esc
from .outputs import playable_output
from .thumbnails import thumbnail

__all__ = ["THUMB_WIDTH", "CompareView", "summary_html", "verdict"]

_SUMMARY_CSS = ("<style>.v2v-summary{border-collapse:collapse;font-size:13px;margin:6px 0}"
                ".v2v-summary caption{caption-side:bottom;text-align:left;color:#666;font-size:12px;padding-top:4px}"
                ".v2v-summary th,.v2v-summary td{padding:3px 10px;text-align:right;border:0;"
                "border-bottom:1px solid #ddd;vertical-align:top}.v2v-summary th{border-bottom:2px solid #999}"
                ".v2v-summary td:first-child,.v2v-summary th:first-child{text-align:left}"
                ".v2v-summary td.v2v-base{background:#f6f6f6}.v2v-summary small{display:block;color:#666;"
                "font-weight:400;max-width:28em;text-align:left}"
                ".v2v-better{color:#1a7f37;font-weight:600}.v2v-worse{color:#b00;font-weight:600}"
                ".v2v-equivalent{color:#0550ae;font-weight:600}.v2v-unclear{color:#666}</style>")

# The css class of each verdict compare_frame gives (tracking.comparison.VERDICTS, and the baseline's).
_VERDICT_CSS = {"better": "v2v-better", "worse": "v2v-worse", "equivalent": "v2v-equivalent"}


def verdict(row: pd.Series, baseline: str) -> tuple[str, str]:
    """(word, css class) for one group against the baseline: compare_frame's verdict (better or
    worse when the Holm-adjusted sign-flip test of the paired gain is below alpha, equivalent when
    the adjusted equivalence test is, else undecided), "baseline" for the baseline itself."""
    if str(row["group"]) == str(baseline):
        return "baseline", "v2v-unclear"
    word = str(row.get("verdict") or "undecided")
    return word, _VERDICT_CSS.get(word, "v2v-unclear")


def _num(v: Any) -> str:
    return "-" if v is None or pd.isna(v) else f"{float(v):.4g}"


def _p_text(v: Any) -> str:
    return "-" if v is None or pd.isna(v) else ("<0.001" if float(v) < 0.001 else f"{float(v):.3f}")


def _summary_row(r: pd.Series, baseline: str, margin: float | None) -> str:
    word, css = verdict(r, baseline)
    is_base = str(r["group"]) == str(baseline)
    diff = "-" if is_base or pd.isna(r["diff"]) else (
        f"{float(r['diff']):+.4g} [{_num(r['diff_ci_low'])}, {_num(r['diff_ci_high'])}]")
    note = str(r.get("note") or "")
    shown = esc(word) + (f"<small>{esc(note)}</small>" if note else "")
    equiv = f"<td>{'-' if is_base else _p_text(r.get('p_equiv_holm'))}</td>" if margin else ""
    base_css = " class='v2v-base'" if is_base else ""
    return (f"<tr><td{base_css}>{esc(r['group'])}</td><td>{int(r['n'])}</td>"
            f"<td>{_num(r['mean'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]</td><td>{esc(diff)}</td>"
            f"<td>{int(r['pairs'])}</td><td>{'-' if is_base else _p_text(r.get('p_holm'))}</td>{equiv}"
            f"<td class='{css}'>{shown}</td></tr>")


def summary_html(table: pd.DataFrame, by: str, metric: str, baseline: str | None, margin: float | None = None) -> str:
    """compare_frame's table as a person reads it: the metric with its direction, each group's mean
    with its 95% CI, its paired difference vs the baseline with its 95% CI, the pairs, the
    Holm-adjusted p-value (and the equivalence test's, with a margin), and the verdict, with the note
    that says why a group has no pairs. Every value from the store is escaped."""
    m = metric_of(metric)
    arrow = m.direction_mark() if m else ""
    base = esc(baseline)
    equiv_head = f"<th title='equivalence test within ±{margin:g}, Holm-adjusted'>p equiv. ±{margin:g}</th>" \
        if margin else ""
    head = (f"<tr><th>{esc(by)}</th><th>n</th><th title='{esc(m.describe() if m else metric)}'>"
            f"{esc(f'{metric} {arrow}'.strip())} mean [95% CI]</th><th>difference vs {base} [95% CI]</th>"
            f"<th>pairs</th><th title='paired sign-flip test, Holm-adjusted across the comparisons'>p vs {base} "
            f"(Holm)</th>{equiv_head}<th>verdict vs {base}</th></tr>")
    rows = "".join(_summary_row(r, str(baseline), margin) for _, r in table.iterrows())
    caption = (f"<caption>pairs: cells equal on every design factor but {esc(by)}; intervals: bootstrap 95% CI of "
               "the mean; p: paired sign-flip permutation test, Holm-adjusted across the comparisons "
               f"(table.attrs['method'] says it all)</caption>")
    return (f"{_SUMMARY_CSS}<table class='v2v-summary'>{caption}<thead>{head}</thead><tbody>{rows}</tbody>"
            "</table>")

THUMB_WIDTH = 320  # px on screen; the poster is scaled to this once, in Python, and sent as a JPEG


class CompareView(w.VBox):
    def __init__(self, experiment: str, by: str = "model", *, metric: str = "ssim_source",
                 baseline: str | None = None, margin: float | None = None, tracking_uri: str | None = None,
                 seed: int | None = None):
        self.experiment, self.by, self.tracking_uri, self.margin = experiment, by, tracking_uri, margin
        self.runs = load_runs(experiment, tracking_uri=tracking_uri)
        allowed = groupable(self.runs)
        if by not in allowed:
            raise InputError("by", by, ", ".join(allowed))
        self.metric = w.Dropdown(options=list(metric_names(headline_only=True)),
                                 value=metric, description="metric")
        # What the columns are: the design columns and the model options some run set (duration...).
        self.by_choice = w.Dropdown(options=[c for c in allowed if c == by or self.runs[c].notna().any()],
                                    value=by, description="by")
        groups = self._groups(by)
        self.baseline = w.Dropdown(options=groups, value=self._default_baseline(groups, baseline, metric),
                                   description="baseline")
        self.y_metric = w.Dropdown(options=list(metric_names(headline_only=True)), value="temporal_consistency",
                                   description="against")
        seeds = sorted(int(s) for s in self.runs["seed"].dropna().unique()) if "seed" in self.runs else []
        # The grid shows one seed at a time and names it; every seed is one click away.
        self.seed = w.Dropdown(options=seeds, value=seed if seed in seeds else (seeds[0] if seeds else None),
                               description="seed")
        self.summary = w.HTML()
        self.grid = w.GridBox()
        self.player = w.Output()
        self.scatter = w.Box()
        super().__init__([w.HBox([self.by_choice, self.metric, self.baseline]), self.summary, self.y_metric, self.scatter,
                          self.seed, self.grid, self.player])
        self.metric.observe(lambda _: self.refresh(), "value")
        self.baseline.observe(lambda _: self.refresh(), "value")
        self.y_metric.observe(lambda _: self._draw_scatter(), "value")
        self.seed.observe(lambda change: self.build_grid(change["new"]), "value")
        self.by_choice.observe(lambda change: self.set_by(change["new"]), "value")
        self.groups = groups
        self.build_grid(self.seed.value)
        self.refresh()

    def _groups(self, by: str) -> list[str]:
        return sorted(self.runs[by].dropna().astype(str).unique()) if by in self.runs else []

    def _default_baseline(self, groups: list[str], wanted: str | None, metric: str) -> str | None:
        """The baseline asked for, else the first group with a scored run, else the first group."""
        scored = [g for g in groups if metric in self.runs and self.runs.loc[
            self.runs[self.by].astype(str) == g, metric].notna().any()]
        if wanted in groups:
            return wanted
        return (scored or groups)[0] if groups else None

    def set_by(self, by: str) -> None:
        """Columns by another design column or option: groups, baseline, summary and grid follow."""
        self.by = by
        self.groups = self._groups(by)
        self.baseline.options = self.groups  # (a Dropdown takes a value only among its options)
        self.baseline.value = self._default_baseline(self.groups, None, self.metric.value)
        self.build_grid(self.seed.value)
        self.refresh()

    def summary_table(self) -> pd.DataFrame:
        if self.runs.empty or self.baseline.value is None:
            return pd.DataFrame()
        return compare_frame(self.runs, self.by, self.metric.value, self.baseline.value, margin=self.margin)

    def refresh(self) -> None:
        try:
            table = self.summary_table()
        except InputError as exc:  # e.g. a baseline whose cells all failed: say so, never raise
            self.summary.value = f"<p><i>no comparison: {esc(exc)}</i></p>"
        else:
            self.summary.value = ("<p><i>no scored runs to compare</i></p>" if table.empty else
                                  summary_html(table, self.by, self.metric.value, self.baseline.value, self.margin))
        self._draw_scatter()

    def _draw_scatter(self) -> None:
        headline = metric_names(headline_only=True)
        self.scatter.children = [scatter(self.runs, self.metric.value, self.y_metric.value, self.by, self.play,
                                         metrics=headline)]

    def play(self, run_id: str) -> None:
        """Play a run's output below the grid (a point or a cell clicked)."""
        video, why = playable_output(run_id, self.tracking_uri)
        self.player.outputs = ()  # the last video replaced (clear_output needs a kernel)
        row = self.runs[self.runs["run_id"] == run_id].iloc[0]
        title = w.HTML(f"<b>{esc(row.get(self.by))}</b> · seed {esc(row.get('seed'))} · "
                       f"{esc(str(row.get('prompt'))[:80])}")
        shown = (w.Video.from_file(str(video), autoplay=True, loop=True, width=480) if video is not None
                 else w.HTML(f"<i>{esc(why)}</i>"))
        self.player.append_display_data(w.VBox([title, shown]))

    def build_grid(self, seed: int | None) -> None:
        df = self.runs
        if df.empty:
            self.grid.children = [w.HTML("<i>this experiment has no runs</i>")]
            return
        if seed is not None and self.by != "seed":
            df = df[df["seed"] == seed]
        # Rows are prompts; when the columns are prompts, rows are models.
        rows_by = "model" if self.by == "prompt" else "prompt"
        row_values = sorted(df[rows_by].dropna().astype(str).unique())
        cells: list[w.Widget] = [w.HTML("")] + [w.HTML(f"<b>{esc(g[:60])}</b>") for g in self.groups]
        for value in row_values:
            cells.append(w.HTML(esc(value[:60])))
            for g in self.groups:
                sub = df[(df[rows_by].astype(str) == value) & (df[self.by].astype(str) == g)]
                cells.append(self._cell(sub.iloc[0] if len(sub) else None))
        self.grid.layout = w.Layout(grid_template_columns=f"200px repeat({len(self.groups)}, {THUMB_WIDTH + 20}px)")
        self.grid.children = cells

    def _cell(self, row) -> w.Widget:
        if row is None:
            return w.HTML("<i>no run</i>")
        poster = load_artifact(row["run_id"], ARTIFACT_POSTER, tracking_uri=self.tracking_uri)
        text = (f"seed {esc(row.get('seed'))} · {esc(row.get('status'))}<br>"
                f"ssim {row.get('ssim_source', float('nan')):.3f} · "
                f"tc {row.get('temporal_consistency', float('nan')):.3f}")
        if poster is None:
            return w.HTML(f"<i>no output</i><br>{text}")
        button = w.Button(description="play", layout=w.Layout(width=f"{THUMB_WIDTH}px"))
        run_id = row["run_id"]
        button.on_click(lambda _: self.play(run_id))
        return w.VBox([w.Image(value=thumbnail(poster.read_bytes(), THUMB_WIDTH), format="jpeg",
                               width=THUMB_WIDTH), w.HTML(text), button])
