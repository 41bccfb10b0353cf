"""Dashboards driven in plain pytest (comm's dummy comm): set values, click, read what the panes hold."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import yaml

from v2v_lab.dashboard import CompareView, RunBrowser, RunFilter, RunsViewModel, SweepMonitor
from v2v_lab.sweeps import run_sweep

from .conftest import DEMO


@pytest.fixture()
def store_with_runs(mlflow_store, tmp_path):
    spec = {"experiment": "dash", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph", "gen3a_turbo"],
            "prompts": ["neon city", "a gore scene"], "seeds": [1], "emulator": {"render_scale": 0.25},
            "scoring": {"frames": 6, "size": 96}}
    path = tmp_path / "dash.yaml"
    path.write_text(yaml.safe_dump(spec))
    monitor = SweepMonitor()
    run_sweep(str(path), progress=False, on_event=monitor.on_event)
    return monitor


def test_viewmodel_filters_sorts_selects():
    df = pd.DataFrame({"run_id": ["a", "b", "c"], "model": ["m1", "m2", "m1"], "seed": [1, 2, 3],
                       "ratio": ["r", "r", "q"], "status": ["succeeded"] * 3, "prompt": ["Neon", "noir", "x"],
                       "ssim_source": [0.2, 0.9, 0.5], "start_time": [1, 2, 3]})
    vm = RunsViewModel(df)
    vm.filter = RunFilter(models=("m1",))
    assert list(vm.table()["run_id"]) == ["a", "c"]
    vm.filter = RunFilter(prompt_contains="neo")
    assert list(vm.table()["run_id"]) == ["a"]
    vm.filter = RunFilter(seeds=(2, 3))
    assert list(vm.table()["run_id"]) == ["c", "b"]  # the grid's order: model m1 before m2
    vm.filter = RunFilter(ratios=("q",), statuses=("succeeded",))
    assert list(vm.table()["run_id"]) == ["c"]
    vm.filter = RunFilter(metric_ranges={"ssim_source": (0.4, 1.0)})
    vm.sort_by, vm.ascending = "ssim_source", False
    assert list(vm.table()["run_id"]) == ["b", "c"]
    assert vm.select("c")["seed"] == 3 and vm.select("zz") is None


def test_run_browser_filters_and_shows_a_run(store_with_runs):
    browser = RunBrowser("dash")
    assert browser.experiment.value == "dash"
    assert "<table" in browser.table.value and browser.table.value.count("<tr") == 5  # header + 4 runs
    # Something to look at from the start: the first row of the grid's order is selected and shown.
    assert browser.sort.value == "grid order" and browser.run.value == browser.vm.table()["run_id"].iloc[0]
    assert browser.detail.children and "fff3c4" in browser.table.value
    assert "ssim_source ↑" in browser.table.value  # each metric's header says which way is better
    assert "4 of 4 runs (no filter)" in browser.shown.value
    browser.model.value = ("gen3a_turbo",)
    assert browser.table.value.count("data-run") == 2
    assert "2 of 4 runs · model: gen3a_turbo" in browser.shown.value  # what the multi-selects hold, said
    browser.status.value = ("failed",)
    assert browser.table.value.count("data-run") == 1 and "SAFETY.INPUT.TEXT" in browser.table.value
    # A failed cell without output shows as such, not as a traceback.
    browser.run.value = browser.run.options[1][1]
    text = " ".join(_texts(browser.detail))
    assert "no output video" in text and "SAFETY.INPUT.TEXT" in text
    browser.status.value = ("succeeded",)
    browser.run.value = browser.run.options[1][1]
    videos = [c for c in _walk(browser.detail) if c.__class__.__name__ == "Video"]
    assert len(videos) == 2  # source and output side by side
    assert all(v.autoplay is False and v.loop is True for v in videos)
    assert videos[0].value == DEMO.read_bytes()
    # Per-frame charts: one bqplot figure per metric, on the clip's time axis, lines lined up.
    charts = [c for c in _walk(browser.detail) if c.__class__.__name__ == "Figure"]
    assert {c.title.split()[0] for c in charts} >= {"ssim_source", "temporal_consistency", "temporal_consistency_rel",
                                                    "flicker", "warp_error", "piqe"}
    # Ticks on round values, in the digits they need: warp_error's ~1e-4 values are not all "0.000".
    warp = next(c for c in charts if c.title.startswith("warp_error"))
    ticks = list(warp.axes[1].tick_values)
    assert warp.axes[1].tick_format == ".3~g" and len(set(ticks)) >= 3 and max(ticks) < 0.1
    assert all(abs(t / (ticks[1] - ticks[0]) - round(t / (ticks[1] - ticks[0]))) < 1e-6 for t in ticks)
    assert all(c.axes[0].label == "time in the clip (s)" for c in charts)
    assert len({(float(c.marks[0].x[0]), float(c.axes[0].scale.min)) for c in charts}) == 1  # every line starts alike
    assert "failure" not in " ".join(_texts(browser.detail)).split("status")[1].split("</b>")[1][:40]
    # A range on another metric: narrowing it to one run's value keeps that run only.
    browser.status.value, browser.model.value = (), ()
    browser.range_metric.value = "temporal_consistency"
    assert browser.table.value.count("data-run") == 4  # full span: no filter, failed runs included
    target = browser.vm.runs.dropna(subset=["temporal_consistency"]).iloc[0]["temporal_consistency"]
    browser.metric_range.value = (target - 1e-4, target + 1e-4)
    assert browser.table.value.count("data-run") == 1
    # A row clicked in the table selects its run, as the dropdown does.
    other = browser.run.options[1][1]
    browser.table.selected = other
    assert browser.run.value == other and browser.vm.selected == other
    assert "background" in browser.table.value  # and the table marks it


def test_load_runs_reads_the_database_and_the_client_alike(store_with_runs, monkeypatch):
    """The fast path (SELECTs on MLflow's tables) and MlflowClient.search_runs give the same frame;
    MLflow changing its tables fails this test, not a user's dashboard."""
    from v2v_lab import load_runs
    from v2v_lab.tracking import load_series, reader

    fast = [load_runs("dash"), load_runs("dash", include_parents=True), load_runs("dash", model="gen4_aleph")]
    run = fast[0]["run_id"].iloc[0]
    fast_series = [load_series(run, m) for m in ("ssim_source", "flicker", "no_such_metric")]
    monkeypatch.setattr(reader, "is_database", lambda uri: False)
    slow = [load_runs("dash"), load_runs("dash", include_parents=True), load_runs("dash", model="gen4_aleph")]
    for a, b in zip(fast, slow, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert fast_series == [load_series(run, m) for m in ("ssim_source", "flicker", "no_such_metric")]
    assert len(fast_series[0]) > 1 and fast_series[2] == []
    assert len(fast[0]) == 4 and len(fast[1]) == 5 and len(fast[2]) == 2
    assert fast[0]["failure"].map(lambda v: v is None or isinstance(v, str)).all()


def test_run_browser_links_to_mlflow_with_the_experiment_id(store_with_runs):
    browser = RunBrowser("dash", mlflow_ui_url="http://127.0.0.1:5000/")
    row = browser.vm.runs.iloc[0]
    browser.run.value = row["run_id"]
    links = [t for t in _texts(browser.detail) if "open in MLflow" in t]
    assert links and f"#/experiments/{row['experiment_id']}/runs/{row['run_id']}" in links[0]


def test_compare_view_summary_grid_and_play(store_with_runs):
    view = CompareView("dash", by="model", baseline="gen4_aleph")
    table = view.summary_table()
    assert set(table["group"]) == {"gen4_aleph", "gen3a_turbo"}
    # The summary says what its intervals and tests are against, in a styled table of its own.
    summary = view.summary.value
    assert "mean [95% CI]" in summary and "difference vs gen4_aleph [95% CI]" in summary
    assert "p vs gen4_aleph (Holm)" in summary and "verdict vs gen4_aleph" in summary
    assert "<table class='v2v-summary'>" in summary and "dataframe" not in summary
    verdict_cells = [v for v in table["verdict"] if v != "baseline"]
    assert verdict_cells and all(f">{v}" in summary for v in verdict_cells)
    figure = next(c for c in _walk(view.scatter) if c.__class__.__name__ == "Figure")
    assert [a.label for a in figure.axes] == ["ssim_source (range -1..1, higher is better)",
                                              "temporal_consistency (range -1..1, higher is better)"]
    marks = figure.marks
    assert len(marks) == 2 and all(len(m.x) == len(m.names) for m in marks)
    assert all(" · seed 1 · " in name and "ssim_source" in name for m in marks for name in m.names)
    marks[0]._handle_custom_msg({"event": "element_click", "data": {"index": 0}}, None)  # a point clicked
    assert len(view.player.outputs) == 1
    buttons = [c for c in _walk(view.grid) if c.__class__.__name__ == "Button"]
    assert buttons
    buttons[0].click()
    assert len(view.player.outputs) == 1
    # Thumbnails sized for display: JPEGs 320 px wide, a few KB each.
    images = [c for c in _walk(view.grid) if c.__class__.__name__ == "Image"]
    assert images and all(i.format == "jpeg" and str(i.width) == "320" and len(i.value) < 40_000 for i in images)
    assert all("seed 1 · " in t for t in _texts(view.grid) if "ssim" in t)


def test_compare_view_by_prompt_puts_models_on_rows(store_with_runs):
    view = CompareView("dash", by="prompt", metric="temporal_consistency")
    assert view.groups == ["a gore scene", "neon city"]
    labels = [t for t in _texts(view.grid)]
    assert "gen3a_turbo" in labels and "gen4_aleph" in labels
    # Failed cells have no poster: said in the cell, not raised.
    assert sum("no output" in t for t in labels) == 2
    assert view.baseline.value == "neon city"  # the default baseline is a group with scores
    view.baseline.value = "a gore scene"  # every cell of it failed
    assert "no comparison" in view.summary.value


def test_sweep_monitor_counts(store_with_runs):
    monitor = store_with_runs
    assert monitor.counts["succeeded"] == 2 and monitor.counts["failed"] == 2
    assert "succeeded 2" in monitor.state.value and "credits" in monitor.state.value
    posters = [c for c in _walk(monitor.outputs) if c.__class__.__name__ == "Image"]
    assert len(posters) == 2 and all(p.value[:2] == b"\xff\xd8" and len(p.value) < 30_000 for p in posters)


def test_sweep_monitor_runs_in_the_background_and_estimates_time_left(mlflow_store, tmp_path):
    from v2v_lab.emulator import Emulator

    spec = {"experiment": "bg", "provider": "local", "videos": [str(DEMO)], "prompts": ["noir"],
            "seeds": [1, 2, 3, 4], "concurrency": 1, "scoring": {"enabled": False}}
    path = tmp_path / "bg.yaml"
    with Emulator(render_scale=0.1, run_s=0.4) as emu:
        path.write_text(yaml.safe_dump({**spec, "base_url": emu.base_url}))
        monitor = SweepMonitor()
        running = monitor.run(str(path))
        seen_eta = False
        while not running.done():  # the caller's thread is free meanwhile
            seen_eta = seen_eta or monitor.eta_s() is not None
            time.sleep(0.05)
        result = monitor.wait()
    assert monitor.error is None and result.counts == {"succeeded": 4}
    assert seen_eta and "left" not in monitor.state.value  # an estimate while running, none at the end


def test_empty_experiment_is_said_not_raised(mlflow_store):
    import mlflow

    mlflow.MlflowClient().create_experiment("empty")
    browser = RunBrowser("empty")
    assert "no runs" in browser.table.value
    assert "no runs" in CompareView("empty").grid.children[0].value


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _texts(widget):
    """The text of every HTML-like widget under `widget` (videos and images hold bytes)."""
    return [c.value for c in _walk(widget) if isinstance(getattr(c, "value", None), str)]


def test_load_runs_through_a_server_reads_every_run_once_as_the_client_does(mlflow_server, monkeypatch):
    """A tracking server's runs are read as the REST search's JSON in time slices searched side by
    side (tracking/runs_rest): runs on a slice's bounds, a NaN metric and the parents' runs
    included, the frame is MlflowClient.search_runs', every run once."""
    from mlflow import MlflowClient

    from v2v_lab import load_runs
    from v2v_lab.tracking import reader, runs_rest

    client = MlflowClient(mlflow_server)
    exp = client.create_experiment("sliced")
    parent = client.create_run(exp, start_time=1000, tags={"v2v.kind": "sweep"}).info.run_id
    starts = [1000, 1000, 1001, 1750, 1751, 1751, 2501, 2502, 3253, 4000, 4000]  # on and beside the bounds
    for i, start in enumerate(starts):
        run = client.create_run(exp, start_time=start, tags={"v2v.kind": "cell", "v2v.status": "succeeded",
                                                             "mlflow.parentRunId": parent})
        client.log_param(run.info.run_id, "model", ["gen4_aleph", "aleph2"][i % 2])
        client.log_param(run.info.run_id, "seed", str(i))
        client.log_metric(run.info.run_id, "ssim_source", float("nan") if i == 3 else i / 10)
        client.log_metric(run.info.run_id, "per_frame.ssim_source", 0.5, step=3)
    assert runs_rest._slices(1000, 4000, 4)[1] == "attributes.start_time >= 1751 and attributes.start_time < 2502"
    fast = [load_runs("sliced", tracking_uri=mlflow_server),
            load_runs("sliced", tracking_uri=mlflow_server, include_parents=True)]
    monkeypatch.setattr(reader, "is_server", lambda uri: False)
    slow = [load_runs("sliced", tracking_uri=mlflow_server),
            load_runs("sliced", tracking_uri=mlflow_server, include_parents=True)]
    for a, b in zip(fast, slow, strict=True):
        pd.testing.assert_frame_equal(a.sort_values("run_id").reset_index(drop=True),
                                      b.sort_values("run_id").reset_index(drop=True))
    assert len(fast[0]) == len(set(fast[0]["run_id"])) == len(starts) and len(fast[1]) == len(starts) + 1
    assert fast[0]["ssim_source"].isna().sum() == 1 and "per_frame.ssim_source" not in fast[0].columns


def _reference_table(vm: RunsViewModel) -> list[str]:
    """What the view model's table was before it kept anything: filter the rows, then sort them."""
    f, df = vm.filter, vm.runs
    for col, allowed in (("model", f.models), ("ratio", f.ratios), ("seed", f.seeds), ("status", f.statuses)):
        if allowed:
            df = df[df[col].isin(allowed)]
    if f.prompt_contains:
        df = df[df["prompt"].fillna("").str.contains(f.prompt_contains, case=False, regex=False)]
    for metric, (lo, hi) in f.metric_ranges.items():
        df = df[df[metric].between(lo, hi)]
    keys = ["model", "prompt", "seed", "ratio"] if vm.sort_by == "grid order" else [vm.sort_by]
    return list(df.sort_values(keys, ascending=vm.ascending, na_position="last", kind="stable")["run_id"])


def test_viewmodel_kept_orders_and_filters_give_what_filtering_then_sorting_gives():
    """The view model keeps each sort order and each column's distinct values (100,000-run studies):
    the filter changed in place, as the browser does, and missing values included, its table is
    the one a fresh filter-then-sort gives."""
    import random

    rng = random.Random(1)
    n = 300
    df = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)],
                       "model": [rng.choice(["m1", "m2", None]) for _ in range(n)],
                       "prompt": [rng.choice(["Neon city", "noir", "neon", None]) for _ in range(n)],
                       "seed": pd.array([rng.choice([1, 2, 3, None]) for _ in range(n)], dtype="Int64"),
                       "ratio": [rng.choice(["r", "q"]) for _ in range(n)],
                       "status": [rng.choice(["succeeded", "failed"]) for _ in range(n)],
                       "ssim_source": [rng.choice([rng.random(), float("nan")]) for _ in range(n)]})
    vm = RunsViewModel(df)
    settings = [dict(models=("m1",)), dict(prompt_contains="NEON"), dict(seeds=(2, 3)), dict(seeds=(1,)),
                dict(statuses=("failed",)), dict(statuses=("succeeded",)), dict(prompt_contains="noir"),
                dict(metric_ranges={"ssim_source": (0.3, 0.8)}), dict(models=("m2",), ratios=("q",), seeds=(1,)), {}]
    for sort_by in ("grid order", "ssim_source", "seed"):
        for ascending in (True, False):
            for setting in settings:
                vm.filter.__init__(**setting)  # changed in place, as RunBrowser.refresh does
                vm.sort_by, vm.ascending = sort_by, ascending
                assert list(vm.table()["run_id"]) == _reference_table(vm), (sort_by, ascending, setting)
    picked = vm.select("r7")
    assert picked is not None and picked["run_id"] == "r7" and vm.select("nope") is None


