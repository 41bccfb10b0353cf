"""A model's own fields (duration, audio, resolution...) on the read side: typed columns from
load_runs, a pairing key and a `by` in compare and CompareView, filters and columns in RunBrowser,
and columns in `v2v-lab runs`. Runs are logged as a sweep logs them (records.cell_record through
SweepWriter) with each option a cell sets as a param by its snake_case name, on a real SQLite store."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from v2v_lab import load_runs
from v2v_lab.cli import main
from v2v_lab.dashboard import CompareView, RunBrowser
from v2v_lab.errors import InputError
from v2v_lab.sweeps.plan import build_plan
from v2v_lab.sweeps.spec import SweepSpec
from v2v_lab.tracking import compare, compare_frame
from v2v_lab.tracking.records import cell_record
from v2v_lab.tracking.schema import STATUS_SUCCEEDED
from v2v_lab.tracking.writer import SweepWriter

from .conftest import DEMO

CLI = str(Path(sys.executable).with_name("v2v-lab"))
LONG_PROMPT = "a slow dolly shot through a rain-soaked neon market, lanterns <b>bold</b> swaying"  # 78 chars
RESCORED = "structure.size128.frames16"


def _metric(cell, options: dict) -> float:
    """A known answer: duration 5 is 0.1 above duration 3, audio adds 0.05, each seed 0.01."""
    return round(0.5 + 0.1 * (options.get("duration") == 5) + 0.05 * bool(options.get("audio"))
                 + 0.01 * cell.seed + (0.2 if cell.model == "hailuo3" else 0.0), 6)


def _variants(cell) -> list[dict]:
    if cell.model == "seedance2":
        return [{"duration": d, "audio": a} for d in (3, 5) for a in (True, False)]
    if cell.model == "hailuo3":
        return [{"resolution": "2k"}]
    return [{}]  # gen4_aleph takes none of them


@pytest.fixture(scope="module")
def _logged_study(tmp_path_factory) -> str:
    """24 cells: seedance2 x duration {3, 5} x audio {true, false}, gen4_aleph with no options,
    hailuo3 (no seed: its runs log none) at resolution 2k; two prompts (one long), two seeds.
    Logged once for the module (the tests only read it)."""
    folder = tmp_path_factory.mktemp("options")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("V2V_LAB_HOME", str(folder / "state"))
        _log_study(uri)
    return uri


@pytest.fixture()
def option_study(_logged_study, monkeypatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _logged_study)
    return _logged_study


def _log_study(uri: str) -> None:
    spec = SweepSpec.model_validate({"experiment": "opts", "provider": "local", "videos": [str(DEMO)],
                                     "models": ["seedance2", "gen4_aleph", "hailuo3"],
                                     "prompts": ["neon city", LONG_PROMPT], "seeds": [1, 2]})
    writer = SweepWriter("opts", uri)
    try:
        for plain in build_plan(spec).cells:
            for options in _variants(plain):
                cell = dataclasses.replace(plain, options=options,
                                           key=plain.key + "-" + "-".join(f"{k}{v}" for k, v in options.items()))
                record = cell_record(cell, experiment="opts", provider="local", api_version="test", user_tags={},
                                     status=STATUS_SUCCEEDED, task_id="t")
                params = {**record.params, **cell.options}  # as records.py writes them: one param per option
                if cell.model == "hailuo3":
                    params.pop("seed")  # unseeded repeats log no seed
                metrics = {**record.metrics, "ssim_source": _metric(cell, options)}
                if cell.seed == 1:
                    metrics[RESCORED] = 0.25  # a value rescore wrote under the name that says how
                writer.log_cell(name=record.name, params=params, tags=record.tags, metrics=metrics, series={},
                                artifacts={}, task=None, prompt=cell.prompt, frames_csv=None)
    finally:
        writer.close()


def test_load_runs_types_each_option_a_run_set(option_study, monkeypatch):
    runs = load_runs("opts")
    assert len(runs) == 24
    options = ["audio", "duration", "resolution"]
    assert [c for c in runs.columns if c in options] == options  # after the fixed params, the catalog's order
    assert list(runs.columns).index("audio") > list(runs.columns).index("repeat")
    assert str(runs["duration"].dtype) == "Int64" and str(runs["audio"].dtype) == "boolean"
    assert runs["resolution"].dtype == object
    seedance = runs[runs["model"] == "seedance2"]
    assert sorted(seedance["duration"].unique()) == [3, 5] and set(seedance["audio"]) == {True, False}
    others = runs[runs["model"] != "seedance2"]
    assert others["duration"].isna().all() and others["audio"].isna().all()  # runs that lack it hold NA
    assert set(runs.loc[runs["model"] == "hailuo3", "resolution"]) == {"2k"}
    assert runs.loc[runs["model"] != "hailuo3", "resolution"].map(lambda v: v is None).all()
    assert runs.loc[runs["model"] == "hailuo3", "seed"].isna().all()
    assert "aspect" not in runs.columns and "output_format" not in runs.columns  # no column nobody set
    assert len(load_runs("opts", duration=5)) == 8 and len(load_runs("opts", audio=True, duration=3)) == 4
    # The SQL fast path and the client's search_runs read the same frame.
    from v2v_lab.tracking import reader

    monkeypatch.setattr(reader, "is_database", lambda uri: False)
    pd.testing.assert_frame_equal(runs, load_runs("opts"))


def test_an_option_that_only_looks_like_a_number_stays_text(mlflow_store):
    """The catalog types prores_profile a string: "422" is not the integer 422."""
    import mlflow

    from v2v_lab.tracking.schema import KIND_CELL, KIND_TAG, STATUS_TAG

    mlflow.set_experiment("prores")
    for profile in ("422", "4444"):
        with mlflow.start_run(tags={KIND_TAG: KIND_CELL, STATUS_TAG: STATUS_SUCCEEDED}):
            mlflow.log_params({"model": "aleph2", "seed": 1, "output_format": "prores", "prores_profile": profile})
    runs = load_runs("prores")
    assert sorted(runs["prores_profile"]) == ["422", "4444"] and runs["prores_profile"].dtype == object


def test_compare_by_an_option_pairs_only_within_equal_other_options(option_study):
    table = compare("opts", by="duration", metric="ssim_source").set_index("group")
    assert list(table.index) == ["3", "5"] and list(table["n"]) == [8, 8]
    # 2 prompts x 2 seeds x 2 audio values: each duration-5 cell pairs with the duration-3 cell of its audio.
    assert table.loc["5", "pairs"] == 8 and table.loc["5", "diff"] == pytest.approx(0.1)
    assert table.loc["5", "diff_ci_low"] == pytest.approx(0.1) and table.loc["5", "diff_ci_high"] == pytest.approx(0.1)
    by_audio = compare("opts", by="audio", metric="ssim_source").set_index("group")
    assert by_audio.loc["True", "pairs"] == 8 and by_audio.loc["True", "diff"] == pytest.approx(0.05)
    # Cells that differ in another option are not a pair: duration 3 with audio only, 5 without.
    runs = load_runs("opts")
    crossed = runs[(runs["duration"] == 3) & runs["audio"].fillna(False) | (runs["duration"] == 5) & ~runs["audio"]
                   .fillna(True)]
    assert len(crossed) == 8
    assert compare_frame(crossed, by="duration", metric="ssim_source").set_index("group").loc["5", "pairs"] == 0
    # By model: gen4_aleph sets no duration, so seedance2's four cells per design cell cannot be matched
    # one to one: said, and never averaged into one pair.
    models = compare("opts", by="model", metric="ssim_source", baseline="gen4_aleph").set_index("group")
    assert models.loc["seedance2", "pairs"] == 0 and pd.isna(models.loc["seedance2", "diff"])
    assert models.loc["seedance2", "note"].startswith("not paired: its cells differ in audio and duration")
    assert models.loc["seedance2", "verdict"] == "undecided"
    # One duration and one audio kept: seedance2 pairs with gen4_aleph on prompt and seed.
    one = runs[(runs["model"] != "seedance2") | (runs["duration"] == 5) & runs["audio"].fillna(False)]
    kept = compare_frame(one, by="model", metric="ssim_source", baseline="gen4_aleph").set_index("group")
    assert kept.loc["seedance2", "pairs"] == 4 and kept.loc["seedance2", "note"] == ""
    assert kept.loc["seedance2", "diff"] == pytest.approx(0.1 + 0.05)
    assert models.loc["hailuo3", "pairs"] == 0  # no seed to match (unseeded repeats)


def test_an_unknown_by_is_one_line_naming_the_options_too(option_study):
    with pytest.raises(InputError) as caught:
        compare("opts", by="durations", metric="ssim_source")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("by: ")
    assert all(name in message for name in ("model", "seed", "prompt", "duration", "audio", "resolution"))
    assert "output_format" not in message  # no run set it


def _rows(browser: RunBrowser) -> int:
    return browser.table.value.count("data-run")


def test_run_browser_filters_on_the_options_the_study_varies(option_study):
    browser = RunBrowser("opts")
    assert list(browser.option_filters) == ["audio", "duration", "resolution"]
    duration = browser.option_filters["duration"]
    assert list(duration.options) == ["3", "5"]
    assert _rows(browser) == 24
    head = browser.table.value.split("</thead>")[0]
    assert all(f"<th>{c}</th>" in head for c in ("duration", "audio", "resolution"))
    duration.value = ("5",)
    assert _rows(browser) == 8
    browser.option_filters["audio"].value = ("True",)
    assert _rows(browser) == 4
    assert set(browser.vm.table()["duration"]) == {5} and set(browser.vm.table()["audio"]) == {True}
    duration.value, browser.option_filters["audio"].value = (), ()
    browser.option_filters["resolution"].value = ("2k",)
    assert _rows(browser) == 4 and "hailuo3" in browser.table.value and "seedance2" not in browser.table.value
    assert "&lt;b&gt;bold&lt;/b&gt;" in browser.table.value and "<b>bold" not in browser.table.value  # escaped


def test_compare_view_by_an_option(option_study):
    view = CompareView("opts", by="duration")
    assert view.groups == ["3", "5"] and view.baseline.value == "3"
    table = view.summary_table().set_index("group")
    assert table.loc["5", "pairs"] == 8 and table.loc["5", "diff"] == pytest.approx(0.1)
    # The summary as a person reads it: the metric's direction, intervals, and a verdict per group.
    summary = view.summary.value
    assert "class='v2v-summary'" in summary and "ssim_source ↑ mean [95% CI]" in summary and "<style>" in summary
    assert "<td class='v2v-unclear'>baseline</td>" in summary and "<td class='v2v-better'>better</td>" in summary
    assert "dataframe" not in summary  # not pandas' raw table with its double borders
    assert {"duration", "audio", "resolution", "model"} <= set(view.by_choice.options)
    headers = [c.value for c in view.grid.children[1:3]]
    assert headers == ["<b>3</b>", "<b>5</b>"]
    view.by_choice.value = "audio"  # the `by` picked in the view: groups, summary and grid follow
    assert view.by == "audio" and view.groups == ["False", "True"]
    assert view.summary_table().set_index("group").loc["True", "diff"] == pytest.approx(0.05)
    with pytest.raises(InputError, match="^by: "):
        CompareView("opts", by="durations")


def _runs_cli(*args: str) -> subprocess.CompletedProcess:
    """The command as typed, through the console script, on a terminal 200 columns wide."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([CLI, "runs", *args], env=env, capture_output=True, text=True, timeout=120)


