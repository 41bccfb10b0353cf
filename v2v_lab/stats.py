"""Paired statistics as plain functions over numbers: the sign-flip permutation test, Holm's
adjustment, the equivalence test (TOST) on paired differences, and the paired t-test's power and
sample size. compare() and power() read these; nothing here knows runs, stores or models.

numpy only (scipy is a dev dependency, not a core one): the noncentral t's tail is computed by
integrating the normal tail over the chi distribution of the sample standard deviation on a fine
grid, which tests/test_stats.py holds to scipy's `nct` within 1e-4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

__all__ = ["EXACT_MAX_PAIRS", "holm", "min_pairs_for", "pairs_needed", "sign_flip_p", "t_power", "t_quantile",
           "tost_p"]

# Up to this many pairs the sign-flip test enumerates all 2^n sign patterns (65,536 at 16): its
# p-value is exact. Above it, RESAMPLES random patterns drawn from a fixed seed (the same answer
# every time): the p-value's Monte Carlo error is then about 0.0015 at p = 0.05.
EXACT_MAX_PAIRS = 16
RESAMPLES = 20_000
_ALTERNATIVES = ("two-sided", "greater", "less")


def _sign_patterns(n: int, seed: int) -> np.ndarray:
    """±1 rows: every pattern for n <= EXACT_MAX_PAIRS (the identity among them), else RESAMPLES random ones."""
    if n <= EXACT_MAX_PAIRS:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
        return 1 - 2 * bits
    return np.random.default_rng(seed).choice(np.array([-1, 1]), size=(RESAMPLES, n))


def sign_flip_p(diffs: Sequence[float] | np.ndarray, alternative: str = "two-sided", *, seed: int = 0) -> float:
    """The p-value of the paired permutation (sign-flip) test that the differences are centred on
    0: under that hypothesis each difference's sign is a coin flip, so the observed sum is compared
    with the sums of every sign pattern (exact for n <= EXACT_MAX_PAIRS; else a Monte Carlo
    estimate, (1 + hits) / (1 + RESAMPLES), from `seed`). alternative: two-sided, greater (the
    mean above 0) or less. NaN with no finite difference."""
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative: {alternative!r}; one of {', '.join(_ALTERNATIVES)}")
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    signs = _sign_patterns(len(d), seed)
    sums = signs @ d
    observed = float(d.sum())
    # Sums equal in exact arithmetic may differ in the last bits: a tie counts as at least as extreme.
    tol = 1e-9 * float(np.abs(d).sum())
    if alternative == "two-sided":
        hits = np.abs(sums) >= abs(observed) - tol
    elif alternative == "greater":
        hits = sums >= observed - tol
    else:
        hits = sums <= observed + tol
    if len(d) <= EXACT_MAX_PAIRS:
        return float(hits.mean())
    return float((1 + hits.sum()) / (1 + len(sums)))


def tost_p(diffs: Sequence[float] | np.ndarray, margin: float, *, seed: int = 0) -> float:
    """The equivalence test's p-value (two one-sided tests, each a sign-flip test): small when the
    mean difference is shown to lie inside (-margin, +margin). The larger of the p-values of
    "above -margin" and "below +margin"."""
    if not margin > 0:
        raise ValueError(f"margin: {margin!r}; a number above 0")
    d = np.asarray(diffs, dtype=float)
    return max(sign_flip_p(d + margin, "greater", seed=seed), sign_flip_p(d - margin, "less", seed=seed))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment across the comparisons (family-wise error held at alpha): the
    i-th smallest p times (m - i + 1), made monotone, capped at 1. NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(scaled, 1.0)
    return out


def min_pairs_for(alpha: float) -> int:
    """The fewest pairs at which the exact two-sided sign-flip test can reach p <= alpha (its
    smallest p is 2 / 2^n): 6 at alpha = 0.05. Fewer pairs can never show a difference."""
    return max(2, math.ceil(1 - math.log2(alpha)))


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal's CDF, elementwise."""
    return 0.5 * _erfc(-x / math.sqrt(2))


_erfc = np.vectorize(math.erfc, otypes=[float])


def _chi_grid(df: int, points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s and weights w (summing to 1) of the law of S = sqrt(V / df), V ~ chi2(df): the
    sample standard deviation over the true one, the part of a t statistic that is not normal.
    Midpoints evenly spaced in sqrt(s), so they crowd near 0, where a small df's far tail lives."""
    half = 12 / math.sqrt(df)  # about 17 standard deviations of S either side of 1
    lo, hi = math.sqrt(max(0.0, 1 - half)), math.sqrt(1 + half)
    step = (hi - lo) / points
    u = lo + step * (np.arange(points) + 0.5)
    s = u * u
    log_density = (math.log(2 * df) + np.log(s) + (df / 2 - 1) * np.log(df * s * s) - df * s * s / 2
                   - df / 2 * math.log(2) - math.lgamma(df / 2))
    w = np.exp(log_density) * 2 * u * step  # ds = 2u du
    return s, w / w.sum()


def _t_upper(c: float, df: int, ncp: float, grid: tuple[np.ndarray, np.ndarray]) -> float:
    """P(T > c) for T noncentral t with df degrees of freedom and noncentrality ncp:
    T = (Z + ncp) / S, so P(T > c) = E_S[P(Z > c S - ncp)]."""
    s, w = grid
    return float(w @ _phi(ncp - c * s))


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with df degrees of freedom (bisection on the integrated CDF)."""
    if not 0 < q < 1:
        raise ValueError(f"q: {q!r}; between 0 and 1")
    grid = _chi_grid(df)
    if q < 0.5:
        return -t_quantile(1 - q, df)
    lo, hi = 0.0, 1.0
    while _t_upper(hi, df, 0.0, grid) > 1 - q:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_upper(mid, df, 0.0, grid) > 1 - q else (lo, mid)
    return (lo + hi) / 2


def t_power(n: int, delta: float, sd: float, alpha: float = 0.05) -> float:
    """The power of the two-sided paired t-test on n pairs whose differences have mean `delta` and
    standard deviation `sd`: P(|T| > t_{1-alpha/2, n-1}) with T noncentral t, ncp = delta sqrt(n) / sd."""
    if n < 2:
        return float("nan")
    df = n - 1
    grid = _chi_grid(df)
    c = t_quantile(1 - alpha / 2, df)
    ncp = abs(delta) * math.sqrt(n) / sd
    return _t_upper(c, df, ncp, grid) + _t_upper(c, df, -ncp, grid)


def pairs_needed(delta: float, sd: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """The fewest pairs for the two-sided paired t-test to detect a mean difference `delta` with
    this power, when differences have standard deviation `sd`; never fewer than the sign-flip test
    needs to reach alpha at all (min_pairs_for). Starts from the normal approximation (a lower
    bound) and steps up with the t-test's exact power."""
    if not delta > 0 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"delta {delta!r} > 0, alpha {alpha!r} and power {power!r} in (0, 1) are needed")
    floor = min_pairs_for(alpha)
    if not sd > 0:
        return floor
    z = NormalDist()
    normal_n = ((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / delta) ** 2
    n = max(2, math.ceil(normal_n) - 1)
    while t_power(n, delta, sd, alpha) < power:
        n += 1
    return max(n, floor)
