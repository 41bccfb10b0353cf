"""rank() and metric_agreement() on 5,000 judgments, read from the store as a notebook would (goal:
at most 1 s each); active pairs against random ones in simulation (goal: active needs at most half of
random's judgments), and the time to pick the next pair at 5,000 judgments (goal: under 50 ms).

Simulation: 6 groups with known Bradley-Terry strengths, 40 prompts (600 allowed pairs), 10 raters
taking turns, each never judging a pair twice, each answering at random 10% of the time (a lapse).
After every judgment the stop rule (ranking_settled's) is asked; a run ends when it says enough. The
judgments needed are counted per run, and a false stop is a settled order that is not the true one
(Kendall tau below 1); the column "settled as likely" counts runs the rule's second way settled (the
order ORDER_LEVEL likely under the posterior, not every neighbour separated). The equal-groups line
runs the same simulation on six groups of one strength, where every stop is a false one. Random is RateView's pairs="random": each rater's own shuffled order.

A fresh SQLite MLflow store gets 300 cell runs (100 prompts x 3 models, scored) and 5,000 judgments
from 5 raters, saved through RatingsLog as RateView saves them. Timed end to end (reading the
judgments, the runs where needed, the bootstrap); printed beside: load_ratings alone and the
Bradley-Terry fit of 1,001 win matrices (the point estimate and 1,000 resamples).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param, RunTag

from v2v_lab import load_ratings, metric_agreement, rank
from v2v_lab.rating import Pair, bradley_terry, choose_pair, next_pair, posterior, settlement
from v2v_lab.rating.active import ORDER_LEVEL
from v2v_lab.tracking.judgments import Judgment, RatingsLog
from v2v_lab.tracking.schema import KIND_CELL, KIND_TAG, STATUS_TAG
from v2v_lab.tracking.store import artifact_location
from v2v_lab.tracking.store import client as make_client

MODELS = ("gen4_aleph", "aleph2", "gen3a_turbo")
METRICS = ("ssim_source", "structure", "temporal_consistency", "warp_error", "flicker", "piqe")


def populate(uri: str, experiment: str, prompts: int, judgments: int) -> None:
    client = make_client(uri)
    exp_id = client.create_experiment(experiment, artifact_location=artifact_location(uri, experiment))
    rng = random.Random(0)
    ts = int(time.time() * 1000)
    runs: dict[tuple[int, str], str] = {}
    for p in range(prompts):
        for model in MODELS:
            run = client.create_run(exp_id, tags={KIND_TAG: KIND_CELL, STATUS_TAG: "succeeded"})
            client.log_batch(run.info.run_id, params=[Param("model", model), Param("prompt", f"prompt {p}")],
                             metrics=[Metric(m, rng.random(), ts, 0) for m in METRICS])
            runs[(p, model)] = run.info.run_id
    logs = [RatingsLog(experiment, f"rater{i}", tracking_uri=uri) for i in range(5)]
    strength = {"gen4_aleph": 3.0, "aleph2": 2.0, "gen3a_turbo": 1.0}
    batch: dict[int, list[RunTag]] = {i: [] for i in range(5)}
    for k in range(judgments):
        p = rng.randrange(prompts)
        a, b = rng.sample(MODELS, 2)
        wins = rng.random() < strength[a] / (strength[a] + strength[b])
        choice = rng.choice(["tie", "left" if wins else "right"]) if rng.random() < 0.1 else ("left" if wins else "right")
        rater = k % 5
        j = Judgment(id=uuid.uuid4().hex, rater=f"rater{rater}", question="Which output follows the prompt better?",
                     by="model", left_run=runs[(p, a)], right_run=runs[(p, b)], left_value=a, right_value=b,
                     choice=choice, at=f"2026-11-29T00:{k // 3600 % 60:02d}:{k // 60 % 60:02d}.{k % 1000:03d}+00:00",
                     seconds=2.0)
        batch[rater].append(logs[rater].tag(j))
    for rater, tags in batch.items():  # set-up only: 100 tags a call instead of one a choice
        for i in range(0, len(tags), 100):
            logs[rater].client.log_batch(logs[rater].run_id(), tags=tags[i : i + 100])


SIM_GROUPS = tuple(f"g{i}" for i in range(6))
SIM_STRENGTHS = np.array([10.0, 6.5, 4.0, 2.5, 1.6, 1.0])  # best first: neighbours about 1.6 x apart
LAPSE = 0.10
SIM_RATERS = 10
SIM_PROMPTS = 40
SIM_CAP = 20_000


def sim_pairs() -> list[Pair]:
    return [Pair(runs=(f"{a}-{p}", f"{b}-{p}"), values=(a, b), prompt=f"prompt {p}", source=None)
            for p in range(SIM_PROMPTS) for a, b in itertools.combinations(SIM_GROUPS, 2)]


EQUAL_CAP = 3000  # equal groups: judgments a run may take before it is called never settled


def simulate(policy: str, seed: int, pairs: list[Pair], strengths: np.ndarray = SIM_STRENGTHS,
             cap: int = SIM_CAP) -> tuple[int, bool, str]:
    """Judgments until the stop rule says enough, whether the settled order is the true one, and which
    of the rule's two ways settled it ("separated", "likely"; "" when it never did within `cap`)."""
    rng = np.random.default_rng(seed)
    index = {g: i for i, g in enumerate(SIM_GROUPS)}
    theta = np.log(strengths)
    wins = np.zeros((len(SIM_GROUPS), len(SIM_GROUPS)))
    left = [list(pairs) for _ in range(SIM_RATERS)]  # each rater's pairs not yet judged
    for todo in left:
        rng.shuffle(todo)  # type: ignore[arg-type]  # random: the rater's own order, taken from the end
    counts: dict[str, int] = {}
    post = posterior(wins)
    for t in range(cap):
        rater = t % SIM_RATERS
        if policy == "random":
            pair = left[rater].pop()
        else:
            chosen = choose_pair(left[rater], wins, SIM_GROUPS, f"rater{rater}", "q", pair_counts=counts, post=post)
            assert chosen is not None
            pair = chosen[0]
            left[rater].remove(pair)
        counts[pair.key] = counts.get(pair.key, 0) + 1
        i, j = index[pair.values[0]], index[pair.values[1]]
        p_i = 0.5 if rng.random() < LAPSE else 1 / (1 + np.exp(theta[j] - theta[i]))
        if rng.random() < p_i:
            wins[i, j] += 1
        else:
            wins[j, i] += 1
        post = posterior(wins, start=post.theta)
        verdict = settlement(wins, SIM_GROUPS, post)
        if verdict.enough:
            return t + 1, verdict.order == SIM_GROUPS, "separated" if verdict.by_separation else "likely"
    return cap, False, ""