def test_runs_command_shows_the_design_the_study_varies(option_study):
    done = _runs_cli("opts")
    assert done.returncode == 0, done.stderr
    table, spend = done.stdout.split("\n\n")
    lines = table.splitlines()
    # Below the table, what each model's cells cost, as the server (the emulator) said.
    assert [line.split(":")[0] for line in spend.splitlines()] == ["spent on gen4_aleph", "spent on hailuo3",
                                                                "spent on seedance2"]
    header = lines[0].split()
    design = ["model", "audio", "duration", "resolution", "prompt", "seed", "ratio"]
    assert [c for c in header if c in design] == design  # the grid's order: a model with its own fields
    assert header[0] == "status" and "ssim_source" in header
    assert "structure" not in header and "failure_code" not in header  # nobody scored it, nothing failed
    assert len(lines) == 1 + 24 and sum(LONG_PROMPT in line for line in lines) == 12  # uncut at 200
    assert all(len(line) <= 200 for line in lines)
    models = [line.split()[1] for line in lines[1:]]
    assert models == sorted(models)  # the grid's order, not the order the runs happened to start
    seedance = [line.split() for line in lines[1:] if " seedance2 " in line and "neon city" in line]
    assert {(r[2], r[3]) for r in seedance} == {("True", "3"), ("True", "5"), ("False", "3"), ("False", "5")}



