"""compare(): per-group summaries and paired differences against a baseline, with bootstrap intervals.

Which way is better is the metric's declared direction, read through Metric.goodness only: `gain`
is the paired difference in that direction (above 0: better than the baseline; for a target metric
such as temporal_consistency_rel, nearer its target), and `rank` orders the groups by it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cell_fields import GROUPABLE as _GROUPABLE
from ..cell_fields import PAIR_KEYS as _PAIR_KEYS
from ..errors import InputError
from ..metrics.base import metric_of
from .reader import load_runs, option_columns
from .schema import STATUS_SUCCEEDED

__all__ = ["COLUMNS", "GROUPABLE", "PAIR_KEYS", "bootstrap_ci", "compare", "compare_frame", "groupable", "pair_keys"]

# Two cells pair when they agree on these and on every model option both their groups set (pair_keys).
PAIR_KEYS = _PAIR_KEYS
# The design columns every study has; a study's option columns (duration, mode...) join them (groupable).
GROUPABLE = _GROUPABLE
# compare_frame's columns. diff: paired difference of the raw values (mine minus baseline); gain: the
# same in the metric's direction, above 0 is better; rank: 1 for the group best in that direction.
COLUMNS = ("group", "n", "mean", "std", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high", "pairs",
           "gain", "gain_ci_low", "gain_ci_high", "rank")


def groupable(df: pd.DataFrame) -> list[str]:
    """The columns `by` may name for these runs: the fixed design columns and the model options
    some run set (load_runs gives an option a column only then)."""
    return [*GROUPABLE, *option_columns(df)]


def pair_keys(base: pd.DataFrame, other: pd.DataFrame, by: str) -> list[str]:
    """What a cell of `other` must share with a cell of `base` to pair with it: PAIR_KEYS, and each
    model option both groups set (cells with another duration or mode are not a pair). An option
    only one side sets (seedance2's duration against gen4_aleph, which has none) cannot be matched:
    that side's cells are averaged over it, as they are over any column that is not a key."""
    keys = [k for k in PAIR_KEYS if k in base.columns and k != by]
    return keys + [c for c in option_columns(base) if c != by and base[c].notna().any() and other[c].notna().any()]


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def compare_frame(df: pd.DataFrame, by: str = "model", metric: str = "ssim_source",
                  baseline: str | None = None, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The same as compare() on a DataFrame from load_runs (so it can be tested on known data)."""
    if by not in df.columns or by not in groupable(df):
        raise InputError("by", by, ", ".join(c for c in groupable(df) if c in df.columns))
    if metric not in df.columns:
        raise InputError("metric", metric, ", ".join(c for c in df.columns if df[c].dtype.kind == "f"))
    data = df[df["status"].fillna(STATUS_SUCCEEDED) == STATUS_SUCCEEDED] if "status" in df.columns else df
    data = data[np.isfinite(data[metric].astype(float))]
    groups = sorted(data[by].dropna().astype(str).unique())
    if not groups:
        return pd.DataFrame(columns=list(COLUMNS))
    baseline = str(baseline) if baseline is not None else groups[0]
    if baseline not in groups:
        raise InputError("baseline", baseline, ", ".join(groups))
    declared = metric_of(metric)
    # Each cell's value read in the metric's direction (a column with none declared has no gain or rank).
    good = declared.goodness(data[metric].astype(float)) if declared else np.nan
    data = data.assign(_group=data[by].astype(str), _good=good)
    base_rows = data[data["_group"] == baseline]
    rows = []
    for g in groups:
        mine_rows = data[data["_group"] == g]
        vals = mine_rows[metric].astype(float).to_numpy()
        lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=seed)
        row = {"group": g, "n": len(vals), "mean": float(np.mean(vals)),
               "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "ci_low": lo, "ci_high": hi,
               "_good": float(mine_rows["_good"].mean())}
        keys = pair_keys(base_rows, mine_rows, by)
        diffs = _paired_diffs(base_rows, mine_rows, keys, metric)
        row["pairs"] = len(diffs)
        for name, paired in (("diff", diffs), ("gain", _paired_diffs(base_rows, mine_rows, keys, "_good"))):
            row.update(_paired_summary(name, paired, g == baseline, n_boot, seed))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["rank"] = out["_good"].rank(ascending=False, method="min")  # 1 = best; NaN with no direction
    return out[list(COLUMNS)]


def _paired_summary(name: str, paired: np.ndarray, is_baseline: bool, n_boot: int, seed: int) -> dict[str, float]:
    """The mean of paired differences and its interval: 0 (no interval) for the baseline against
    itself, NaN without pairs (or without a declared direction, for the gain)."""
    finite = paired[np.isfinite(paired)]
    if len(finite) == 0 or is_baseline:
        return {name: 0.0 if len(finite) else float("nan"), f"{name}_ci_low": float("nan"),
                f"{name}_ci_high": float("nan")}
    lo, hi = bootstrap_ci(finite, n_boot=n_boot, seed=seed)
    return {name: float(finite.mean()), f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def _paired_diffs(base: pd.DataFrame, mine: pd.DataFrame, keys: list[str], metric: str) -> np.ndarray:
    """mine minus base over the key values both hold (each side's cells of one key averaged)."""
    theirs = base.groupby(keys, dropna=False)[metric].mean()
    ours = mine.groupby(keys, dropna=False)[metric].mean()
    shared = ours.index.intersection(theirs.index)
    return (ours.loc[shared] - theirs.loc[shared]).to_numpy(dtype=float)


def compare(experiment: str, by: str = "model", metric: str = "ssim_source", baseline: str | None = None, *,
            tracking_uri: str | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group: n, mean, std and a 95% bootstrap interval of the mean; the mean paired difference
    against the baseline over shared (video, prompt, seed, ratio, repeat and options) cells, with its 95%
    interval, raw (`diff`) and in the metric's declared direction (`gain`, above 0 is better); and the
    group's `rank` in that direction (1 is best). by: a design column or a model option some run set
    (duration, mode...)."""
    return compare_frame(load_runs(experiment, tracking_uri=tracking_uri), by, metric, baseline,
                         n_boot=n_boot, seed=seed)
