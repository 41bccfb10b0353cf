"""The adaptive search's decision core: from the recorded (candidate, seed) -> score table, the next
round's cells or the verdict. Pure: no store, no endpoint, no clock; the runner does the I/O.

What it answers. A search is asked for the best value of one axis with at most N seeds per
candidate (the spec's seeds, taken in order). The full grid would name the candidate whose mean
over those N seeds is best; the search names the same candidate, with probability at least
`confidence`, for a fraction of the grid's cells. "The best" is therefore the grid's best: that is
what a person compares the search against, and the only best that N seeds can tell apart.

The method: successive elimination (Even-Dar, Mannor & Mansour, JMLR 2006) on shared seeds, whose
elimination test is stochastic curtailment (Lan, Simon & Halperin 1982; the predictive form of
Spiegelhalter, Freedman & Blackburn 1986), Bonferroni-corrected over the looks.

- Rounds on shared seeds. Every candidate still in the race gets the same seeds, in the spec's
  order, at looks of 2, 3, 5, 8, 12, ... seeds (x1.5, the last look at N). A seed moves every
  candidate alike in part (the same noise pattern, the same motion draw), and paired differences
  cancel that part; the variance left is estimated from the two-way residuals (candidate + seed)
  of all candidates still in, so two seeds per candidate already give (k-1) degrees of freedom.
- The test. At a look with n of N seeds, the leader's paired lead over candidate j is d (the
  metric read in its direction: Metric.goodness). What the full grid would see is
  (n*d + (N-n)*e)/N, e the mean lead on the seeds not yet run; with a flat prior on the true lead,
  that final lead is predicted as t-distributed around d with standard error s*sqrt((N-n)/(N*n)),
  s the standard deviation of one seed's paired difference. j is dropped when the interval
  d +- t*se lies above 0: it cannot end as the grid's best at the stated confidence. The interval
  narrows to a point at N, where the decision is the grid's own (the best mean).
- Bonferroni over the looks: each look tests at (1 - confidence) / (looks - 1), so the chance that
  the grid's best is ever dropped stays within 1 - confidence. The number of looks is fixed by N
  before anything runs (log1.5 N of them), which keeps the correction small.

Why this and not another. Fixed-confidence best-arm identification (LUCB, Kalyanakrishnan et al.
2012; Track-and-Stop, Garivier & Kaufmann 2016; TRIPLE's prompt selection, Shi et al., NeurIPS 2024)
guarantees the true best and so needs ~ sigma^2/gap^2 * log(1/delta) seeds per close pair: at a gap
of half a noise standard deviation that is dozens of seeds, past any cap a paid study sets, so it
would end at the cap (the full grid's cost) in most studies. Successive halving (Karnin et al.
2013) spends a fixed budget and keeps no stated confidence. Stochastic curtailment keeps the
stated confidence about the question N seeds can answer, spends the most on the closest pair, and
stops a pair early once the seeds left cannot change its order. bench/search.py measures both
numbers (share of studies naming the grid's best, credits against the grid).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "FIRST_LOOK", "NO_SCORE", "Decision", "Round", "SearchState", "cells_run", "expected_share", "looks", "replay",
]

# Seeds per candidate at the first look: two, the fewest that leave residual degrees of freedom.
FIRST_LOOK = 2
GROWTH = 1.5

# A cell that ended without a score (failed, or scored without the metric): recorded, not pending.
NO_SCORE = None
Table = Mapping[tuple[int, int], float | None]  # (candidate, seed index) -> goodness, or NO_SCORE


@dataclass(frozen=True)
class Decision:
    """One candidate at one look: its mean (in goodness: larger is better), the predicted final
    gap to the leader with its interval, and whether it stays."""

    candidate: int
    mean: float
    gap: float  # the leader's paired lead over it on the seeds so far (0 for the leader)
    low: float  # the interval of the lead the full grid would see
    high: float
    kept: bool
    why: str = ""  # why it was dropped


@dataclass(frozen=True)
class Round:
    """One look: the candidates in it, how many seeds each has, the test's level and each decision."""

    number: int
    candidates: list[int]
    seeds: int  # seeds per candidate at this look (the first `seeds` of the spec's)
    new_seeds: list[int]  # indices of the seeds this round added
    level: float  # the per-look confidence of the intervals
    spread: float  # s: one seed's paired-difference standard deviation (nan: not estimable)
    decisions: list[Decision]

    def dropped(self) -> list[Decision]:
        return [d for d in self.decisions if not d.kept]


@dataclass
class SearchState:
    """Where the recorded table leaves the search: the rounds decided so far, then either the
    cells the next round still needs (pending) or the verdict (winner and why it ended)."""

    rounds: list[Round] = field(default_factory=list)
    alive: list[int] = field(default_factory=list)
    pending: list[tuple[int, int]] = field(default_factory=list)  # (candidate, seed index) not yet recorded
    winner: int | None = None
    ended: str = ""  # "one left", "seeds ran out", "no scores"; "" while pending

    @property
    def done(self) -> bool:
        return not self.pending

    def leader(self) -> int | None:
        """The best candidate so far (the verdict's, else the last look's leader)."""
        if self.winner is not None:
            return self.winner
        if not self.rounds:
            return None
        kept = [d for d in self.rounds[-1].decisions if d.kept]
        return min(kept, key=lambda d: d.gap).candidate if kept else None  # the leader's gap is 0

    def to_json(self) -> dict[str, Any]:
        return {"rounds": [asdict(r) for r in self.rounds], "alive": self.alive, "pending": self.pending,
                "winner": self.winner, "ended": self.ended}


