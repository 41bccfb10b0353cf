"""Human judgments: the analysis on answers known in advance, and RateView on a real study in a real
MLflow store (durable at once, resumable, blind, shared between raters and processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from statistics import NormalDist

import httpx
import numpy as np
import pandas as pd
import pytest

from v2v_lab import InputError, load_ratings, load_runs, metric_agreement, rank, rater_agreement
from v2v_lab.rating import BT_METHOD, bradley_terry, build_pairs
from v2v_lab.rating.analysis import metric_agreement_frame, rank_frame, rater_agreement_frame, wilson
from v2v_lab.rating.pairs import presentation

from .conftest import ROOT, copy_study


def judgments(rows: list[tuple[str, str, str, str]], question: str = "q", by: str = "model") -> pd.DataFrame:
    """(rater, left value, right value, choice) -> a ratings table; the run id is the value plus a pair number."""
    out = []
    for i, (rater, lv, rv, choice) in enumerate(rows):
        out.append({"id": str(i), "rater": rater, "question": question, "by": by, "left_run": f"{lv}-{i % 7}",
                    "right_run": f"{rv}-{i % 7}", "left_value": lv, "right_value": rv, "choice": choice,
                    "at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(seconds=i), "seconds": 1.0})
    df = pd.DataFrame(out)
    df["winner"] = df["left_run"].where(df["choice"] == "left", df["right_run"].where(df["choice"] == "right"))
    return df


# -- analysis on known answers ------------------------------------------------------------------------

def test_bradley_terry_recovers_known_strengths():
    truth = {"a": 4.0, "b": 2.0, "c": 1.0}  # P(a beats b) = 4 / (4 + 2)
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(3000):
        x, y = rng.choice(list(truth), 2, replace=False)
        wins = rng.random() < truth[x] / (truth[x] + truth[y])
        rows.append(("r", x, y, "left" if wins else "right"))
    table = rank_frame(judgments(rows), bootstrap=300)
    assert list(table["group"]) == ["a", "b", "c"] and list(table["rank"]) == [1, 2, 3]
    scale = np.exp(np.mean(np.log(list(truth.values()))))  # strengths are scaled to geometric mean 1
    for row in table.itertuples():
        expected = truth[row.group] / scale
        assert row.ci_low < expected < row.ci_high, row
        assert abs(row.strength - expected) / expected < 0.12
    assert table["n"].sum() == 2 * 3000 and table.attrs["method"] == BT_METHOD


def test_ties_count_half_and_equal_groups_come_out_equal():
    table = rank_frame(judgments([("r", "a", "b", "tie")] * 20 + [("r", "b", "a", "skip")] * 5), bootstrap=50)
    assert np.allclose(table["strength"], 1.0) and set(table["ties"]) == {20} and set(table["n"]) == {20}
    # a won every time: finite (the prior), far above b
    one_sided = rank_frame(judgments([("r", "a", "b", "left")] * 10), bootstrap=50)
    assert one_sided.iloc[0]["group"] == "a" and np.isfinite(one_sided["strength"]).all()
    assert one_sided.iloc[0]["strength"] > 10 * one_sided.iloc[1]["strength"]


def test_bradley_terry_fits_a_stack_at_once():
    wins = np.array([[[0, 8], [2, 0]], [[0, 2], [8, 0]]], float)
    p = bradley_terry(wins)
    assert p.shape == (2, 2) and p[0, 0] > p[0, 1] and p[1, 0] < p[1, 1]


def test_rater_agreement_is_krippendorffs_alpha():
    same = [(r, "a", "b", c) for c in ("left", "right", "tie", "left") for r in ("ann", "bob")]
    agreeing = rater_agreement_frame(judgments(same))
    assert agreeing.iloc[0]["alpha"] == 1.0 and agreeing.iloc[0]["raters"] == 2
    # Two raters who disagree on every one of four pairs: alpha below 0 (worse than chance).
    flip = {"left": "right", "right": "left"}
    rows = []
    for i, c in enumerate(("left", "right", "left", "right")):
        rows += [("ann", f"a{i}", f"b{i}", c), ("bob", f"a{i}", f"b{i}", flip[c])]
    df = judgments(rows)
    df["left_run"], df["right_run"] = df["left_value"], df["right_value"]  # one pair per i, both raters
    df["winner"] = df["left_run"].where(df["choice"] == "left", df["right_run"])
    disagreeing = rater_agreement_frame(df).iloc[0]
    assert disagreeing["alpha"] < 0 and disagreeing["pairs"] == 4
    # By hand: 4 units x 2 coders, values (0,1),(1,0),(0,1),(1,0); n = 8, o_01 = o_10 = 4, n_0 = n_1 = 4;
    # D_o = 8/8 = 1, D_e = (4*4*2)/(8*7) = 4/7, alpha = 1 - D_o/D_e = -0.75.
    assert disagreeing["alpha"] == pytest.approx(-0.75)


def test_metric_agreement_uses_the_direction_and_counts_only_decided_pairs():
    rows = [("r", "a", "b", "left")] * 6 + [("r", "a", "b", "right")] * 2 + [("r", "a", "b", "tie")] * 3
    df = judgments(rows)
    ids = sorted(set(df["left_run"]) | set(df["right_run"]))
    # structure is higher-is-better, warp_error lower-is-better; both favour every a-run over every b-run.
    runs = pd.DataFrame({"run_id": ids, "structure": [0.9 if i.startswith("a") else 0.5 for i in ids],
                         "warp_error": [0.1 if i.startswith("a") else 0.4 for i in ids],
                         "piqe": [30.0] * len(ids)})  # no difference: no vote
    out = metric_agreement_frame(df, runs).set_index("metric")
    assert out.loc["structure", "agreement"] == pytest.approx(6 / 8) and out.loc["structure", "n"] == 8
    assert out.loc["warp_error", "agreement"] == pytest.approx(6 / 8) and out.loc["warp_error", "direction"] == "lower"
    assert "piqe" not in out.index
    assert (out.loc["structure", "ci_low"], out.loc["structure", "ci_high"]) == pytest.approx(wilson(6, 8))


def test_wilson_interval_known_value():
    lo, hi = wilson(8, 10)  # the textbook example: 0.490 .. 0.943
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)


# -- RateView on a real store ---------------------------------------------------------------------------

@pytest.fixture()
def study(rating_study, tmp_path, monkeypatch) -> str:
    folder = copy_study(rating_study, tmp_path / "study")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_pairs_share_source_prompt_and_seed_and_differ_in_the_model(study):
    runs = load_runs("rating")
    pairs = build_pairs(runs, "model")
    assert len(pairs) == 12
    by_id = runs.set_index("run_id")
    for pair in pairs:
        a, b = by_id.loc[list(pair.runs)].itertuples()
        assert (a.video, a.prompt, a.seed, a.ratio) == (b.video, b.prompt, b.seed, b.ratio) and a.model != b.model
    with pytest.raises(InputError, match="^by: "):
        build_pairs(runs, "colour")


def test_rate_view_saves_each_choice_at_once_resumes_and_never_repeats(study):
    from v2v_lab import RateView

    view = RateView("rating", by="model", rater="ann", question="text")
    assert view.total == 12 and view.progress.startswith("0 of 12")
    assert httpx.get(view.left_url).content[4:8] == b"ftyp"  # an mp4, by address
    shown: list[tuple[str, str]] = []
    runs = load_runs("rating").set_index("run_id")
    for i in range(5):
        left, right = view.pair
        shown.append((left, right))
        view.choose(["left", "right", "tie", "skip", "left"][i])
        stored = load_ratings("rating")  # in the store the moment choose() returns
        assert len(stored) == i + 1 and stored.iloc[-1]["left_run"] == left
        assert stored.iloc[-1]["left_value"] == runs.loc[left, "model"]
    assert view.progress.startswith("5 of 12")
    # A new session (a reopened notebook) goes on where the rater stopped, with nothing shown twice.
    again = RateView("rating", by="model", rater="ann", question="text")
    assert again.progress.startswith("5 of 12")
    while again.pair is not None:
        shown.append(again.pair)
        again.choose("right")
    assert len(shown) == 12 == len({frozenset(p) for p in shown}) and again.finished
    assert again.progress.startswith("12 of 12")
    # Sides are random, and each judgment keeps them: the stored left run is the one shown left.
    stored = load_ratings("rating")
    assert [tuple(p) for p in zip(stored["left_run"], stored["right_run"], strict=True)] == shown
    orientations = {left < right for left, right in shown}
    for rater in ("bob", "cy", "dee"):  # (over 48 presentations, both orientations: 1 - 2**-47)
        orientations |= {swapped for _, swapped in presentation(build_pairs(load_runs("rating"), "model"), rater,
                                                                view.question)}
    assert orientations == {True, False}
    assert len(stored) == 12 and set(stored["choice"]) == {"left", "right", "tie", "skip"}
    assert stored["at"].is_monotonic_increasing and (stored["seconds"] >= 0).all()
    with pytest.raises(InputError, match="^choice: "):
        again.choose("left")  # nothing left to rate
    # Asked to, the rater sees the pairs again; the new choices are kept beside the old ones.
    third = RateView("rating", by="model", rater="ann", question="text", again=True)
    assert third.progress.startswith("0 of 12") and third.pair is not None
    # Another question is another set of judgments.
    assert RateView("rating", rater="ann", question="quality").progress.startswith("0 of 12")


def test_a_stale_click_never_judges_the_next_pair_and_bad_input_is_refused(study):
    from v2v_lab import RateView

    view = RateView("rating", rater="bob")
    first = view.pair_id
    view._handle_custom_msg({"choice": "left", "pair": first}, None)  # the click, as the browser sends it
    view._handle_custom_msg({"choice": "left", "pair": first}, None)  # a double click: same pair id
    assert len(load_ratings("rating")) == 1 and view.pair_id != first
    with pytest.raises(InputError, match="^choice: "):
        view.choose("maybe")
    with pytest.raises(InputError, match="^rater: "):
        RateView("rating", rater="'; drop")
    with pytest.raises(InputError, match="^experiment: "):
        RateView("nope", rater="bob")
    with pytest.raises(InputError, match="^question: "):
        RateView("rating", rater="bob", question=" ")
    assert len(load_ratings("rating")) == 1  # nothing stored by the refusals


def test_the_source_comes_on_demand(study, demo_clip):
    from v2v_lab import RateView

    view = RateView("rating", rater="cy")
    assert view.source_url == "" and view.source_video == b""
    view.show_source = True
    assert httpx.get(view.source_url).content == Path(demo_clip).read_bytes()
    inline = RateView("rating", rater="cy", videos="inline")
    inline.show_source = True
    assert inline.source_video == Path(demo_clip).read_bytes() and inline.source_url == ""


def test_videos_go_by_address_from_a_loopback_server_that_serves_only_them(study):
    from v2v_lab import RateView
    from v2v_lab.dashboard.outputs import playable_output

    view = RateView("rating", rater="cy")
    left, right = view.pair
    expected = playable_output(left)[0].read_bytes()
    # The widget state carries addresses, not videos: a saved notebook stays small whatever their size.
    assert view.left_video == view.right_video == b"" and view.left_url.startswith("http://127.0.0.1:")
    state = {k: v for k, v in view.get_state().items() if k not in ("_esm", "_css")}  # the code: fixed size
    assert sum(len(v) if isinstance(v, (bytes, memoryview)) else len(str(v)) for v in state.values()) < 3_000
    assert httpx.get(view.left_url).content == expected
    assert httpx.get(view.right_url).content == playable_output(right)[0].read_bytes()
    # Range requests, as a browser seeks: a slice, the last bytes, past the end.
    part = httpx.get(view.left_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == expected[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(expected)}" and part.headers["content-type"] == "video/mp4"
    assert httpx.get(view.left_url, headers={"Range": "bytes=-50"}).content == expected[-50:]
    assert httpx.get(view.left_url, headers={"Range": f"bytes={len(expected)}-"}).status_code == 416
    assert httpx.head(view.left_url).headers["content-length"] == str(len(expected))
    # Only the registered files, by their unguessable token: no listing, no other path, no traversal.
    base = view.left_url.rsplit("/v/", 1)[0]
    token = view.left_url.split("/v/", 1)[1].split("/")[0]
    assert len(token) >= 20
    for path in ("/", "/v/", f"/v/{token}", f"/v/{'A' * len(token)}/output.mp4", "/v/../../etc/passwd",
                 f"/v/{token}/../../../etc/passwd/x", "/etc/passwd"):
        assert httpx.get(base + path).status_code == 404, path
    # The same file keeps its address (the browser's cache holds); inline mode puts the bytes in the state.
    assert RateView("rating", rater="cy").left_url == view.left_url
    inline = RateView("rating", rater="cy", videos="inline")
    assert inline.left_video == expected and inline.left_url == ""
    with pytest.raises(InputError, match="^videos: "):
        RateView("rating", rater="cy", videos="links")


RATER_SCRIPT = textwrap.dedent("""
    import os, sys
    from v2v_lab import RateView
    view = RateView("rating", rater=sys.argv[1])
    stop_after = int(sys.argv[2])
    n = 0
    while view.pair is not None:
        view.choose("left" if n % 2 else "right")
        n += 1
        if n == stop_after:
            os.kill(os.getpid(), 9)  # a kernel killed mid-session
