"""Known answers for the paired statistics (v2v_lab/stats.py) and for compare() and power() read
through them: exact values, scipy's (a dev dependency) where it has the same function, published
sample sizes, and planted differences found at the stated rates over many synthetic studies."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from v2v_lab import stats
from v2v_lab.sweeps.power import power_frame
from v2v_lab.tracking.comparison import compare_frame

scipy_stats = pytest.importorskip("scipy.stats")


# -- the sign-flip test ------------------------------------------------------------------------------------

def test_sign_flip_is_exact_for_small_samples():
    # All six positive: only the identity and its mirror are as extreme, 2 of 64 patterns.
    assert stats.sign_flip_p([1, 2, 3, 4, 5, 6]) == pytest.approx(2 / 64)
    assert stats.sign_flip_p([1, 2, 3, 4, 5, 6], "greater") == pytest.approx(1 / 64)
    assert stats.sign_flip_p([1, 2, 3, 4, 5, 6], "less") == pytest.approx(1.0)
    assert stats.sign_flip_p([0.0, 0.0, 0.0]) == 1.0 and math.isnan(stats.sign_flip_p([]))
    rng = np.random.default_rng(3)
    for n in (3, 7, 10):
        d = rng.normal(0.3, 1, n)
        sums = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in itertools.product((1, -1), repeat=n)]
        brute = np.mean([s >= abs(d.sum()) - 1e-12 for s in sums])
        assert stats.sign_flip_p(d) == pytest.approx(brute)


def test_sign_flip_by_monte_carlo_matches_the_t_test_on_normal_data():
    rng = np.random.default_rng(0)
    for mean in (0.0, 0.3, 0.5):
        d = rng.normal(mean, 1, 60)
        p = stats.sign_flip_p(d, seed=1)
        assert p == stats.sign_flip_p(d, seed=1)  # a fixed seed: the same answer every time
        assert p == pytest.approx(scipy_stats.ttest_1samp(d, 0).pvalue, abs=0.02)


def test_sign_flip_finds_no_difference_where_none_exists_at_the_stated_rate():
    """Over 600 studies of 12 pairs with no difference, p < 0.05 about 5% of the time (binomial
    99.9% bounds: 1.9% to 8.6%)."""
    rng = np.random.default_rng(11)
    hits = sum(stats.sign_flip_p(rng.normal(0, 1, 12)) < 0.05 for _ in range(600))
    assert 0.019 <= hits / 600 <= 0.086, hits


# -- Holm, TOST ---------------------------------------------------------------------------------------------

def test_holm_on_a_worked_example():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06; NaN not counted.
    assert stats.holm([0.01, 0.04, 0.03, np.nan]) == pytest.approx([0.03, 0.06, 0.06, np.nan], nan_ok=True)
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 capped at 1; 0.9 kept monotone
    assert np.isnan(stats.holm([np.nan])).all()


def test_tost_shows_equivalence_inside_the_margin_and_not_at_its_edge():
    rng = np.random.default_rng(5)
    close = rng.normal(0, 0.01, 20)
    assert stats.tost_p(close, margin=0.05) < 0.001
    assert stats.tost_p(close, margin=0.001) > 0.5
    # A true difference exactly at the margin: "equivalent" at most 5% of the time (bounds as above).
    hits = sum(stats.tost_p(rng.normal(0.1, 0.1, 12), margin=0.1) < 0.05 for _ in range(600))
    assert hits / 600 <= 0.086, hits
    with pytest.raises(ValueError):
        stats.tost_p(close, margin=0)


# -- power and sample size -----------------------------------------------------------------------------------

def test_t_quantile_and_power_match_scipy():
    for df in (1, 2, 5, 30, 400):
        for q in (0.9, 0.975, 0.995):
            assert stats.t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-4)
    for n, delta, sd, alpha in ((2, 3, 1, 0.05), (6, 1, 1, 0.05), (20, 0.02, 0.04, 0.05), (300, 0.01, 0.1, 0.01)):
        c = scipy_stats.t.ppf(1 - alpha / 2, n - 1)
        ncp = delta * math.sqrt(n) / sd
        expected = scipy_stats.nct.sf(c, n - 1, ncp) + scipy_stats.nct.cdf(-c, n - 1, ncp)
        assert stats.t_power(n, delta, sd, alpha) == pytest.approx(expected, abs=1e-6)


def test_pairs_needed_matches_published_sample_sizes():
    # Paired t-test, two-sided alpha 0.05, power 0.8 (Cohen 1988; G*Power's "difference from
    # constant"): effect size d = 0.5 needs 34 pairs, d = 0.8 needs 15, d = 0.2 needs 199.
    assert stats.pairs_needed(0.5, 1.0) == 34
    assert stats.pairs_needed(0.8, 1.0) == 15
    assert stats.pairs_needed(0.02, 0.1) == 199
    # The smallest n whose power reaches the target, by scipy: one fewer falls short.
    for delta, sd, power, alpha in ((0.02, 0.05, 0.8, 0.05), (0.01, 0.03, 0.9, 0.01)):
        n = stats.pairs_needed(delta, sd, power=power, alpha=alpha)
        for m, reached in ((n, True), (n - 1, False)):
            c = scipy_stats.t.ppf(1 - alpha / 2, m - 1)
            ncp = delta * math.sqrt(m) / sd
            got = scipy_stats.nct.sf(c, m - 1, ncp) + scipy_stats.nct.cdf(-c, m - 1, ncp)
            assert (got >= power) == reached, (delta, sd, m, got)
    # Never fewer than the sign-flip test needs to reach alpha at all (2 / 2^6 < 0.05).
    assert stats.min_pairs_for(0.05) == 6 and stats.pairs_needed(1.0, 0.01) == 6


# -- compare() and power() on synthetic runs whose answer is planted -----------------------------------------

def _study(rng: np.random.Generator, pairs: int, shifts: dict[str, float], sd: float, *, prompts: int = 1) -> pd.DataFrame:
    """Runs of models on shared prompts and seeds: each design cell has a common level, each model
    adds its shift and independent noise whose paired difference has standard deviation `sd`."""
    rows = []
    for p in range(prompts):
        for seed in range(pairs):
            level = rng.normal(0.6, 0.1)
            for model, shift in shifts.items():
                rows.append({"model": model, "prompt": f"p{p}", "seed": seed, "ratio": "r", "video_sha": "v",
                             "repeat": 0, "status": "succeeded", "credits_estimated": 140.0 if model == "a" else 75.0,
                             "structure": level + shift + rng.normal(0, sd / math.sqrt(2))})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_a_planted_difference_is_found_at_the_rate_power_promised():
    """power() plans the pairs for a difference of 0.02 at power 0.8 from a pilot; studies of that
    many pairs with 0.02 planted find it (compare's verdict "better") about 80% of the time."""
    rng = np.random.default_rng(21)
    pilot = power_frame(_study(rng, 40, {"a": 0.0, "b": 0.0}, 0.04), "model", "structure", delta=0.02).iloc[0]
    assert pilot["sd"] == pytest.approx(0.04, rel=0.25)
    n = int(pilot["pairs_needed"])
    assert n == stats.pairs_needed(0.02, pilot["sd"])
    found = [compare_frame(_study(rng, n, {"a": 0.0, "b": 0.02}, 0.04), "model", "structure", "a",
                           n_boot=50).set_index("group").loc["b", "verdict"] for _ in range(200)]
    # 200 studies at true power ~0.8 (the pilot's sd is itself an estimate): 99.9% bounds about 0.69-0.9.
    assert 0.66 <= found.count("better") / 200 <= 0.93, (n, found.count("better"))
    assert "worse" not in found


@pytest.mark.slow
def test_no_difference_is_found_where_none_exists_across_several_comparisons():
    """Three models equal to the baseline: Holm keeps the chance of any "better" or "worse" among
    them at most 5% (99.9% bound 10% over 200 studies)."""
    rng = np.random.default_rng(8)
    false_alarms = 0
    for _ in range(200):
        table = compare_frame(_study(rng, 10, dict.fromkeys("abcd", 0.0), 0.05), "model", "structure", "a", n_boot=20)
        false_alarms += bool(table["verdict"].isin(["better", "worse"]).any())
    assert false_alarms / 200 <= 0.10, false_alarms


def test_compare_verdicts_tests_and_method():
    rng = np.random.default_rng(2)
    runs = _study(rng, 20, {"a": 0.0, "b": 0.05, "c": -0.05, "d": 0.0005}, 0.01)
    table = compare_frame(runs, "model", "structure", "a", margin=0.01, n_boot=200).set_index("group")
    assert list(table["verdict"]) == ["baseline", "better", "worse", "equivalent"]
    assert (table.loc[["b", "c"], "p_holm"] < 0.001).all() and table.loc["d", "p_equiv_holm"] < 0.05
    # Holm over the three comparisons: the smallest p-value times 3.
    assert table.loc["b", "p_holm"] == pytest.approx(3 * table.loc["b", "p_value"])
    assert (table["p_holm"].dropna() >= table["p_value"].dropna()).all()
    assert table.loc["b", "diff_ci_low"] < 0.05 < table.loc["b", "diff_ci_high"]
    method = table.attrs["method"]
    assert "sign-flip" in method and "Holm" in method and "TOST" in method and "95% CI" in method
    # Without a margin: no equivalence test, the near-equal group is undecided.
    plain = compare_frame(runs, "model", "structure", "a", n_boot=50).set_index("group")
    assert plain.loc["d", "verdict"] == "undecided" and plain["p_equiv"].isna().all()
    # Too few pairs for the exact test to reach 0.05: undecided, however large the difference.
    few = compare_frame(_study(rng, 5, {"a": 0.0, "b": 0.2}, 0.01), "model", "structure", "a", n_boot=50)
    assert few.set_index("group").loc["b", "verdict"] == "undecided"


def test_power_from_a_one_model_pilot_uses_its_seed_spread():
    rng = np.random.default_rng(4)
    pilot = _study(rng, 8, {"a": 0.0}, 0.02, prompts=2)
    row = power_frame(pilot, "model", "structure", delta=0.01).iloc[0]
    # The spread across seeds within each prompt (the prompts' own levels differ and cancel in a pair).
    within = pilot.groupby("prompt")["structure"].transform(lambda s: s - s.mean())
    seed_sd = math.sqrt((within ** 2).sum() / (len(pilot) - 2))
    assert row["group"] is None and row["sd"] == pytest.approx(math.sqrt(2) * seed_sd)
    assert row["pairs_needed"] == stats.pairs_needed(0.01, row["sd"])
    assert row["credits"] == pytest.approx(row["pairs_needed"] * 2 * 140.0)
    assert row["dollars"] == pytest.approx(row["credits"] * 0.01)


def test_power_prices_each_pair_as_one_cell_of_each_side():
    rng = np.random.default_rng(6)
    table = power_frame(_study(rng, 10, {"a": 0.0, "b": 0.01}, 0.03), "model", "structure", delta=0.02)
    row = table.iloc[0]
    assert (row["group"], row["baseline"], row["pairs"]) == ("b", "a", 10)
    assert row["credits"] == pytest.approx(row["pairs_needed"] * (140.0 + 75.0))
    assert "noncentral t" in table.attrs["method"]
