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
        return df[self.mask(df)]

    def mask(self, df: pd.DataFrame, columns: FactorizedColumns | None = None) -> np.ndarray:
        """Which rows of `df` the filter keeps. Each test runs on a column's distinct values (a
        study of 100,000 runs has a few models, ratios and prompts), then maps back to the rows
        through their codes; `columns` keeps those codes across calls on the same frame."""
        columns = columns or FactorizedColumns(df)
        keep = np.ones(len(df), dtype=bool)
        for col, allowed in (*self._kept(), ("status", self.statuses)):
            if allowed:
                keep &= columns.rows_where(col, lambda values, allowed=allowed: values.isin(allowed))
        for col, texts in self.options.items():
            if texts and col in df.columns:
                keep &= columns.rows_where(col, lambda values, texts=texts: values.astype("string").isin(texts))
        if self.prompt_contains:
            needle = self.prompt_contains
            keep &= columns.rows_where("prompt", lambda values: values.fillna("").str.contains(
                needle, case=False, regex=False))
        for metric, (lo, hi) in self.metric_ranges.items():
            if metric in df.columns:
                values = df[metric].astype(float)
                keep &= (values.between(lo, hi) | values.isna() & (lo == -np.inf)).to_numpy()
        return keep

    def key(self) -> tuple[Any, ...]:
        """The filter's settings as one hashable value (a view model keeps the rows it kept)."""
        return (self.models, self.ratios, self.seeds, self.statuses, self.prompt_contains,
                tuple(sorted(self.metric_ranges.items())), tuple(sorted(self.options.items())))


class FactorizedColumns:
    """A frame's columns as (codes, distinct values), made once per column when first asked."""

    def __init__(self, df: pd.DataFrame):
        self.df = df
        self._columns: dict[str, tuple[np.ndarray, pd.Series]] = {}

    def rows_where(self, column: str, test: Any) -> np.ndarray:
        """test(distinct values) -> a boolean per distinct value, spread to the rows. A missing
        value (NA) is one of the distinct values, so test answers for it as it would on the rows."""
        if column not in self._columns:
            codes, uniques = pd.factorize(self.df[column], use_na_sentinel=False)
            self._columns[column] = (codes, pd.Series(uniques, dtype=self.df[column].dtype))
        codes, uniques = self._columns[column]
        return np.asarray(test(uniques), dtype=bool)[codes]


class RunsViewModel:
    """Runs of one experiment, a filter, a sort order and a selected run.

    Made for studies of 100,000 runs: a column's distinct values, each sort order and the row of
    each run id are worked out once and kept, so a filter, a sort or a selection costs a few
    array operations, not a sort or a scan of every run."""

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
        self._columns = FactorizedColumns(runs)
        self._orders: dict[tuple[str | None, bool], np.ndarray] = {}
        self._kept_rows: tuple[tuple[Any, ...], np.ndarray] | None = None
        self._rows: dict[str, int] | None = None
        at = TABLE_COLUMNS.index("model") + 1  # a model's own fields beside it, as the grid has them
        shown = [*TABLE_COLUMNS[:at], *self.option_columns, *TABLE_COLUMNS[at:]]
        self._shown = runs[["run_id", *[c for c in shown if c in runs.columns]]]

    def options(self, column: str) -> list:
        if column not in self.runs.columns:
            return []
        return sorted(v for v in self.runs[column].dropna().unique().tolist())

    def _sort_keys(self) -> list[str]:
        if self.sort_by == GRID_ORDER:
            grid = ("model", *self.option_columns, "prompt", "seed", "ratio", "repeat")
            return [c for c in grid if c in self.runs.columns]
        return [self.sort_by] if self.sort_by and self.sort_by in self.runs.columns else []

    def _order(self) -> np.ndarray:
        """Row positions of every run in the chosen order. Sorting is stable, so the rows a filter
        keeps, taken in this order, are in the order a sort of those rows alone gives."""
        key = (self.sort_by, self.ascending)
        if key not in self._orders:
            keys = self._sort_keys()
            positions = self.runs.reset_index(drop=True)
            self._orders[key] = (positions.sort_values(keys, ascending=self.ascending, na_position="last",
                                                       kind="stable").index.to_numpy()
                                 if keys else np.arange(len(self.runs)))
        return self._orders[key]

    def _mask(self) -> np.ndarray:
        key = self.filter.key()
        if self._kept_rows is None or self._kept_rows[0] != key:
            self._kept_rows = (key, self.filter.mask(self.runs, self._columns))
        return self._kept_rows[1]

    def table(self) -> pd.DataFrame:
        order = self._order()
        kept = order[self._mask()[order]]
        return self._shown.iloc[kept].reset_index(drop=True)

    def select(self, run_id: str | None) -> pd.Series | None:
        if self._rows is None:
            self._rows = {}
            for i, rid in enumerate(self.runs["run_id"].tolist()):
                self._rows.setdefault(rid, i)  # the first row of a run id, as a filter on it finds
        if run_id is None or run_id not in self._rows:
            self.selected = None
            return None
        self.selected = run_id
        return self.runs.iloc[self._rows[run_id]]
