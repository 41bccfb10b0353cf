"""How long RunBrowser takes to open on an experiment of 1,000 runs (goal: at most 2 s).

The runs are written straight to a fresh SQLite MLflow store with the keys a sweep logs (params,
tags, summary metrics and per-frame series); no videos, since the browser loads a run's videos
only when that run is selected. Printed beside it: load_runs alone, and selecting one run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from v2v_lab import load_runs
from v2v_lab.tracking.store import client as make_client

MODELS = ("gen4_aleph", "aleph2", "gen3a_turbo")
METRICS = ("ssim_source", "temporal_consistency", "temporal_consistency_rel", "warp_error", "flicker")


def populate(uri: str, experiment: str, n: int) -> None:
    client = make_client(uri)
    exp_id = client.create_experiment(experiment)
    parent = client.create_run(exp_id, run_name="bench sweep").info.run_id
    rng = random.Random(0)
    ts = int(time.time() * 1000)
    for i in range(n):
        model = MODELS[i % 3]
        status = "failed" if i % 25 == 0 else "succeeded"
        tags = {"v2v.kind": "cell", "v2v.cell_key": f"{i:032x}", "v2v.task_id": f"task-{i}", "v2v.status": status,
                "v2v.failure_code": "INTERNAL.BAD_OUTPUT" if status == "failed" else "", "v2v.experiment": experiment,
                MLFLOW_PARENT_RUN_ID: parent}
        run = client.create_run(exp_id, run_name=f"{model} s{i}", tags=tags)
        params = {"model": model, "prompt": f"prompt {i % 40} as style {i % 7}", "seed": i, "ratio": "1280:720",
                  "video": "bigbuckbunny.mp4", "provider": "local", "repeat": 1}
        metrics = [Metric("latency_s", rng.uniform(20, 90), ts, 0), Metric("credits", 75.0, ts, 0)]
        if status == "succeeded":
            for m in METRICS:
                metrics.append(Metric(m, rng.random(), ts, 0))
                metrics += [Metric(f"per_frame.{m}", rng.random(), ts, s) for s in range(16)]
        client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run.info.run_id, "FINISHED" if status == "succeeded" else "FAILED")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from v2v_lab.dashboard import RunBrowser

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        t = time.perf_counter()
        populate(uri, "bench_dashboard", args.runs)
        print(f"wrote {args.runs} runs in {time.perf_counter() - t:.1f} s (set-up, not timed below)")
        load_t, open_t, select_t = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            load_runs("bench_dashboard", tracking_uri=uri)
            load_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            browser = RunBrowser("bench_dashboard", tracking_uri=uri)
            open_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            browser.run.value = browser.run.options[2][1]
            select_t.append(time.perf_counter() - t)
        print(f"medians of {args.repeats}: load_runs {statistics.median(load_t):.2f} s; "
              f"RunBrowser open {statistics.median(open_t):.2f} s (goal <= 2 s); "
              f"select a run {statistics.median(select_t):.2f} s")


if __name__ == "__main__":
    main()
