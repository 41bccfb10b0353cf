"""Which pair a rater judges next, and whether the ranking is settled: pure functions of the judgments
so far and the pairs the study allows (no store, no widget).

The posterior is the Laplace approximation of the same Bradley-Terry model `rank` fits (same virtual
ties, so the same point estimate), in log-strengths: its mode by Newton's method and its covariance
from the Hessian. Six groups is a 6 x 6 solve, so a pick at 5,000 judgments costs milliseconds.

The next pair (after ASAP, Mikhailiuk et al. ICPR 2020, and Chatbot Arena's active sampling): for every
two groups, the expected information one more judgment of them gives about their difference
(0.5 log(1 + p(1-p) var), the entropy drop of the Gaussian posterior), weighted by the probability that
the current order of the two is wrong; pairs whose order is clear teach the ranking nothing. Guards
against the biases adaptive pairing brings: a group seen less than a floor share of the judgments is
served first, sides stay random (the rater's hash, as in random order), and the analysis stays a plain
Bradley-Terry fit over all judgments.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from .analysis import PRIOR_TIES
from .pairs import Pair, shown_swapped

__all__ = ["ACTIVE_METHOD", "FLOOR_SHARE", "ORDER_LEVEL", "Posterior", "Settlement", "choose_pair", "next_pair", "order_probability",
           "pair_scores", "posterior", "settlement", "win_matrix"]

# A group seen in fewer than this share of the average group's judgments is served first.
FLOOR_SHARE = 0.3
FLOOR_MIN = 3  # ... and in fewer than this many judgments, whatever the average
# Separated at 95% for the ranking as a whole: Bonferroni over the adjacent differences, two-sided.
FAMILY_LEVEL = 0.05
MIN_EACH = 5  # no group's place is settled on fewer judgments than this
# The second way to settle: the posterior probability that the current order is the true one, from
# ORDER_DRAWS draws of the Laplace posterior (a fixed seed: every view and every call says the same).
# 0.99, not 0.95: the rule is asked after every judgment, and each look is a chance to stop on a lucky
# streak; at 0.95 the false stops of the simulation in bench/ratings.py rose several-fold.
ORDER_LEVEL = 0.99
ORDER_DRAWS = 4000
ACTIVE_METHOD = (f"pairs chosen actively (expected information on each pair's order under the Bradley-Terry "
                 f"posterior; groups below {FLOOR_SHARE:g} of the average exposure first; sides random)")


@dataclass(frozen=True)
class Posterior:
    """Log-strengths (mean 0) and their covariance, Laplace approximation of the Bradley-Terry fit."""

    theta: np.ndarray
    cov: np.ndarray

    def diff_var(self) -> np.ndarray:
        """var(theta_i - theta_j) for every two groups."""
        d = np.diag(self.cov)
        return np.maximum(d[:, None] + d[None, :] - 2 * self.cov, 1e-12)


@dataclass(frozen=True)
class Settlement:
    """Whether more judgments are needed: `enough` once every group has at least MIN_EACH judgments and
    either every two groups next to each other in the ranking are separated (family 95%) or the
    posterior probability that the current order is the true one reaches ORDER_LEVEL (more judgments
    are then very unlikely to change the order)."""

    enough: bool
    order: tuple[str, ...]  # best first, by point estimate
    unsettled: tuple[tuple[str, str], ...]  # neighbours not yet separated, better one first
    judgments: int  # decided judgments counted (ties half a win each side)
    order_probability: float = 0.0  # P(the true order is `order`) under the Bradley-Terry posterior

    @property
    def by_separation(self) -> bool:
        """Settled by the first rule (every neighbour separated), not only by the order's probability."""
        return self.enough and not self.unsettled

    def __str__(self) -> str:
        if self.by_separation:
            return f"ranking settled: {' > '.join(self.order)} after {self.judgments} judgments"
        if self.enough:
            return (f"ranking settled: {' > '.join(self.order)} after {self.judgments} judgments (the order is "
                    f"{self.order_probability:.1%} likely; more judgments are very unlikely to change it)")
        settled = len(self.order) - 1 - len(self.unsettled)
        return (f"ranking not settled yet: {settled} of {max(len(self.order) - 1, 0)} neighbouring groups "
                f"separated after {self.judgments} judgments")