""")


def _rate_in_process(rater: str, stop_after: int) -> subprocess.Popen:
    env = {**os.environ}
    if os.environ.get("PYTHONPATH") == str(ROOT):
        env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, "-c", RATER_SCRIPT, rater, str(stop_after)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_raters_in_two_processes_at_once_lose_nothing_and_a_killed_one_keeps_its_choices(study):
    procs = [_rate_in_process("ann", 0), _rate_in_process("bob", 0), _rate_in_process("cy", 7)]
    codes = [p.wait(240) for p in procs]
    assert codes[:2] == [0, 0], [p.stderr.read().decode()[-800:] for p in procs[:2]]
    assert codes[2] == -signal.SIGKILL
    stored = load_ratings("rating")
    assert stored.groupby("rater").size().to_dict() == {"ann": 12, "bob": 12, "cy": 7}
    assert stored["id"].is_unique
    # Everyone sees everyone's judgments: agreement over the pairs ann and bob both judged.
    agreement = rater_agreement("rating")
    assert agreement.iloc[0]["pairs"] == 12 and agreement.iloc[0]["raters"] == 3


def test_rank_and_metric_agreement_on_scripted_raters(study):
    from v2v_lab import RateView

    runs = load_runs("rating").set_index("run_id")
    taste = {"gen4_aleph": 3, "aleph2": 2, "gen3a_turbo": 1}
    # One rater with a known taste in models, one who answers as the structure score does.
    by_taste = RateView("rating", rater="taste", question="text")
    while by_taste.pair is not None:
        left, right = by_taste.pair
        by_taste.choose("left" if taste[runs.loc[left, "model"]] > taste[runs.loc[right, "model"]] else "right")
    by_structure = RateView("rating", rater="metric", question="structure")
    while by_structure.pair is not None:
        left, right = by_structure.pair
        by_structure.choose("left" if runs.loc[left, "structure"] > runs.loc[right, "structure"] else "right")
    table = rank("rating", question="text")
    assert list(table["group"]) == ["gen4_aleph", "aleph2", "gen3a_turbo"]
    assert (table["n"] == 8).all() and (table["ci_low"] <= table["strength"]).all()
    assert set(rank("rating")["question"]) == {by_taste.question, by_structure.question}
    with pytest.raises(InputError, match="^by: "):
        rank("rating", by="seed")
    agree = metric_agreement("rating", question="structure").set_index("metric")
    assert agree.loc["structure", "agreement"] == 1.0 and agree.loc["structure", "n"] == 12
    assert agree.index[0] == "structure" or agree.iloc[0]["agreement"] == 1.0
    ssim = agree.loc["ssim_source"]
    expected = np.mean([(runs.loc[w, "ssim_source"] > runs.loc[lo, "ssim_source"])
                        for w, lo in _decided_pairs(load_ratings("rating"), by_structure.question)])
    assert ssim["agreement"] == pytest.approx(expected)


def _decided_pairs(ratings: pd.DataFrame, question: str) -> list[tuple[str, str]]:
    part = ratings[(ratings["question"] == question) & ratings["choice"].isin(["left", "right"])]
    return [(r.left_run, r.right_run) if r.choice == "left" else (r.right_run, r.left_run) for r in part.itertuples()]


# -- active pairs and the stop rule, pure (no store) ------------------------------------------------------

def _study_pairs(groups: str = "abcdef", prompts: int = 4) -> list:
    from itertools import combinations

    from v2v_lab.rating import Pair

    return [Pair(runs=(f"{x}-{p}", f"{y}-{p}"), values=(x, y), prompt=f"prompt {p}", source=None)
            for p in range(prompts) for x, y in combinations(groups, 2)]


def _decided(wins: dict[tuple[str, str], int], rater: str = "r") -> pd.DataFrame:
    """wins[(x, y)] = how often x beat y, as judgments with x shown left."""
    return judgments([(rater, x, y, "left") for (x, y), n in wins.items() for _ in range(n)])


def test_the_posterior_mode_is_the_bradley_terry_fit_rank_reports():
    from v2v_lab.rating import posterior

    wins = np.random.default_rng(3).integers(0, 20, (5, 5)).astype(float) * (1 - np.eye(5))
    assert np.allclose(posterior(wins).theta, np.log(bradley_terry(wins)), atol=1e-7)


def test_the_next_pair_is_the_uncertain_neighbours_not_a_settled_pair():
    from v2v_lab.rating import next_pair

    # a far above b and c; b and c split evenly: only b against c can teach anything.
    ratings = _decided({("a", "b"): 30, ("a", "c"): 30, ("b", "c"): 10, ("c", "b"): 10})
    pair, _ = next_pair(_study_pairs("abc"), ratings, "newcomer", "q")
    assert set(pair.values) == {"b", "c"}
    # d lost to c 12 times in 12: b against d is the least known difference (the most information on
    # the strengths), but its order is clear; b against c is the one whose order is in doubt.
    ratings = _decided({("a", "b"): 30, ("b", "c"): 15, ("c", "b"): 15, ("c", "d"): 12})
    pair, _ = next_pair(_study_pairs("abcd"), ratings, "newcomer", "q")
    assert set(pair.values) == {"b", "c"}


def test_a_group_below_the_exposure_floor_comes_first_whatever_the_scores():
    from v2v_lab.rating import next_pair

    # b and c are the uncertain pair and d's place below c is clear, but d was judged 8 times where the
    # average group was judged 34 times (floor 0.3 x 34): it is served first.
    ratings = _decided({("a", "b"): 30, ("b", "c"): 15, ("c", "b"): 15, ("c", "d"): 8})
    pair, _ = next_pair(_study_pairs("abcd"), ratings, "newcomer", "q")
    assert "d" in pair.values


def test_two_raters_at_once_get_different_pairs_each_never_twice_and_sides_stay_random():
    from v2v_lab.rating import next_pair

    pairs = _study_pairs("abc", prompts=6)
    ratings = _decided({("a", "b"): 30, ("a", "c"): 30, ("b", "c"): 10, ("c", "b"): 10})
    ratings[["left_run", "right_run"]] = "earlier-" + ratings[["left_run", "right_run"]]  # other prompts
    ann, _ = next_pair(pairs, ratings, "ann", "q")
    bob, _ = next_pair(pairs, ratings, "bob", "q")
    assert set(ann.values) == set(bob.values) == {"b", "c"} and ann.key != bob.key
    # A rater never sees a pair twice: with every b-c pair judged by them, they get another.
    mine = {p.key for p in pairs if set(p.values) == {"b", "c"}}
    again, _ = next_pair(pairs, ratings, "ann", "q", judged=mine)
    assert again.key not in mine
    assert next_pair(pairs, ratings, "ann", "q", judged={p.key for p in pairs}) is None
    # Sides: the same chosen pair is shown either way round to different raters, half the time each.
    sides = [next_pair(pairs[:1], ratings, f"rater{i}", "q")[1] for i in range(200)]
    assert 70 < sum(sides) < 130


def test_the_stop_rule_settles_separated_groups_and_never_equal_ones():
    from v2v_lab.rating import settlement, win_matrix

    groups = ["a", "b", "c"]
    # a beats b 4 times in 5, b beats c 4 times in 5: settled at 100 judgments a pair, not at 5.
    clear = {("a", "b"): 80, ("b", "a"): 20, ("b", "c"): 80, ("c", "b"): 20}
    settled = settlement(win_matrix(_decided(clear), groups), groups)
    assert settled.enough and settled.order == ("a", "b", "c") and not settled.unsettled
    assert str(settled) == "ranking settled: a > b > c after 200 judgments"
    few = settlement(win_matrix(_decided({k: v // 20 for k, v in clear.items()}), groups), groups)
    assert not few.enough
    # Equal groups: as many wins as losses (and ties), however many judgments: never settled.
    for n in (10, 100, 1000):
        even = _decided({("a", "b"): n, ("b", "a"): n, ("b", "c"): n, ("c", "b"): n, ("a", "c"): n, ("c", "a"): n})
        verdict = settlement(win_matrix(even, groups), groups)
        assert not verdict.enough and len(verdict.unsettled) == 2
        assert str(verdict).startswith(f"ranking not settled yet: 0 of 2 neighbouring groups separated after {6 * n}")
    tied = judgments([("r", "a", "b", "tie")] * 500)
    assert not settlement(win_matrix(tied, ["a", "b"]), ["a", "b"]).enough


def test_the_order_settles_when_it_is_very_likely_and_coin_flips_between_equal_groups_never_settle():
    from v2v_lab.rating import settlement
    from v2v_lab.rating.active import ORDER_LEVEL, order_probability, posterior

    groups = list("abcdef")

    def chain(last: int) -> np.ndarray:
        # four neighbours far apart (190 to 10), the last two closer: e beats f `last` times in 120
        wins = np.zeros((6, 6))
        for i in range(4):
            wins[i, i + 1], wins[i + 1, i] = 190, 10
        wins[4, 5], wins[5, 4] = last, 120 - last
        return wins

    # e over f is short of its Bonferroni bound, yet the whole order is over 99% likely: settled, the
    # second way, and said so; one judgment fewer for e, and it is not.
    likely = settlement(chain(74), groups)
    assert likely.enough and not likely.by_separation and likely.unsettled == (("e", "f"),)
    assert likely.order_probability >= ORDER_LEVEL
    assert str(likely).endswith("(the order is 99.2% likely; more judgments are very unlikely to change it)")
    assert not settlement(chain(73), groups).enough
    # The probability is the posterior's: for two groups, the normal probability of their difference.
    post = posterior(np.array([[0.0, 36.0], [24.0, 0.0]]))
    z = (post.theta[0] - post.theta[1]) / np.sqrt(post.diff_var()[0, 1])
    assert order_probability(post, np.array([0, 1])) == pytest.approx(NormalDist().cdf(z), abs=0.01)
    # Three equal groups, judged by coin flips (one in ten a tie), the rule asked every 5 judgments up
    # to 600: never settled, in 20 studies.
    for seed in range(20):
        rng, wins = np.random.default_rng(seed), np.zeros((3, 3))
        for t in range(600):
            i, j = rng.choice(3, 2, replace=False)
            flip = rng.random()
            wins[i, j] += 0.5 if flip < 0.1 else float(flip < 0.55)
            wins[j, i] += 0.5 if flip < 0.1 else float(flip >= 0.55)
            if t % 5 == 4:
                verdict = settlement(wins, list("abc"))
                assert not verdict.enough, (seed, t, verdict)


def test_rank_counts_only_clearly_better_groups_and_marks_preliminary_ones():
    rows = [("r", "a", "b", "left")] * 40 + [("r", "b", "a", "left")] * 38 + [("r", "b", "c", "left")] * 60
    rows += [("r", "a", "d", "left")] * 2 + [("r", "d", "a", "left")] * 2
    table = rank_frame(judgments(rows), bootstrap=300).set_index("group")
    # a and b overlap: both rank 1; c is clearly below both (and d); d has 4 judgments: preliminary.
    assert table.loc["a", "rank"] == table.loc["b", "rank"] == 1
    assert table.loc["c", "rank"] == 1 + (table["ci_low"] > table.loc["c", "ci_high"]).sum() >= 3
    assert table.loc["d", "preliminary"] and not table.loc[["a", "b", "c"], "preliminary"].any()
    assert list(rank_frame(judgments(rows), bootstrap=300)["ci_low"]) == sorted(table["ci_low"], reverse=True)


def test_rate_view_picks_actively_from_every_raters_judgments_and_says_when_the_ranking_is_settled(study):
    from v2v_lab import RateView, ranking_settled
    from v2v_lab.rating import next_pair

    runs = load_runs("rating").set_index("run_id")
    taste = {"gen4_aleph": 3, "aleph2": 2, "gen3a_turbo": 1}
    # Raters on one store: a pair just judged by one goes to another only when no other is left.
    ann, bob = RateView("rating", rater="ann"), RateView("rating", rater="bob")
    judged_by_ann = frozenset(ann.pair)
    ann.choose("tie")
    bob.choose("tie")  # bob's pair was chosen before ann's judgment: the next one sees it
    assert frozenset(bob.pair) != judged_by_ann and not ann.enough
    assert "ranking not settled yet: 0 of 2 neighbouring groups separated after 2 judgments" in bob.progress
    # pairs="random" keeps the rater's fixed random order.
    first, swapped = presentation(build_pairs(load_runs("rating"), "model"), "cy", ann.question)[0]
    assert RateView("rating", rater="cy", pairs="random").pair == (first.runs[::-1] if swapped else first.runs)
    with pytest.raises(InputError, match="^pairs: "):
        RateView("rating", rater="cy", pairs="sorted")
    raters = [ann, bob] + [RateView("rating", rater=name) for name in ("cy", "dee", "eve")]
    pairs = build_pairs(load_runs("rating"), "model")
    turns, view = 0, bob
    while not view.enough and turns < 60:  # each view reads every rater's judgments after its own choice
        view = raters[turns % len(raters)]
        left, right = view.pair
        view.choose("left" if taste[runs.loc[left, "model"]] > taste[runs.loc[right, "model"]] else "right")
        turns += 1
        # The pair now shown is active selection's pick from everything in the store at this moment.
        shown = next_pair(pairs, load_ratings("rating"), view.rater, view.question)
        assert view.pair == (None if shown is None else shown[0].runs[::-1] if shown[1] else shown[0].runs)
    assert view.enough and turns < 60, view.progress
    line = f"ranking settled: gen4_aleph > aleph2 > gen3a_turbo after {turns + 2} judgments"  # and the two ties
    assert line in view.progress and str(ranking_settled("rating")) == line
    # Each rater saw each pair at most once.
    stored = load_ratings("rating")
    keys = stored["left_run"].where(stored["left_run"] < stored["right_run"], stored["right_run"])
    assert not pd.DataFrame({"rater": stored["rater"], "pair": keys + stored["left_run"] + stored["right_run"]}
                            ).duplicated().any()


def test_a_tag_that_is_no_judgment_is_said_once_per_view_however_often_it_reads(study):
    from mlflow import MlflowClient

    from v2v_lab import RateView
    from v2v_lab.tracking.judgments import load_judgments

    view = RateView("rating", rater="ann")
    view.choose("left")
    run_id = view.ratings_log.run_id()
    MlflowClient(study).set_tag(run_id, "v2v.judgment.bad", "not json")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):  # the view reads the store again before each pair
            view.choose("right")
        again = RateView("rating", rater="ann")  # a new view says it once more (and reads twice to start)
        said: set[str] = set()
        first, second = load_judgments("rating", warned=said), load_judgments("rating", warned=said)
        load_judgments("rating")  # no set: said at every read
    messages = [str(w.message) for w in seen if "v2v.judgment.bad" in str(w.message)]
    assert len(messages) == 4 and all(run_id in m for m in messages), messages  # view, again, said, no set
    assert said == {f"{run_id}/v2v.judgment.bad"}
    assert len(first) == len(second) == 4 and again.done == 4  # the good judgments all count


def test_on_a_tracking_server_the_page_streams_outputs_from_its_artifact_route(mlflow_server, tmp_path, monkeypatch):
    """A study in a real `mlflow server`: the view gives the server's own address for an output the
    browser plays as it is (nothing downloaded to the kernel), without the URI's password; the address
    answers with the output's bytes and Range requests. A ProRes output still goes as its preview,
    made by the kernel and served from its loopback server."""
    import tempfile

    from mlflow import MlflowClient

    from v2v_lab import RateView, run_sweep
    from v2v_lab.dashboard.outputs import playable_output

    from . import _helpers
    from .conftest import DEMO

    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    spec = _helpers.write_spec(tmp_path, {
        "experiment": "rating_on_server", "provider": "local", "videos": [str(DEMO)], "prompts": ["neon city"],
        "models": ["gen4_aleph", {"aleph2": {"output_format": "prores"}}], "seeds": [1], "ratios": [None],
        "emulator": {"render_scale": 0.25}, "scoring": {"frames": 4, "size": 96}})
    assert run_sweep(spec, tracking_uri=mlflow_server, progress=False).counts == {"succeeded": 2}
    runs = load_runs("rating_on_server", tracking_uri=mlflow_server).set_index("model")
    mp4_run, prores_run = runs.loc["gen4_aleph", "run_id"], runs.loc["aleph2", "run_id"]
    with_password = mlflow_server.replace("http://", "http://ann:s3cret@")
    view = RateView("rating_on_server", rater="ann", tracking_uri=with_password)
    urls = dict(zip(view.pair, (view.left_url, view.right_url), strict=True))
    # The mp4 by the server's own route, the password nowhere in the page's state.
    assert urls[mp4_run].startswith(f"{mlflow_server}/get-artifact?") and view.left_video == view.right_video == b""
    assert "s3cret" not in str(view.get_state()) and "ann:" not in str(view.get_state())
    assert not (Path(tempfile.gettempdir()) / "v2v-lab-artifacts" / mp4_run).exists()  # not downloaded here
    expected = Path(MlflowClient(mlflow_server).download_artifacts(mp4_run, "output.mp4", str(tmp_path))).read_bytes()
    served = httpx.get(urls[mp4_run])
    assert served.status_code == 200 and served.content == expected
    part = httpx.get(urls[mp4_run], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == expected[100:200]
    # The ProRes output: its H.264 preview, from the kernel's loopback server.
    assert urls[prores_run].startswith("http://127.0.0.1:") and "/v/" in urls[prores_run]
    assert httpx.get(urls[prores_run]).content == playable_output(prores_run, mlflow_server)[0].read_bytes()