def test_every_value_of_a_filter_stays_reachable_past_the_thousand_it_lists(mlflow_store):
    """A study of random seeds has one per run: the seed filter lists at most FILTER_CHOICES of them,
    and the box under it finds any other (the 1,500th here), which can then be chosen; what was
    chosen stays chosen, and listed, whatever is typed next."""
    from mlflow import MlflowClient

    from v2v_lab.dashboard.choices import FILTER_CHOICES

    n = FILTER_CHOICES + 600
    ids = [f"r{i}" for i in range(n)]
    client = MlflowClient(mlflow_store)
    exp = client.create_experiment("seeds")
    for i in (0, 1499):  # the runs the browser shows (the first row, as filtered): real ones
        ids[i] = client.create_run(exp).info.run_id
    runs = pd.DataFrame({"run_id": ids, "model": ["m1"] * n, "seed": list(range(n)),
                         "ratio": ["r"] * n, "status": ["succeeded"] * n, "prompt": ["p"] * n,
                         "ssim_source": [i / n for i in range(n)]})
    browser = RunBrowser()
    browser.show_runs(runs)
    seeds = browser.choices["seed"]
    assert len(browser.seed.options) == FILTER_CHOICES and seeds.find.layout.display != "none"
    assert browser.choices["model"].find.layout.display == "none"  # one value: nothing to find
    assert "1499" not in browser.seed.options
    seeds.find.value = "1499"
    assert browser.seed.options == ("1499",)
    browser.seed.value = ("1499",)
    assert list(browser.vm.table()["run_id"]) == [ids[1499]] and browser.table.value.count("data-run") == 1
    seeds.find.value = "3"  # narrowed again: the chosen value stays listed and chosen, the table as it was
    assert browser.seed.value == ("1499",) and all("3" in v or v == "1499" for v in browser.seed.options)
    seeds.find.value = ""
    assert browser.seed.value == ("1499",) and browser.seed.options[-1] == "1499"
    assert len(browser.seed.options) == FILTER_CHOICES + 1
    assert browser.table.value.count("data-run") == 1
    seeds.find.value = "1530"
    assert browser.seed.options == ("1499", "1530")
    browser.seed.value = ("1499", "1530")
    assert list(browser.vm.table()["seed"]) == [1499, 1530]