def win_matrix(ratings: pd.DataFrame, groups: Sequence[str]) -> np.ndarray:
    """wins[i, j]: how often group i beat group j (a tie half a win to each), from decided judgments."""
    index = {g: i for i, g in enumerate(groups)}
    credit = {"left": (1.0, 0.0), "right": (0.0, 1.0), "tie": (0.5, 0.5)}  # skips count for nobody
    wins = np.zeros((len(groups), len(groups)))
    for a, b, choice in zip(ratings["left_value"].tolist(), ratings["right_value"].tolist(),
                            ratings["choice"].tolist(), strict=True):
        if choice in credit and a in index and b in index:
            wins[index[a], index[b]] += credit[choice][0]
            wins[index[b], index[a]] += credit[choice][1]
    return wins


def posterior(wins: np.ndarray, start: np.ndarray | None = None, iterations: int = 50) -> Posterior:
    """Newton's method on the Bradley-Terry log-likelihood with PRIOR_TIES virtual ties (the model
    bradley_terry fits); `start` (a previous theta) makes an update after one more judgment cheap."""
    g = wins.shape[0]
    w = wins + PRIOR_TIES / 2 * (1 - np.eye(g))
    n = w + w.T
    theta = np.zeros(g) if start is None else start - start.mean()
    ones = np.ones((g, g)) / g  # fixes the free shift: the solve stays in the mean-0 subspace
    for _ in range(iterations):
        p = 1 / (1 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
        grad = w.sum(axis=1) - (n * p).sum(axis=1)
        info = n * p * p.T
        hess = np.diag(info.sum(axis=1)) - info
        step = np.linalg.solve(hess + ones, grad)
        theta = theta + step
        theta -= theta.mean()
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1 / (1 + np.exp(theta[None, :] - theta[:, None]))
    info = n * p * p.T
    cov = np.linalg.inv(np.diag(info.sum(axis=1)) - info + ones) - ones
    return Posterior(theta, cov)


def _critical_z(groups: int) -> float:
    return NormalDist().inv_cdf(1 - FAMILY_LEVEL / (2 * max(groups - 1, 1)))


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    # math.erfc on a G x G array: scipy.stats costs seconds to import for this one function
    return np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x.ravel()]).reshape(x.shape)


_DRAWS: dict[int, np.ndarray] = {}


def order_probability(post: Posterior, order: np.ndarray) -> float:
    """P(theta[order[0]] > theta[order[1]] > ...) under the Gaussian posterior, by simulation: the
    adjacent differences drawn ORDER_DRAWS times (fixed seed), the share of draws with all of them > 0."""
    k = len(order) - 1
    if k < 1:
        return 1.0
    steps = np.zeros((k, len(order)))
    steps[np.arange(k), order[:-1]], steps[np.arange(k), order[1:]] = 1.0, -1.0
    mean, cov = steps @ post.theta, steps @ post.cov @ steps.T
    # eigh, not cholesky: a near-singular covariance (groups never compared) still draws
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0, None))
    if k not in _DRAWS:
        _DRAWS[k] = np.random.default_rng(0).standard_normal((ORDER_DRAWS, k))
    draws = mean + _DRAWS[k] @ root.T
    return float(np.mean(np.all(draws > 0, axis=1)))


def settlement(wins: np.ndarray, groups: Sequence[str], post: Posterior | None = None) -> Settlement:
    """The stop rule: every group seen MIN_EACH times, and either every adjacent difference in the
    ranking beyond its Bonferroni 95% bound or the current order ORDER_LEVEL likely."""
    if len(groups) < 2:
        return Settlement(enough=False, order=tuple(groups), unsettled=(), judgments=int(round(wins.sum())))
    post = post or posterior(wins)
    order = np.argsort(-post.theta, kind="stable")
    var = post.diff_var()
    exposure = wins.sum(axis=0) + wins.sum(axis=1)
    z = _critical_z(len(groups))
    unsettled = tuple((groups[a], groups[b]) for a, b in zip(order[:-1], order[1:], strict=True)
                      if (post.theta[a] - post.theta[b]) < z * math.sqrt(var[a, b])
                      or min(exposure[a], exposure[b]) < MIN_EACH)
    likely = order_probability(post, order)
    seen = bool(exposure.min() >= MIN_EACH)
    return Settlement(enough=not unsettled or (seen and likely >= ORDER_LEVEL), order=tuple(groups[i] for i in order),
                      unsettled=unsettled, judgments=int(round(wins.sum())), order_probability=likely)