def test_runs_command_cuts_the_prompt_to_a_narrow_terminal(option_study, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["runs", "opts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert LONG_PROMPT not in "\n".join(lines) and any("a slow dolly shot" in line and "..." in line for line in lines)
    assert all(len(line) <= 120 for line in lines)


def test_runs_command_sorts_and_picks_metrics(option_study):
    done = _runs_cli("opts", "--sort", "ssim_source", "--metrics", f"ssim_source,{RESCORED}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n\n")[0].splitlines()
    header = lines[0].split()
    assert header[-2:] == ["ssim_source", RESCORED] and "temporal_consistency" not in header
    values = [float(line.split()[header.index("ssim_source") - len(header)]) for line in lines[1:]]
    assert values == sorted(values, reverse=True)  # higher is better: the best first
    assert sum(line.split()[-1] == "0.2500" for line in lines[1:]) == 12



def test_runs_command_refuses_an_unknown_metric_in_one_line(option_study, capsys):
    assert main(["runs", "opts", "--metrics", "ssim_source,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metrics: ") and len(err.strip().splitlines()) == 1
    assert RESCORED in err  # what exists in this experiment is named
    assert main(["runs", "opts", "--sort", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: --sort: ")


def test_blind_pairs_by_an_option_match_the_other_options_and_by_model_average_over_them(option_study):
    from v2v_lab.rating import build_pairs

    runs = load_runs("opts")
    by_duration = build_pairs(runs, "duration")
    # 2 prompts x 2 seeds x 2 audio values: each pair is one duration-3 and one duration-5 output of the
    # same model, prompt, seed and audio.
    assert len(by_duration) == 8 and all(sorted(p.values) == ["3", "5"] for p in by_duration)
    row = runs.set_index("run_id")
    for pair in by_duration:
        a, b = (row.loc[r] for r in pair.runs)
        assert (a["audio"], a["prompt"], a["seed"], a["model"]) == (b["audio"], b["prompt"], b["seed"], b["model"])
    # By model: gen4_aleph sets no duration, so seedance2's durations are no reason to refuse a pair.
    assert any(set(p.values) == {"gen4_aleph", "seedance2"} for p in build_pairs(runs, "model"))
    with pytest.raises(InputError) as caught:
        build_pairs(runs, "durations")
    assert "duration" in str(caught.value) and "\n" not in str(caught.value)