def looks(max_seeds: int) -> list[int]:
    """Seeds per candidate at each look: 2, 3, 5, 8, 12, 18, ... (x1.5), the last one max_seeds."""
    if max_seeds <= FIRST_LOOK:
        return [max_seeds]
    out = [FIRST_LOOK]
    while out[-1] < max_seeds:
        out.append(min(max_seeds, math.ceil(out[-1] * GROWTH)))
    return out


def replay(table: Table, candidates: int, max_seeds: int, confidence: float) -> SearchState:
    """Replay the search over what is recorded: each look whose cells are all in the table is
    decided again (the same table gives the same decisions, whoever runs it and however often);
    the first look with a cell missing is where the search stands."""
    schedule = looks(max_seeds)
    level = 1 - (1 - confidence) / max(1, len(schedule) - 1)
    state = SearchState(alive=list(range(candidates)))
    before = 0
    for number, n in enumerate(schedule, start=1):
        new = list(range(before, n))
        state.pending = [(c, s) for c in state.alive for s in new if (c, s) not in table]
        if state.pending:
            return state
        final = n == max_seeds
        decided = _look(table, state.alive, n, max_seeds, level if not final else 1.0)
        state.rounds.append(Round(number, list(state.alive), n, new, level if not final else 1.0,
                                  decided[1], decided[0]))
        state.alive = [d.candidate for d in decided[0] if d.kept]
        if len(state.alive) <= 1 or final:
            return _verdict(state, final)
        before = n
    return state


def _verdict(state: SearchState, final: bool) -> SearchState:
    last = state.rounds[-1]
    if not state.alive:
        state.ended = "no scores"
        return state
    if len(state.alive) == 1:
        state.winner, state.ended = state.alive[0], ("one left" if not final or len(last.candidates) == 1
                                                     else "seeds ran out")
        return state
    # At the last look the decision is the grid's own: the best mean, ties to the first candidate.
    state.winner = max(state.alive, key=lambda c: (next(d.mean for d in last.decisions if d.candidate == c), -c))
    state.ended = "seeds ran out"
    return state


def _look(table: Table, alive: list[int], n: int, max_seeds: int, level: float) -> tuple[list[Decision], float]:
    """Every candidate in the race at a look of n seeds: kept, or dropped and why."""
    failed = {c: s for c in alive for s in range(n) if table[(c, s)] is NO_SCORE}
    scored = [c for c in alive if c not in failed]
    out = [Decision(c, math.nan, math.nan, math.nan, math.nan, False, f"no score for seed #{s + 1}")
           for c, s in failed.items()]
    if not scored:
        return out, math.nan
    rows = [[float(table[(c, s)]) for s in range(n)] for c in scored]  # type: ignore[arg-type]
    means = [sum(r) / n for r in rows]
    lead = max(range(len(scored)), key=lambda i: (means[i], -scored[i]))
    spread, dof = _paired_spread(rows)
    half_width = _quantile(level, dof) * spread * math.sqrt((max_seeds - n) / (max_seeds * n))
    if level >= 1.0:  # the last look: no interval, the grid's decision
        half_width = 0.0
    for i, c in enumerate(scored):
        gap = means[lead] - means[i]  # the mean of paired differences is the difference of means
        low, high = gap - half_width, gap + half_width
        drop = i != lead and (low > 0 if level < 1.0 else gap > 0)
        why = (f"behind the leader by {gap:.4g}, interval {low:.4g}..{high:.4g} above 0" if drop and level < 1.0
               else f"a lower mean than the leader's over all {n} seeds (the grid's decision)" if drop else "")
        out.append(Decision(c, means[i], gap, low, high, not drop, why))
    out.sort(key=lambda d: alive.index(d.candidate))
    return out, spread


def _paired_spread(rows: Sequence[Sequence[float]]) -> tuple[float, int]:
    """s, the standard deviation of one seed's paired difference between two candidates, from the
    two-way residuals (candidate and seed effects removed) of every candidate in the race, with its
    degrees of freedom. Pooled: two seeds per candidate are too few for a pair's own estimate."""
    k, n = len(rows), len(rows[0])
    dof = (k - 1) * (n - 1)
    if dof == 0:
        return math.inf, 0
    grand = sum(map(sum, rows)) / (k * n)
    row_means = [sum(r) / n for r in rows]
    col_means = [sum(r[s] for r in rows) / k for s in range(n)]
    ss = sum((rows[i][s] - row_means[i] - col_means[s] + grand) ** 2 for i in range(k) for s in range(n))
    return math.sqrt(2 * ss / dof), dof


def _quantile(level: float, dof: int) -> float:
    """The one-sided t quantile (scipy comes with scikit-image, a dependency)."""
    if level >= 1.0 or dof == 0:
        return math.inf
    from scipy.stats import t

    return float(t.ppf(level, dof))


def expected_share(candidates: int, max_seeds: int, confidence: float, studies: int = 200,
                   seed: int = 0) -> float:
    """The expected share of the grid's cells a search runs, simulated: candidates spaced g noise
    standard deviations apart, g uniform in 0.5..2 (the bench's studies). Equal candidates cost
    more (up to the whole grid): the dry run says so beside this figure."""
    import numpy as np

    if candidates <= 1:
        return 1.0
    rng = np.random.default_rng(seed)
    cells = 0
    for _ in range(studies):
        gap = rng.uniform(0.5, 2.0)
        scores = -gap * np.arange(candidates)[:, None] + rng.standard_normal((candidates, max_seeds))
        table = {(c, s): float(scores[c, s]) for c in range(candidates) for s in range(max_seeds)}
        cells += cells_run(replay(table, candidates, max_seeds, confidence))
    return cells / (studies * candidates * max_seeds)


def cells_run(state: SearchState) -> int:
    """How many (candidate, seed) cells the search's rounds asked for."""
    return sum(len(r.candidates) * len(r.new_seeds) for r in state.rounds)
