"""How long RunBrowser takes to open on an experiment of 10,000 runs (goal: at most 2 s).

The runs are written through MlflowClient to a SQLite MLflow store with the keys a sweep logs
(params, tags, summary metrics and per-frame series); no videos, since the browser loads a run's
videos only when that run is selected. Writing 10,000 runs takes about 8 minutes, so the store is
kept in the temp folder and reused by the next run of this script. Printed beside the opening time:
load_runs alone, by the database read (runs_sql) and by MlflowClient.search_runs, and selecting one run.
"""

from __future__ import annotations

import argparse
import random
import shutil
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
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from v2v_lab.dashboard import RunBrowser

    store = Path(tempfile.gettempdir()) / f"v2v-lab-bench-dashboard-{args.runs}"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    if not (store / "complete").exists():
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        t = time.perf_counter()
        populate(uri, "bench_dashboard", args.runs)
        (store / "complete").touch()
        print(f"wrote {args.runs} runs in {time.perf_counter() - t:.1f} s (set-up, not timed below; kept in {store})")
    else:
        print(f"reusing the store of {args.runs} runs in {store}")
    from v2v_lab.tracking import reader

    # Once per process, whatever reads the store first pays it: importing MLflow's SQL store and
    # opening the store (schema check). Measured alone, then the opening of the browser.
    t = time.perf_counter()
    make_client(uri).search_experiments(max_results=1)
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    RunBrowser("bench_dashboard", tracking_uri=uri)
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    client = make_client(uri)
    by_client = reader._runs_from_client(client, client.get_experiment_by_name("bench_dashboard").experiment_id,
                                         False)
    client_s = time.perf_counter() - t
    assert len(by_client) == args.runs
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
    load_s = statistics.median(load_t)
    print(f"{args.runs} runs: MLflow's store opened once per process {store_s:.2f} s, then RunBrowser's first "
          f"open {cold_s:.2f} s (goal <= 2 s); "
          f"medians of {args.repeats} more: open {statistics.median(open_t):.2f} s, load_runs {load_s:.2f} s "
          f"(the same rows through MlflowClient.search_runs: {client_s:.2f} s, {client_s / load_s:.0f}x), "
          f"select a run {statistics.median(select_t):.2f} s")

if __name__ == "__main__":
    main()
