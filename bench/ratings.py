"""rank() and metric_agreement() on 5,000 judgments, read from the store as a notebook would (goal:
at most 1 s each).

A fresh SQLite MLflow store gets 300 cell runs (100 prompts x 3 models, scored) and 5,000 judgments
from 5 raters, saved through RatingsLog as RateView saves them. Timed end to end (reading the
judgments, the runs where needed, the bootstrap); printed beside: load_ratings alone and the
Bradley-Terry fit of 1,001 win matrices (the point estimate and 1,000 resamples).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param, RunTag

from v2v_lab import load_ratings, metric_agreement, rank
from v2v_lab.rating import bradley_terry
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judgments", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
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