def bench_active(runs: int) -> None:
    pairs = sim_pairs()
    table = {}
    for policy in ("active", "random"):
        t = time.perf_counter()
        results = [simulate(policy, seed, pairs) for seed in range(runs)]
        needed = [n for n, _, _ in results]
        likely = sum(how == "likely" for _, _, how in results)
        table[policy] = (statistics.median(needed), np.percentile(needed, 10), np.percentile(needed, 90),
                         sum(not right for _, right, _ in results) / runs, likely / runs, time.perf_counter() - t)
    print(f"\nactive vs random pairs: 6 groups (strengths {', '.join(f'{s:g}' for s in SIM_STRENGTHS)}), "
          f"{LAPSE:.0%} lapses, {SIM_RATERS} raters, {runs} runs each")
    print(f"{'pairs':<8}{'median judgments':>18}{'10th pct':>10}{'90th pct':>10}{'false stops':>13}"
          f"{'settled as likely':>19}{'sim time':>10}")
    for policy, (median, p10, p90, false_stops, likely_share, secs) in table.items():
        print(f"{policy:<8}{median:>18.0f}{p10:>10.0f}{p90:>10.0f}{false_stops:>13.1%}{likely_share:>19.1%}{secs:>9.0f}s")
    ratio = table["active"][0] / table["random"][0]
    print(f"active / random = {ratio:.2f} (goal <= 0.50)")


