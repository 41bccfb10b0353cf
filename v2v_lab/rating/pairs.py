"""Which outputs a rater compares: two runs that differ in one column (`by`) and agree on the rest of
the design, so a choice between them is about that column and nothing else."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import pandas as pd

from ..cell_fields import DESIGN_COLUMNS as _DESIGN_COLUMNS
from ..cell_fields import MATCHED_ONLY as _MATCHED
from ..errors import InputError
from ..tracking.reader import option_columns
from ..tracking.schema import STATUS_SUCCEEDED

__all__ = ["DESIGN_COLUMNS", "Pair", "build_pairs", "pair_key", "presentation", "shown_swapped"]

# What makes two outputs comparable. seed and repeat only where the study matched them across groups:
# a study with independent random seeds per model still yields pairs (same source, prompt, ratio).
DESIGN_COLUMNS = _DESIGN_COLUMNS
_MATCHED_ONLY = _MATCHED


def pair_key(run_a: str, run_b: str) -> str:
    """The same for a pair whichever side each run was shown on."""
    return "|".join(sorted((run_a, run_b)))


@dataclass(frozen=True)
class Pair:
    runs: tuple[str, str]  # sorted run ids: the pair's identity
    values: tuple[str, str]  # the `by` value of each run, same order
    prompt: str
    source: str | None  # the source clip (path or URI) both outputs were made from

    @cached_property  # read for every candidate at every pick: computed once
    def key(self) -> str:
        return pair_key(*self.runs)


def build_pairs(runs: pd.DataFrame, by: str) -> list[Pair]:
    """Every comparable pair among the succeeded runs, in a stable order (sorted by key). `by` is a
    design column or a model option some run set (duration, resolution...)."""
    options = option_columns(runs)
    if by not in (*DESIGN_COLUMNS, *options) or by not in runs.columns:
        raise InputError("by", by, f"one of the design columns {', '.join((*DESIGN_COLUMNS, *options))}")
    done = runs[runs["status"] == STATUS_SUCCEEDED] if "status" in runs.columns else runs
    if done.empty:
        return []
    shared = _options_every_group_sets(done, options, by)
    done = done.assign(**{c: done[c].astype("string").fillna("") if c in done.columns else ""
                          for c in (*DESIGN_COLUMNS, *shared, by)})
    keys = [c for c in (*DESIGN_COLUMNS, *shared) if c != by and c not in _MATCHED_ONLY]
    keys += [c for c in _MATCHED_ONLY if c != by and _matched(done, keys, by, c)]
    pairs: list[Pair] = []
    for _, group in done.groupby(keys, sort=True, dropna=False):
        by_value = {v: sorted(g["run_id"]) for v, g in group.groupby(by, sort=True)}
        first = group.iloc[0]
        for a, b in combinations(sorted(by_value), 2):
            # Repeats pair up in order; a run without a counterpart is left out.
            for run_a, run_b in zip(by_value[a], by_value[b], strict=False):
                ordered = sorted(((run_a, a), (run_b, b)))
                pairs.append(Pair(runs=(ordered[0][0], ordered[1][0]), values=(ordered[0][1], ordered[1][1]),
                                  prompt=str(first["prompt"]), source=_source(first)))
    return sorted(pairs, key=lambda p: p.key)


def _options_every_group_sets(done: pd.DataFrame, options: list[str], by: str) -> list[str]:
    """The model options that must match for a pair: those every `by` group sets (outputs of another
    duration are not a pair). An option only some groups set (seedance2's duration against aleph2,
    which has none) cannot be matched, so it is not a key, as compare() treats it."""
    # Runs without the `by` value (a model that has no such field) are no group of their own here.
    groups = done[done[by].notna()].groupby(by)
    return [c for c in options if c != by and bool(groups[c].apply(lambda col: col.notna().all()).all())]


def _matched(done: pd.DataFrame, keys: list[str], by: str, column: str) -> bool:
    """Whether any value of `column` occurs under two `by` values with the rest of the design equal."""
    counts = done.groupby([*keys, column], dropna=False)[by].nunique()
    return bool((counts > 1).any())


def _source(row: pd.Series) -> str | None:
    value = row.get("source")
    return str(value) if isinstance(value, str) and value else None


def presentation(pairs: list[Pair], rater: str, question: str) -> list[tuple[Pair, bool]]:
    """The order a rater sees the pairs in and whether each is shown swapped (second run on the left):
    random to the rater, but the same every time this rater opens this question, so resuming continues
    the same sequence and a reloaded page shows the same sides."""
    order = list(pairs)
    random.Random(f"{rater}\n{question}").shuffle(order)
    return [(p, shown_swapped(p, rater, question)) for p in order]


def shown_swapped(pair: Pair, rater: str, question: str) -> bool:
    """Whether the pair's second run is shown on the left: random to the rater and the pair, not to
    how the pair was chosen, and the same every time (a reloaded page shows the same sides)."""
    return hashlib.sha256(f"{rater}\n{question}\n{pair.key}".encode()).digest()[0] & 1 == 1
