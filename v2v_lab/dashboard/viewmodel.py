"""The widget-free state under the dashboards: filters, sorting, selection and the tables they derive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..cell_fields import FILTERS, TABLE_FIELDS
from ..metrics import metric_names
from ..tracking.reader import option_columns, varied_columns

__all__ = ["GRID_ORDER", "TABLE_COLUMNS", "RunFilter", "RunsViewModel"]

GRID_ORDER = "grid order"  # the sort that follows the study's design: model, options, prompt, seed, ratio

TABLE_COLUMNS = ("status", *TABLE_FIELDS, *metric_names(headline_only=True), "failure_code")


@dataclass
class RunFilter:
    models: tuple[str, ...] = ()
    ratios: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    prompt_contains: str = ""
    metric_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # A model option's column -> the values kept, as text ("5", "True", "2k": what a filter lists).
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def _kept(self) -> list[tuple[str, tuple[Any, ...]]]:
        """(column, the values kept) for each cell field the browser filters (cell_fields.FILTERS)."""
        return [(column, getattr(self, attr)) for column, attr in FILTERS]

    def describe(self) -> str:
        """What the filter keeps, as a person reads it ("model: aleph2, seedance2 · seed: 1")."""
        parts = [f"{name}: {', '.join(str(v) for v in values)}" for name, values in (
            *self._kept(), ("status", self.statuses), *self.options.items()) if values]
        if self.prompt_contains:
            parts.append(f"prompt contains {self.prompt_contains!r}")
        parts += [f"{m} in {lo:.4g}..{hi:.4g}" for m, (lo, hi) in self.metric_ranges.items()]
        return " · ".join(parts)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df
        for col, allowed in (*self._kept(), ("status", self.statuses)):
            if allowed:
                out = out[out[col].isin(allowed)]
        for col, texts in self.options.items():
            if texts and col in out.columns:
                out = out[out[col].astype("string").isin(texts)]
        if self.prompt_contains:
            out = out[out["prompt"].fillna("").str.contains(self.prompt_contains, case=False, regex=False)]
        for metric, (lo, hi) in self.metric_ranges.items():
            if metric in out.columns:
                values = out[metric].astype(float)
                out = out[values.between(lo, hi) | values.isna() & (lo == -np.inf)]
        return out


class RunsViewModel:
    """Runs of one experiment, a filter, a sort order and a selected run."""

    def __init__(self, runs: pd.DataFrame):
        self.runs = runs
        # The options this study varies (a filter and a column each); the same whatever is filtered.
        self.option_columns = varied_columns(runs, option_columns(runs))
        self.filter = RunFilter()
        # The grid's order (model, its options, prompt, seed...) by default: every cell of a sweep
        # starts at about the same time, so start time orders nothing a person looks for.
        self.sort_by: str | None = GRID_ORDER
        self.ascending = True
        self.selected: str | None = None

    def options(self, column: str) -> list:
        if column not in self.runs.columns:
            return []
        return sorted(v for v in self.runs[column].dropna().unique().tolist())

    def table(self) -> pd.DataFrame:
        df = self.filter.apply(self.runs)
        if self.sort_by == GRID_ORDER:
            keys = [c for c in ("model", *self.option_columns, "prompt", "seed", "ratio", "repeat") if c in df.columns]
            if keys:
                df = df.sort_values(keys, ascending=self.ascending, na_position="last", kind="stable")
        elif self.sort_by and self.sort_by in df.columns:
            df = df.sort_values(self.sort_by, ascending=self.ascending, na_position="last", kind="stable")
        at = TABLE_COLUMNS.index("model") + 1  # a model's own fields beside it, as the grid has them
        shown = [*TABLE_COLUMNS[:at], *self.option_columns, *TABLE_COLUMNS[at:]]
        cols = ["run_id", *[c for c in shown if c in df.columns]]
        return df[cols].reset_index(drop=True)

    def select(self, run_id: str | None) -> pd.Series | None:
        if run_id is None or run_id not in set(self.runs["run_id"]):
            self.selected = None
            return None
        self.selected = run_id
        return self.runs[self.runs["run_id"] == run_id].iloc[0]
