"""power(): how many seeds (pairs) a comparison needs before anything is spent, read from a pilot
study: per comparison with the baseline, the paired standard deviation the pilot saw, the pairs
needed to detect a difference of `delta`, and what they cost at the catalog's prices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import stats
from ..cell_fields import MATCHED_ONLY
from ..errors import InputError
from ..metrics.base import metric_of
from ..tracking.comparison import pair_keys, pair_up, scored_runs
from ..tracking.reader import load_runs
from .budget import DOLLARS_PER_CREDIT

__all__ = ["POWER_COLUMNS", "power", "power_frame"]

# group: the compared group (None: a pilot of the baseline alone, see _one_group_row); pairs: the
# pilot's pairs; sd: the paired standard deviation; credits, dollars: what pairs_needed pairs cost.
POWER_COLUMNS = ("group", "baseline", "pairs", "sd", "pairs_needed", "credits", "dollars", "note")


def _cell_credits(rows: pd.DataFrame) -> float:
    """What one cell of these costs at the catalog's prices: the mean of the pilot's estimates
    (`credits_estimated`, the one price function's figure for each cell's own request), else of
    what the server charged."""
    for column in ("credits_estimated", "credits"):
        if column in rows.columns and rows[column].notna().any():
            return float(rows[column].astype(float).mean())
    return float("nan")


def _needed(sd: float, delta: float, power: float, alpha: float) -> float:
    return float(stats.pairs_needed(delta, sd, power=power, alpha=alpha)) if np.isfinite(sd) else float("nan")


def _priced(row: dict, per_pair: float) -> dict:
    row["credits"] = row["pairs_needed"] * per_pair
    row["dollars"] = row["credits"] * DOLLARS_PER_CREDIT
    return row


def _pair_row(g: str, mine: pd.DataFrame, base: pd.DataFrame, baseline: str, by: str, delta: float, power: float,
              alpha: float) -> dict:
    pairing = pair_up(base, mine, by, ["_good"], baseline)
    diffs = pairing.diffs["_good"].to_numpy(dtype=float)
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")
    note = pairing.why_not or ("" if len(diffs) > 1 else "fewer than 2 pairs: no paired sd to plan from")
    row = {"group": g, "baseline": baseline, "pairs": len(diffs), "sd": sd,
           "pairs_needed": _needed(sd, delta, power, alpha), "note": note}
    return _priced(row, _cell_credits(mine) + _cell_credits(base))


def _one_group_row(rows: pd.DataFrame, baseline: str, by: str, delta: float, power: float, alpha: float) -> dict:
    """A pilot of one group (a seed sweep): no pair to difference, so the paired sd is taken as
    sqrt(2) x its seed-to-seed sd (pooled within each design cell), as if another group's noise were
    as large and independent of it; a group that shares the seed's effect pairs tighter."""
    keys = [k for k in pair_keys(rows, rows, by) if k not in MATCHED_ONLY]
    good = rows["_good"].astype(float)
    residual = good - (good.groupby([rows[k] for k in keys], dropna=False).transform("mean") if keys else good.mean())
    cells = rows.groupby(keys, dropna=False).ngroups if keys else 1
    dof = len(rows) - cells
    seed_sd = float(np.sqrt((residual ** 2).sum() / dof)) if dof > 0 else float("nan")
    sd = math.sqrt(2) * seed_sd
    row = {"group": None, "baseline": baseline, "pairs": 0, "sd": sd, "pairs_needed": _needed(sd, delta, power, alpha),
           "note": f"one {by} only: sd is √2 × its seed-to-seed sd ({seed_sd:.4g} over {len(rows)} cells), another "
                   f"{by}'s noise assumed as large and independent; each pair priced as two of its cells"}
    return _priced(row, 2 * _cell_credits(rows))


def _check_plan(delta: float, power: float, alpha: float) -> None:
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
        raise InputError("delta", delta, "a difference above 0, in the metric's units")
    if not (isinstance(power, (int, float)) and 0 < power < 1):
        raise InputError("power", power, "a number between 0 and 1, such as 0.8")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError("alpha", alpha, "a number between 0 and 1, such as 0.05")


def power_frame(df: pd.DataFrame, by: str = "model", metric: str = "ssim_source", *, delta: float,
                power: float = 0.8, alpha: float = 0.05, baseline: str | None = None) -> pd.DataFrame:
    """The same as power() on a DataFrame from load_runs."""
    _check_plan(delta, power, alpha)
    data = scored_runs(df, by, metric, None, alpha)
    groups = sorted(data[by].dropna().astype(str).unique())
    if not groups:
        raise InputError("experiment", "(no succeeded run with a value of " + metric + ")",
                         "a pilot study with scored runs")
    baseline = str(baseline) if baseline is not None else groups[0]
    if baseline not in groups:
        raise InputError("baseline", baseline, ", ".join(groups))
    declared = metric_of(metric)
    # Differences read in the metric's direction, as compare() tests them.
    good = declared.goodness(data[metric].astype(float)) if declared else data[metric].astype(float)
    data = data.assign(_group=data[by].astype(str), _good=good)
    base = data[data["_group"] == baseline]
    others = [g for g in groups if g != baseline]
    rows = ([_pair_row(g, data[data["_group"] == g], base, baseline, by, delta, power, alpha) for g in others]
            or [_one_group_row(base, baseline, by, delta, power, alpha)])
    out = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    out["pairs_needed"] = out["pairs_needed"].astype("Int64")  # a count (NA where the pilot gives no sd)
    out.attrs.update(_settings(by, metric, delta, power, alpha))
    return out


def _settings(by: str, metric: str, delta: float, power: float, alpha: float) -> dict:
    method = (f"sd: the standard deviation of the pilot's paired differences in {metric} (in its declared direction), "
              f"pairs matched as compare() matches them. pairs_needed: the fewest pairs for a two-sided paired t-test "
              f"at alpha {alpha:g} to detect a mean difference of {delta:g} with power {power:g} (the noncentral t, "
              "integrated numerically with numpy), and never fewer than the sign-flip test compare() runs needs to "
              f"reach alpha at all ({stats.min_pairs_for(alpha)}). An sd from few pairs is itself uncertain. credits: "
              "pairs_needed x (one cell of the group + one of the baseline), each the mean of the pilot's "
              f"catalog estimates (credits_estimated); dollars at ${DOLLARS_PER_CREDIT:g} a credit.")
    return {"by": by, "metric": metric, "delta": delta, "power": power, "alpha": alpha, "method": method}


def power(experiment: str, by: str = "model", metric: str = "ssim_source", *, delta: float, power: float = 0.8,
          alpha: float = 0.05, baseline: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """Power planning from a pilot study: per comparison with the baseline (the first group unless
    named), the paired standard deviation of `metric` the pilot saw (`sd`), the number of seeds
    (pairs) needed to detect a difference of `delta` with this `power` at `alpha` (two-sided), and
    what those pairs cost in credits and dollars at the catalog's prices. A pilot of one group (a
    seed sweep) gives one row, group None, planned from its seed-to-seed spread. The method and the
    settings are in the frame's .attrs."""
    return power_frame(load_runs(experiment, tracking_uri=tracking_uri), by, metric, delta=delta, power=power,
                       alpha=alpha, baseline=baseline)
