"""compare(): per-group summaries and paired differences against a baseline: intervals, a paired
permutation test, Holm's adjustment across the comparisons, an equivalence test, and a verdict.

Which way is better is the metric's declared direction, read through Metric.goodness only: `gain`
is the paired difference in that direction (above 0: better than the baseline; for a target metric
such as temporal_consistency_rel, nearer its target), and `rank` orders the groups by it.

A pair is one cell of a group and one of the baseline equal on every design factor but `by`
(cell_fields.PAIR_KEYS and the model options both set). Cells are never averaged into a pair: a
group whose cells differ in something that cannot be matched (seedance2's durations against a model
without one) has no pairs, and its `note` says which column to compare by or select on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats
from ..cell_fields import DESIGN_COLUMNS as _DESIGN_COLUMNS
from ..cell_fields import GROUPABLE as _GROUPABLE
from ..cell_fields import PAIR_COLUMNS as _PAIR_COLUMNS
from ..cell_fields import PAIR_KEYS as _PAIR_KEYS
from ..errors import InputError
from ..metrics.base import metric_of
from .reader import load_runs, option_columns
from .schema import STATUS_SUCCEEDED

__all__ = ["COLUMNS", "GROUPABLE", "PAIR_KEYS", "VERDICTS", "Pairing", "bootstrap_ci", "compare", "compare_frame",
           "groupable", "pair_keys", "pair_up", "scored_runs"]

# Two cells pair when they agree on each of these but `by` and on every model option both their groups set (pair_keys).
PAIR_KEYS = _PAIR_KEYS
# The design columns every study has; a study's option columns (duration, mode...) join them (groupable).
GROUPABLE = _GROUPABLE
# compare_frame's columns. diff: paired difference of the raw values (mine minus baseline); gain: the
# same in the metric's direction, above 0 is better; rank: 1 for the group best in that direction;
# p_value: the paired sign-flip test of no difference, p_holm: it adjusted across the comparisons
# (Holm); p_equiv, p_equiv_holm: the equivalence test within ±margin (TOST) and its adjustment;
# verdict: one of VERDICTS (or "baseline"); note: why a group has no pairs, or what its verdict rests on.
COLUMNS = ("group", "n", "mean", "std", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high", "pairs",
           "gain", "gain_ci_low", "gain_ci_high", "rank", "p_value", "p_holm", "p_equiv", "p_equiv_holm",
           "verdict", "note")
# better/worse: the Holm-adjusted test says the gain is not 0 (higher/lower for a metric without a
# declared direction); equivalent: the adjusted TOST says it lies within ±margin; else undecided.
VERDICTS = ("better", "worse", "equivalent", "undecided", "higher", "lower")


def groupable(df: pd.DataFrame) -> list[str]:
    """The columns `by` may name for these runs: the fixed design columns and the model options
    some run set (load_runs gives an option a column only then)."""
    return [*GROUPABLE, *option_columns(df)]


def _pair_column(factor: str, base: pd.DataFrame, other: pd.DataFrame) -> str | None:
    """The column a pair key is matched through: its pair_on column (video_sha, prompt_sha) where
    both sides hold it in every row, else its own column where the runs have it."""
    for column in _PAIR_COLUMNS[factor]:
        if column in base.columns and column in other.columns and (
                column == factor or (base[column].notna().all() and other[column].notna().all())):
            return column
    return None


def pair_keys(base: pd.DataFrame, other: pd.DataFrame, by: str) -> list[str]:
    """What a cell of `other` must share with a cell of `base` to pair with it: every pair key but
    `by` (model, seed, ratio, prompt, reference, video, repeat), and each model option both groups
    set (cells with another duration or mode are not a pair). An option only one side sets
    (seedance2's duration against gen4_aleph, which has none) cannot be matched: pair_up refuses
    that side when its cells differ in it."""
    keys = [c for c in (_pair_column(f, base, other) for f in PAIR_KEYS if f != by) if c is not None]
    return keys + [c for c in option_columns(base) if c != by and base[c].notna().any() and other[c].notna().any()]


@dataclass(frozen=True)
class Pairing:
    """The pairs of a group with the baseline: per pair, mine minus the baseline's in each compared
    column (`diffs`, one row a pair), the columns matched (`keys`), and why there are none (`why_not`)."""

    diffs: pd.DataFrame
    keys: list[str]
    why_not: str = ""


def _design_columns(frame: pd.DataFrame, by: str, keys: list[str]) -> list[str]:
    """The columns a design differs in, besides the keys and `by` (and the other column of each)."""
    matched = {by, *keys}
    for columns in _PAIR_COLUMNS.values():  # a factor matched through one of its columns is matched
        if matched & set(columns):
            matched |= set(columns)
    named = [*_DESIGN_COLUMNS, *(c for cols in _PAIR_COLUMNS.values() for c in cols), *option_columns(frame)]
    return [c for c in dict.fromkeys(named) if c in frame.columns and c not in matched]


def _varying(frame: pd.DataFrame, keys: list[str], by: str) -> list[str]:
    """The design columns whose values differ among cells that share every key (so they would be
    averaged into one pair). Cells equal in every design column are one cell measured again, and
    are averaged."""
    groups = frame.groupby(keys, dropna=False)
    if not (groups.size() > 1).any():
        return []
    return [c for c in _design_columns(frame, by, keys) if (groups[c].nunique(dropna=False) > 1).any()]


def pair_up(base: pd.DataFrame, mine: pd.DataFrame, by: str, columns: list[str], baseline: str = "the baseline",
            ) -> Pairing:
    """Pair `mine`'s cells with `base`'s one to one on pair_keys; the differences of `columns`."""
    keys = pair_keys(base, mine, by)
    empty = pd.DataFrame(columns=columns, dtype=float)
    if not keys:
        return Pairing(empty, keys, "no design column to pair on")
    for side, frame in (("its", mine), (f"{baseline}'s", base)):
        varying = _varying(frame, keys, by)
        if varying:
            return Pairing(empty, keys, f"not paired: {side} cells differ in {' and '.join(varying)} where the rest "
                                        f"of the design is equal (they would be averaged); compare by {varying[0]}, "
                                        "or keep one value of each")
    theirs = base.groupby(keys, dropna=False)[columns].mean()
    ours = mine.groupby(keys, dropna=False)[columns].mean()
    shared = ours.index.intersection(theirs.index)
    if len(shared) == 0:
        return Pairing(empty, keys, f"no cell shares {', '.join(keys)} with one of {baseline}'s")
    return Pairing(ours.loc[shared] - theirs.loc[shared], keys)


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


def scored_runs(df: pd.DataFrame, by: str, metric: str, margin: float | None = None, alpha: float = 0.05,
                ) -> pd.DataFrame:
    """The succeeded runs with a finite value of the metric, after every argument is checked."""
    if by not in df.columns or by not in groupable(df):
        raise InputError("by", by, ", ".join(c for c in groupable(df) if c in df.columns))
    if metric not in df.columns:
        raise InputError("metric", metric, ", ".join(c for c in df.columns if df[c].dtype.kind == "f"))
    if margin is not None and not (isinstance(margin, (int, float)) and np.isfinite(margin) and margin > 0):
        raise InputError("margin", margin, "a number above 0, in the metric's units")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError("alpha", alpha, "a number between 0 and 1, such as 0.05")
    data = df[df["status"].fillna(STATUS_SUCCEEDED) == STATUS_SUCCEEDED] if "status" in df.columns else df
    return data[np.isfinite(data[metric].astype(float))]


def compare_frame(df: pd.DataFrame, by: str = "model", metric: str = "ssim_source", baseline: str | None = None, *,
                  margin: float | None = None, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The same as compare() on a DataFrame from load_runs (so it can be tested on known data)."""
    data = scored_runs(df, by, metric, margin, alpha)
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
    rows = [_group_row(g, data[data["_group"] == g], base_rows, baseline, by, metric, margin, n_boot, seed)
            for g in groups]
    out = pd.DataFrame(rows)
    out["rank"] = out["_good"].rank(ascending=False, method="min")  # 1 = best; NaN with no direction
    out["p_holm"] = stats.holm(out["p_value"].to_numpy(dtype=float))
    out["p_equiv_holm"] = stats.holm(out["p_equiv"].to_numpy(dtype=float))
    out["verdict"] = [_verdict(r, baseline, alpha, declared is not None) for _, r in out.iterrows()]
    out = out[list(COLUMNS)]
    out.attrs["method"] = _method(by, baseline, metric, margin, alpha, n_boot, seed, declared is not None)
    return out


def _group_row(g: str, mine_rows: pd.DataFrame, base_rows: pd.DataFrame, baseline: str, by: str, metric: str,
               margin: float | None, n_boot: int, seed: int) -> dict:
    """One group's summary, its pairs with the baseline and their tests (p_holm and verdict come later)."""
    vals = mine_rows[metric].astype(float).to_numpy()
    lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=seed)
    row = {"group": g, "n": len(vals), "mean": float(np.mean(vals)),
           "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "ci_low": lo, "ci_high": hi,
           "_good": float(mine_rows["_good"].mean()), "p_value": np.nan, "p_equiv": np.nan, "note": ""}
    pairing = pair_up(base_rows, mine_rows, by, [metric, "_good"], baseline)
    diffs, gains = (pairing.diffs[c].to_numpy(dtype=float) for c in (metric, "_good"))
    row["pairs"] = len(diffs)
    row["note"] = "" if g == baseline else pairing.why_not
    for name, paired in (("diff", diffs), ("gain", gains)):
        row.update(_paired_summary(name, paired, g == baseline, n_boot, seed))
    # Tested in the metric's direction where it has one (a target metric: nearer the target), else raw.
    tested = gains if np.isfinite(gains).any() else diffs
    if g != baseline and len(tested):
        row["p_value"] = stats.sign_flip_p(tested, seed=seed)
        if margin is not None:
            row["p_equiv"] = stats.tost_p(tested, margin, seed=seed)
    return row