def bench_equal(runs: int) -> None:
    """The stop rule's false-stop rate where there is nothing to find: 6 equal groups, active pairs,
    asked after every judgment up to EQUAL_CAP judgments; any 'enough' is a false stop."""
    pairs = sim_pairs()
    t = time.perf_counter()
    results = [simulate("active", 10_000 + seed, pairs, np.ones(len(SIM_GROUPS)), EQUAL_CAP) for seed in range(runs)]
    by_how = {how: sum(h == how for _, _, h in results) for how in ("separated", "likely")}
    print(f"\nequal groups: 6 groups of one strength, {LAPSE:.0%} lapses, active pairs, {runs} runs of up to "
          f"{EQUAL_CAP} judgments: false stops {(by_how['separated'] + by_how['likely']) / runs:.1%} "
          f"(separated {by_how['separated']}, likely {by_how['likely']}; ORDER_LEVEL {ORDER_LEVEL:g}, goal <= 5%) "
          f"in {time.perf_counter() - t:.0f} s")


def bench_pick(judgments: int, repeats: int) -> None:
    """next_pair as RateView calls it: from a judgments table (6 groups, 100 prompts, 1,500 pairs)."""
    pairs = [Pair(runs=(f"{a}-{p}", f"{b}-{p}"), values=(a, b), prompt=f"prompt {p}", source=None)
             for p in range(100) for a, b in itertools.combinations(SIM_GROUPS, 2)]
    rng = random.Random(1)
    rows = []
    for k in range(judgments):
        pair = rng.choice(pairs)
        rows.append({"rater": f"rater{k % 5}", "left_run": pair.runs[0], "right_run": pair.runs[1],
                     "left_value": pair.values[0], "right_value": pair.values[1],
                     "choice": rng.choice(["left", "right", "left", "right", "tie", "skip"])})
    import pandas as pd

    frame = pd.DataFrame(rows)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        next_pair(pairs, frame, "rater0", "q")
        times.append(time.perf_counter() - t)
    print(f"next pair at {judgments} judgments ({len(pairs)} allowed pairs): median of {repeats} "
          f"{statistics.median(times) * 1000:.1f} ms (goal < 50 ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judgments", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200, help="simulated studies per policy (active, random)")
    ap.add_argument("--only", choices=("store", "active"), help="one part of the bench only")
    args = ap.parse_args()
    if args.only != "store":
        bench_pick(args.judgments, max(args.repeats, 20))
        bench_active(args.runs)
        bench_equal(max(args.runs // 4, 10))
    if args.only == "active":
        return
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        t = time.perf_counter()
        populate(uri, "bench_ratings", 100, args.judgments)
        print(f"wrote 300 runs and {args.judgments} judgments in {time.perf_counter() - t:.1f} s (set-up)")
        load_t, rank_t, agree_t = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ratings = load_ratings("bench_ratings", tracking_uri=uri)
            load_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            table = rank("bench_ratings", tracking_uri=uri)
            rank_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            metric_agreement("bench_ratings", tracking_uri=uri)
            agree_t.append(time.perf_counter() - t)
        assert len(ratings) == args.judgments
        wins = np.random.default_rng(0).integers(0, 50, (1001, 3, 3)).astype(float)
        t = time.perf_counter()
        bradley_terry(wins)
        fit_s = time.perf_counter() - t
        print(f"{args.judgments} judgments, medians of {args.repeats}: rank() {statistics.median(rank_t):.2f} s, "
              f"metric_agreement() {statistics.median(agree_t):.2f} s (goal <= 1 s each); load_ratings alone "
              f"{statistics.median(load_t):.2f} s; Bradley-Terry on 1,001 matrices {fit_s * 1000:.0f} ms")
        print(table[["group", "strength", "ci_low", "ci_high", "n"]].to_string(index=False))


if __name__ == "__main__":
    main()