def pair_scores(post: Posterior) -> np.ndarray:
    """score[i, j]: expected information of one judgment of i against j on the order of the two."""
    var = post.diff_var()
    delta = post.theta[:, None] - post.theta[None, :]
    p = 1 / (1 + np.exp(-delta))
    gain = 0.5 * np.log1p(p * (1 - p) * var)
    wrong = _normal_cdf(-np.abs(delta) / np.sqrt(var))
    score = gain * wrong
    np.fill_diagonal(score, -np.inf)
    return score


def _tiebreak(rater: str, question: str, key: str) -> int:
    # Two raters at the same moment see the same judgments: their own hash sends them to different pairs.
    return int.from_bytes(hashlib.sha256(f"{rater}\n{question}\n{key}\nnext".encode()).digest()[:8], "big")


def choose_pair(candidates: Sequence[Pair], wins: np.ndarray, groups: Sequence[str], rater: str, question: str, *,
                pair_counts: Mapping[str, int] | None = None, post: Posterior | None = None) -> tuple[Pair, bool] | None:
    """The next pair among `candidates` (the allowed pairs this rater has not judged) and whether it is
    shown swapped. pair_counts: how often each pair key was judged by anyone (the least judged pair of
    the chosen two groups goes first, spreading judgments over sources and prompts)."""
    if not candidates:
        return None
    index = {g: i for i, g in enumerate(groups)}
    post = post or posterior(wins)
    score = pair_scores(post)
    exposure = wins.sum(axis=0) + wins.sum(axis=1)
    floor = max(FLOOR_MIN, FLOOR_SHARE * exposure.mean())
    counts = pair_counts or {}
    starved = [index[g] for g in {v for p in candidates for v in p.values} if exposure[index[g]] < floor]
    pool: Iterable[Pair] = candidates
    if starved:  # the least seen group first, whatever the scores say
        least = min(starved, key=lambda i: (exposure[i], i))  # the same whatever the set's order
        pool = [p for p in candidates if least in (index[p.values[0]], index[p.values[1]])]
    cells: dict[tuple[int, int], list[Pair]] = {}
    for p in pool:
        cells.setdefault((index[p.values[0]], index[p.values[1]]), []).append(p)
    options = cells[max(cells, key=lambda c: score[c])]
    # Among the least judged, the rater's hash: two raters at once on k such pairs share one 1 time in k.
    fewest = min(counts.get(p.key, 0) for p in options)
    best = max((p for p in options if counts.get(p.key, 0) == fewest),
               key=lambda p: _tiebreak(rater, question, p.key))
    return best, shown_swapped(best, rater, question)


def next_pair(pairs: Sequence[Pair], ratings: pd.DataFrame, rater: str, question: str,
              judged: set[str] | None = None) -> tuple[Pair, bool] | None:
    """The next pair for `rater` from the judgments so far (ratings: load_ratings' table, one question
    and one `by`). judged: pair keys this rater is not to see again (default: those they judged)."""
    # Plain Python over the columns: pandas' string arrays cost more than the fit at 5,000 judgments.
    left, right = ratings["left_run"].tolist(), ratings["right_run"].tolist()
    keys = [f"{a}|{b}" if a < b else f"{b}|{a}" for a, b in zip(left, right, strict=True)]
    if judged is None:
        judged = {k for k, who in zip(keys, ratings["rater"].tolist(), strict=True) if who == rater}
    candidates = [p for p in pairs if p.key not in judged]
    groups = sorted({v for p in pairs for v in p.values})
    return choose_pair(candidates, win_matrix(ratings, groups), groups, rater, question, pair_counts=Counter(keys))
