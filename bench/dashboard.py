"""Run tables at scale (issue 33, point 3), side by side in one run:

- a database store of 100,000 runs (SQLite): MLflow's store opened once, RunBrowser's first open
  (goal: under 2 s), then medians of load_runs, of opening RunBrowser, and of each filter, sort and
  selection in the browser (goal: under 100 ms each);
- with --server: the team stack (`mlflow server` on PostgreSQL, started here on free ports in a
  temporary folder and stopped at the end) holding 10,000 of the same runs: load_runs through the
  server against load_runs through the database path on the same runs (goal: at most 2x), and
  MlflowClient.search_runs page by page (how the client path read before) beside them.

How the runs are written: MlflowClient writes about 20 runs a second here (100,000 would take an
hour and a half), so the bench writes them once straight into MLflow's tables with MLflow's own
table definitions (mlflow.store.tracking.dbmodels), the rows MlflowClient would have written (the
keys a sweep logs: params, tags, summary metrics and 16-step per-frame series; no videos, since
the browser loads a run's videos only when that run is selected). The experiment is made through
MlflowClient (and through the server for the team stack), so MLflow owns the schema. Before
anything is timed, a small store written both ways must read back as the same load_runs frame.
The SQLite store is kept in the temp folder and reused by the next run of this script.

    python bench/dashboard.py [--runs 100000] [--server [--server-runs 10000]]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_USER

from v2v_lab import load_runs
from v2v_lab.tracking.store import client as make_client

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("gen4_aleph", "aleph2", "gen3a_turbo")
METRICS = ("ssim_source", "temporal_consistency", "temporal_consistency_rel", "warp_error", "flicker")
EXPERIMENT = "bench_dashboard"
USER = "bench"


def cell(i: int, experiment: str, parent: str, rng: random.Random) -> dict[str, Any]:
    """The i-th run as a sweep logs it: name, tags, params, metrics (key -> [(step, value)])."""
    model = MODELS[i % 3]
    status = "failed" if i % 25 == 0 else "succeeded"
    tags = {"v2v.kind": "cell", "v2v.cell_key": f"{i:032x}", "v2v.task_id": f"task-{i}", "v2v.status": status,
            "v2v.failure_code": "INTERNAL.BAD_OUTPUT" if status == "failed" else "", "v2v.experiment": experiment,
            MLFLOW_PARENT_RUN_ID: parent}
    params = {"model": model, "prompt": f"prompt {i % 40} as style {i % 7}", "seed": i, "ratio": "1280:720",
              "video": "bigbuckbunny.mp4", "provider": "local", "repeat": 1}
    metrics = {"latency_s": [(0, rng.uniform(20, 90))], "credits": [(0, 75.0)]}
    if status == "succeeded":
        for m in METRICS:
            metrics[m] = [(0, rng.random())]
            metrics[f"per_frame.{m}"] = [(s, rng.random()) for s in range(16)]
    return {"name": f"{model} s{i}", "tags": tags, "params": {k: str(v) for k, v in params.items()},
            "metrics": metrics, "status": "FINISHED" if status == "succeeded" else "FAILED"}


def write_by_client(uri: str, experiment: str, n: int) -> None:
    """The runs through MlflowClient, as a sweep writes them (for the fidelity check: slow)."""
    client = make_client(uri)
    exp_id = client.create_experiment(experiment)
    parent = client.create_run(exp_id, run_name="bench sweep").info.run_id
    rng, ts = random.Random(0), int(time.time() * 1000)
    for i in range(n):
        run = cell(i, experiment, parent, rng)
        info = client.create_run(exp_id, run_name=run["name"], tags=run["tags"]).info
        metrics = [Metric(k, v, ts, s) for k, points in run["metrics"].items() for s, v in points]
        client.log_batch(info.run_id, metrics=metrics, params=[Param(k, v) for k, v in run["params"].items()])
        client.set_terminated(info.run_id, run["status"])


def _rows(run: dict[str, Any], run_uuid: str, exp_id: int, artifacts: str, ts: int) -> dict[str, list[dict]]:
    tags = {**run["tags"], MLFLOW_RUN_NAME: run["name"], MLFLOW_USER: USER}
    history = [{"key": k, "value": v, "timestamp": ts, "step": s, "is_nan": False, "run_uuid": run_uuid}
               for k, points in run["metrics"].items() for s, v in points]
    latest = {}
    for row in history:  # MLflow's latest value of a key: the highest step
        if row["key"] not in latest or row["step"] >= latest[row["key"]]["step"]:
            latest[row["key"]] = row
    return {
        "runs": [{"run_uuid": run_uuid, "name": run["name"], "source_type": "LOCAL", "source_name": "",
                  "entry_point_name": "", "user_id": USER, "status": run["status"], "start_time": ts,
                  "end_time": ts + 1, "deleted_time": None, "source_version": "", "lifecycle_stage": "active",
                  "artifact_uri": f"{artifacts}/{run_uuid}/artifacts", "experiment_id": exp_id}],
        "tags": [{"key": k, "value": v, "run_uuid": run_uuid} for k, v in tags.items()],
        "params": [{"key": k, "value": v, "run_uuid": run_uuid} for k, v in run["params"].items()],
        "metrics": history,
        "latest_metrics": list(latest.values()),
    }


def write_by_sql(uri: str, database: str, experiment: str, n: int, chunk: int = 2000) -> None:
    """The runs straight into MLflow's tables (database: the SQLAlchemy URL of the store's database;
    the same as uri for a database store). The experiment and the parent run through the client."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag

    client = make_client(uri)
    exp = client.get_experiment(client.create_experiment(experiment))
    parent = client.create_run(exp.experiment_id, run_name="bench sweep").info.run_id
    tables = {"runs": SqlRun.__table__, "tags": SqlTag.__table__, "params": SqlParam.__table__,
              "metrics": SqlMetric.__table__, "latest_metrics": SqlLatestMetric.__table__}
    rng, ts = random.Random(0), int(time.time() * 1000)
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            batch: dict[str, list[dict]] = {name: [] for name in tables}
            for i in range(start, min(n, start + chunk)):
                for name, rows in _rows(cell(i, experiment, parent, rng), uuid.uuid4().hex,
                                        int(exp.experiment_id), exp.artifact_location, ts + i).items():
                    batch[name] += rows
            for name, table in tables.items():  # runs first: the others refer to them
                conn.execute(table.insert(), batch[name])
    engine.dispose()