def _verdict(row: pd.Series, baseline: str, alpha: float, directed: bool) -> str:
    """The row's word: baseline; equivalent (the adjusted TOST below alpha: within the margin, even
    if also shown not to be 0); better or worse (higher or lower without a direction) when the
    adjusted test is below alpha; else undecided."""
    if row["group"] == baseline:
        return "baseline"
    if row["p_equiv_holm"] < alpha:
        return "equivalent"
    if row["p_holm"] < alpha:
        shift = row["gain"] if directed else row["diff"]
        return ("better" if shift > 0 else "worse") if directed else ("higher" if shift > 0 else "lower")
    return "undecided"


def _method(by: str, baseline: str, metric: str, margin: float | None, alpha: float, n_boot: int, seed: int,
            directed: bool) -> str:
    tested = "the gain (the difference in the metric's declared direction)" if directed else "the raw difference"
    equiv = (f"p_equiv: equivalence within ±{margin:g} (TOST: two one-sided sign-flip tests), p_equiv_holm its Holm "
             "adjustment; " if margin is not None else "no margin given: no equivalence test; ")
    return (f"{metric} by {by} against {baseline}. Pairs: one cell of a group and one of {baseline}'s equal on every "
            f"design factor but {by} ({', '.join(p for p in PAIR_KEYS if p != by)} and the model options both set); "
            "cells that would be averaged into a pair are not paired and the note says why. mean, diff and gain with "
            f"95% CI: percentile bootstrap of the mean ({n_boot} resamples, seed {seed}). p_value: paired sign-flip "
            f"permutation test of {tested} = 0, two-sided (exact up to {stats.EXACT_MAX_PAIRS} pairs, else "
            f"{stats.RESAMPLES} random sign patterns, seed {seed}; at least {stats.min_pairs_for(alpha)} pairs are "
            f"needed to reach {alpha:g}); p_holm: Holm-adjusted across the comparisons with {baseline}; {equiv}"
            f"verdict at alpha {alpha:g}: equivalent when p_equiv_holm < alpha, else better/worse when p_holm < "
            "alpha, else undecided.")


