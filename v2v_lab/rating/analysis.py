"""What the judgments say: Bradley-Terry strengths with bootstrap intervals, agreement between raters,
and how often each automatic metric orders a pair as the raters did.

All three take the judgments as load_ratings gives them (a DataFrame), so they run on a notebook's
copy, a colleague's export or a synthetic table alike; the `experiment` functions in rating/__init__
read the store and call these.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import InputError
from ..metrics.base import metric_of

__all__ = ["BT_METHOD", "bradley_terry", "metric_agreement_frame", "rank_frame", "rater_agreement_frame", "wilson"]

BOOTSTRAP = 1000
PRELIMINARY_BELOW = 10  # a group judged fewer times than this is marked preliminary
PRIOR_TIES = 0.5  # virtual tied comparisons between every two groups: keeps a group that never won finite
BT_METHOD = (f"Bradley-Terry, MM algorithm (Hunter 2004); a tie counts half a win to each side; "
             f"{PRIOR_TIES:g} virtual tie between every two groups; strengths scaled to geometric mean 1; "
             f"95% interval: percentile bootstrap over judgments ({BOOTSTRAP} resamples); skips left out; "
             f"rank = 1 + the number of groups clearly better (intervals apart); sorted by the interval's lower "
             f"bound; preliminary: fewer judgments than preliminary_below (default {PRELIMINARY_BELOW}); one plain fit over all judgments, however "
             f"the pairs were chosen")


def bradley_terry(wins: np.ndarray, iterations: int = 500, tol: float = 1e-9) -> np.ndarray:
    """Strengths from win matrices (..., G, G), wins[i, j] = how often i beat j; many at once.

    Hunter's MM update p_i <- W_i / sum_j n_ij / (p_i + p_j) on a stack of matrices, so a thousand
    bootstrap resamples fit in one vectorised loop (choix and friends fit one matrix per call).
    """
    g = wins.shape[-1]
    w = wins + PRIOR_TIES / 2 * (1 - np.eye(g))
    n = w + np.swapaxes(w, -1, -2)
    total_wins = w.sum(axis=-1)
    p = np.ones(wins.shape[:-1])
    for _ in range(iterations):
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = total_wins / denom
        new /= np.exp(np.log(new).mean(axis=-1, keepdims=True))
        if np.max(np.abs(new - p)) < tol:
            return new
        p = new
    return p


def _decided(ratings: pd.DataFrame, question: str | None) -> pd.DataFrame:
    df = ratings[ratings["choice"].isin(("left", "right", "tie"))]
    return df if question is None else df[df["question"] == question]


def rank_frame(ratings: pd.DataFrame, by: str = "model", question: str | None = None, *,
               bootstrap: int = BOOTSTRAP, seed: int = 0, preliminary_below: int = PRELIMINARY_BELOW) -> pd.DataFrame:
    """One row per question and group: strength with its 95% interval, n, wins, losses, ties, rank
    (1 + the groups whose interval lies wholly above), preliminary (n < preliminary_below); best
    lower bound first."""
    df = _decided(ratings, question)
    df = df[df["by"] == by]
    if df.empty:
        seen = sorted(set(ratings["by"].dropna()))
        raise InputError("by", by, f"a column the judgments compared ({', '.join(seen) or 'no judgments yet'})"
                         + (f" for question {question!r}" if question else ""))
    frames = [_rank_question(q, part, bootstrap, seed, preliminary_below)
              for q, part in df.groupby("question", sort=True)]
    out = pd.concat(frames, ignore_index=True)
    out.attrs["method"] = BT_METHOD
    return out


def _rank_question(question: str, df: pd.DataFrame, bootstrap: int, seed: int, preliminary_below: int) -> pd.DataFrame:
    groups = sorted(set(df["left_value"]) | set(df["right_value"]))
    index = {g: i for i, g in enumerate(groups)}
    g = len(groups)
    left = df["left_value"].map(index).to_numpy()
    right = df["right_value"].map(index).to_numpy()
    # Each judgment as one of 3*G*G outcome cells: (winner, loser, tie?) in a canonical orientation.
    choice = df["choice"].to_numpy()
    first = np.where(choice == "right", right, left)
    second = np.where(choice == "right", left, right)
    tie = choice == "tie"
    cell = (first * g + second) * 2 + tie
    counts = np.bincount(cell, minlength=2 * g * g).astype(float)
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(len(df), counts / counts.sum(), size=bootstrap).astype(float)
    stack = np.vstack([counts[None, :], resampled]).reshape(-1, g, g, 2)
    wins = stack[..., 0] + (stack[..., 1] + np.swapaxes(stack[..., 1], -1, -2)) / 2
    strengths = bradley_terry(wins)
    lo, hi = np.percentile(strengths[1:], [2.5, 97.5], axis=0)
    point = strengths[0]
    outcome = counts.reshape(g, g, 2)
    out = pd.DataFrame({
        "question": question, "group": groups, "strength": point, "ci_low": lo, "ci_high": hi,
        "n": [int(outcome[i].sum() + outcome[:, i].sum()) for i in range(g)],
        "wins": outcome[..., 0].sum(axis=1).astype(int), "losses": outcome[..., 0].sum(axis=0).astype(int),
        "ties": [int(outcome[i, :, 1].sum() + outcome[:, i, 1].sum()) for i in range(g)],
    })
    # Chatbot Arena's rank: a group is behind only those clearly better, so overlapping groups share a rank.
    out["rank"] = [1 + int((lo > high).sum()) for high in hi]
    out["preliminary"] = out["n"] < preliminary_below
    return out.sort_values(["ci_low", "strength"], ascending=False, kind="stable").reset_index(drop=True)


def rater_agreement_frame(ratings: pd.DataFrame, question: str | None = None) -> pd.DataFrame:
    """Krippendorff's alpha (nominal: first run wins / second wins / tie) over pairs that two or more
    raters judged, per question. Skips are missing values. alpha 1 = perfect, 0 = chance level."""
    import krippendorff

    rows = []
    df = _decided(ratings, question)
    for q, part in df.groupby("question", sort=True):
        key = part[["left_run", "right_run"]].min(axis=1) + "|" + part[["left_run", "right_run"]].max(axis=1)
        winner = part["left_run"].where(part["choice"] == "left", part["right_run"])
        code = np.where(part["choice"] == "tie", 2, np.where(winner == part[["left_run", "right_run"]].min(axis=1),
                                                                0, 1))
        # A rater who judged a pair twice counts once: their latest judgment.
        table = (pd.DataFrame({"rater": part["rater"], "pair": key, "code": code})
                 .drop_duplicates(["rater", "pair"], keep="last")
                 .pivot(index="rater", columns="pair", values="code"))
        shared = table.columns[table.notna().sum() >= 2]
        raters = int((table[shared].notna().sum(axis=1) > 0).sum()) if len(shared) else 0
        alpha = math.nan
        if len(shared) and len(np.unique(table[shared].stack())) > 1:
            alpha = float(krippendorff.alpha(reliability_data=table[shared].to_numpy(dtype=float),
                                             level_of_measurement="nominal"))
        elif len(shared):
            alpha = 1.0  # every rater gave every shared pair the same answer
        rows.append({"question": q, "alpha": alpha, "raters": raters, "pairs": len(shared),
                     "method": "Krippendorff's alpha, nominal (first wins / second wins / tie)"})
    return pd.DataFrame(rows, columns=["question", "alpha", "raters", "pairs", "method"])


def wilson(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion (sound near 0 and 1, unlike the normal approximation)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def metric_agreement_frame(ratings: pd.DataFrame, runs: pd.DataFrame, question: str | None = None) -> pd.DataFrame:
    """For each metric: the share of decided judgments (left or right; ties out) in which the metric,
    read in its direction (Metric.goodness: a target metric by the distance to its target), prefers
    the run the rater chose; with a Wilson 95% interval and n (judgments where both runs have the
    metric and it does not rate them equal)."""
    df = ratings[ratings["choice"].isin(("left", "right"))]
    if question is not None:
        df = df[df["question"] == question]
    loser = df["right_run"].where(df["choice"] == "left", df["left_run"])
    by_run = runs.set_index("run_id")
    rows = []
    for key, metric in ((c, metric_of(c)) for c in runs.columns):
        if metric is None:
            continue
        values = by_run[key]
        for q, idx in df.groupby("question", sort=True).groups.items():
            win = metric.goodness(values.reindex(df.loc[idx, "winner"]).to_numpy(dtype=float))
            lose = metric.goodness(values.reindex(loser.loc[idx]).to_numpy(dtype=float))
            usable = ~np.isnan(win) & ~np.isnan(lose) & (win != lose)
            n = int(usable.sum())
            if n == 0:
                continue
            agree = float((win > lose)[usable].sum())
            lo, hi = wilson(agree, n)
            rows.append({"question": q, "metric": key, "direction": metric.direction, "agreement": agree / n,
                         "ci_low": lo, "ci_high": hi, "n": n})
    out = pd.DataFrame(rows, columns=["question", "metric", "direction", "agreement", "ci_low", "ci_high", "n"])
    return out.sort_values(["question", "agreement"], ascending=[True, False], kind="stable").reset_index(drop=True)