def check_same_frame(folder: Path, n: int = 30) -> None:
    """A store written through the SQL tables reads back as one written through the client."""
    frames = []
    for how in ("client", "sql"):
        uri = f"sqlite:///{folder / f'check-{how}.db'}"
        if how == "client":
            write_by_client(uri, EXPERIMENT, n)
        else:
            write_by_sql(uri, uri, EXPERIMENT, n)
        df = load_runs(EXPERIMENT, tracking_uri=uri).drop(columns=["run_id", "start_time"])
        frames.append(df.sort_values("task_id").reset_index(drop=True))
    client_df, sql_df = frames
    assert list(client_df.columns) == list(sql_df.columns), (list(client_df.columns), list(sql_df.columns))
    assert client_df.astype(str).equals(sql_df.astype(str)), "the SQL writer's runs do not read back as the client's"


def median_s(action: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        action()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sqlite_store(runs: int) -> str:
    store = Path(tempfile.gettempdir()) / f"v2v-lab-bench-dashboard-{runs}"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    if (store / "complete").exists():
        print(f"reusing the store of {runs} runs in {store}")
        return uri
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    check_same_frame(store)
    t = time.perf_counter()
    write_by_sql(uri, uri, EXPERIMENT, runs)
    (store / "complete").touch()
    print(f"wrote {runs} runs straight into the SQLite tables in {time.perf_counter() - t:.1f} s "
          f"(set-up, not timed below; kept in {store})")
    return uri


def browser_actions(browser: Any) -> dict[str, Callable[[], Any]]:
    """What a person does in RunBrowser, each undone by the next so every repeat does the same work
    (an even number of repeats leaves the browser as it was)."""

    def toggle(widget: Any, value: Any, empty: Any) -> Callable[[], None]:
        def act() -> None:
            widget.value = value if widget.value == empty else empty
        return act

    def select() -> None:
        picks = [value for _, value in browser.run.options if value][1:3]
        browser.run.value = picks[0] if browser.run.value != picks[0] else picks[1]

    lo, hi = browser.metric_range.min, browser.metric_range.max
    return {"filter model": toggle(browser.model, ("aleph2",), ()),
            "filter seed": toggle(browser.seed, tuple(browser.seed.options[:5]), ()),
            "filter prompt": toggle(browser.prompt, "style 3", ""),
            "metric range": toggle(browser.metric_range, (lo + (hi - lo) / 4, hi), (lo, hi)),
            "sort by ssim_source": toggle(browser.sort, "ssim_source", "grid order"),
            "descending": toggle(browser.descending, True, False),
            "select a run": select}


def bench_database(runs: int, repeats: int) -> None:
    from v2v_lab.dashboard import RunBrowser

    uri = sqlite_store(runs)
    # Once per process, whatever reads the store first pays it: importing MLflow's SQL store and
    # opening the store (schema check). Measured alone, then the opening of the browser.
    t = time.perf_counter()
    make_client(uri).search_experiments(max_results=1)
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    browser = RunBrowser(EXPERIMENT, tracking_uri=uri)
    cold_s = time.perf_counter() - t
    assert len(browser.vm.runs) == runs
    load_s = median_s(lambda: load_runs(EXPERIMENT, tracking_uri=uri), repeats)
    open_s = median_s(lambda: RunBrowser(EXPERIMENT, tracking_uri=uri), repeats)
    print(f"{runs} runs, database store: MLflow's store opened once per process {store_s:.2f} s; RunBrowser's "
          f"first open {cold_s:.2f} s (goal < 2 s); medians of {repeats}: open {open_s:.2f} s, load_runs "
          f"{load_s:.2f} s")
    for what, action in browser_actions(browser).items():
        ms = median_s(action, 2 * max(repeats, 3)) * 1000
        print(f"  {what:<22} {ms:6.0f} ms (goal < 100 ms)")


def page_by_page(uri: str, experiment_id: str) -> int:
    """How the client path read before: MlflowClient.search_runs page after page (of 1,000 here:
    the 5,000 it asked for took this loaded server past the 20 s a request may take)."""
    from v2v_lab.tracking.paging import iter_runs

    return sum(1 for _ in iter_runs(make_client(uri), experiment_id, page_size=1000))


@contextmanager
def team_stack(folder: Path) -> Iterator[dict[str, str]]:
    """The team stack on free ports in `folder`, stopped whatever happens."""
    import socket

    def free() -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return str(s.getsockname()[1])

    folder.mkdir(mode=0o755)
    folder.parent.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    env = {**os.environ, "V2V_LAB_TEAM_DIR": str(folder), "V2V_LAB_TEAM_PG_PORT": free(),
           "V2V_LAB_TEAM_S3_PORT": free(), "V2V_LAB_TEAM_MLFLOW_PORT": free()}
    stack = [sys.executable, str(ROOT / "tools" / "team_stack.py")]
    try:
        subprocess.run([*stack, "up"], env=env, capture_output=True, text=True, check=True)
        yield {**json.loads((folder / "stack.json").read_text()), "folder": str(folder)}
    finally:
        subprocess.run([*stack, "down"], env=env, capture_output=True, text=True, check=False)


def bench_server(runs: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, team_stack(Path(tmp) / "team") as ports:
        server = f"http://127.0.0.1:{ports['mlflow']}"
        database = f"postgresql://v2v@127.0.0.1:{ports['pg']}/mlflow"
        t = time.perf_counter()
        write_by_sql(server, database, EXPERIMENT, runs)
        print(f"team stack up; wrote {runs} runs into its PostgreSQL tables in {time.perf_counter() - t:.1f} s "
              "(the experiment through the server)")
        exp_id = make_client(server).get_experiment_by_name(EXPERIMENT).experiment_id
        assert len(load_runs(EXPERIMENT, tracking_uri=server)) == len(load_runs(EXPERIMENT, tracking_uri=database))
        by_db = median_s(lambda: load_runs(EXPERIMENT, tracking_uri=database), repeats)
        by_server = median_s(lambda: load_runs(EXPERIMENT, tracking_uri=server), repeats)
        pages = median_s(lambda: page_by_page(server, exp_id), repeats)
        print(f"{runs} runs, medians of {repeats}: load_runs through the database path {by_db:.2f} s, through "
              f"`mlflow server` {by_server:.2f} s = {by_server / by_db:.1f}x (goal <= 2x); MlflowClient.search_runs "
              f"page by page through the server {pages:.2f} s = {pages / by_db:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000, help="0: the server's part only")
    ap.add_argument("--server", action="store_true", help="also the team stack's `mlflow server` (PostgreSQL)")
    ap.add_argument("--server-runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.runs:
        bench_database(args.runs, args.repeats)
    if args.server:
        bench_server(args.server_runs, args.repeats)


if __name__ == "__main__":
    main()