def _paired_summary(name: str, paired: np.ndarray, is_baseline: bool, n_boot: int, seed: int) -> dict[str, float]:
    """The mean of paired differences and its interval: 0 (no interval) for the baseline against
    itself, NaN without pairs (or without a declared direction, for the gain)."""
    finite = paired[np.isfinite(paired)]
    if len(finite) == 0 or is_baseline:
        return {name: 0.0 if len(finite) else float("nan"), f"{name}_ci_low": float("nan"),
                f"{name}_ci_high": float("nan")}
    lo, hi = bootstrap_ci(finite, n_boot=n_boot, seed=seed)
    return {name: float(finite.mean()), f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def compare(experiment: str, by: str = "model", metric: str = "ssim_source", baseline: str | None = None, *,
            margin: float | None = None, alpha: float = 0.05, tracking_uri: str | None = None, n_boot: int = 2000,
            seed: int = 0) -> pd.DataFrame:
    """Per group: n, mean, std and a 95% bootstrap interval of the mean; against the baseline, over
    pairs of cells equal on every design factor but `by` (a group that cannot be paired one to one
    has 0 pairs and a note, never an average): the mean paired difference with its 95% interval,
    raw (`diff`) and in the metric's declared direction (`gain`, above 0 is better), the sign-flip
    test's p-value and its Holm adjustment across the comparisons, with `margin=` an equivalence
    test (TOST), and a `verdict`: better, worse, equivalent or undecided; the group's `rank` in the
    metric's direction (1 is best). by: a design column or a model option some run set (duration,
    mode...). The method, in words, is in the frame's .attrs["method"]."""
    return compare_frame(load_runs(experiment, tracking_uri=tracking_uri), by, metric, baseline, margin=margin,
                         alpha=alpha, n_boot=n_boot, seed=seed)
