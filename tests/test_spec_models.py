"""Per-model fields in a spec, through the doors: the console script as a user types it, the
emulator over real HTTP, a real SQLite MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

import v2v_lab
from v2v_lab.api.catalog import load_catalog
from v2v_lab.emulator import Emulator
from v2v_lab.errors import InputError
from v2v_lab.sweeps.cell import cell_request, output_path
from v2v_lab.sweeps.plan import build_plan
from v2v_lab.sweeps.spec import parse_spec

from .conftest import DEMO, ROOT

CLI = str(Path(sys.executable).parent / "v2v-lab")

MIXED = f"""\
experiment: mixed
videos: ["{DEMO}"]
models:
  - aleph2: {{target_aspect_ratio: ["16:9", "9:16"]}}
  - seedance2: {{duration: [4, 5], audio: true}}
  - hailuo3: {{resolution: 2k}}
  - gemini_omni_flash
prompts: ["a neon city at night"]
seeds: [1, 2]
ratios: ["1280:720", "16:9"]
emulator: {{render_scale: 0.1}}
scoring: {{frames: 4, size: 64}}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("V2V_LAB_BASE_URL", "RUNWAYML_API_SECRET", "COMETAPI_API_KEY", "PYTHONPATH")}
    return {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "V2V_LAB_HOME": str(tmp_path / "state")}


def _v2v(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env(tmp_path))


def test_a_mixed_model_spec_runs_each_cell_once_records_its_fields_and_a_rerun_pays_nothing(tmp_path):
    spec = tmp_path / "mixed.yaml"
    spec.write_text(MIXED)
    with Emulator(render_scale=0.1, queue_s=0.01) as emu:
        dry = _v2v(tmp_path, "sweep", str(spec), "--dry-run", "--base-url", emu.base_url)
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        print(dry.stdout)  # the plan as a user sees it (the report quotes it)
        assert any(line.startswith("warning: aleph2: takes no ratio from ratios:") for line in lines), lines
        assert any(line.startswith("warning: gemini_omni_flash: takes no ratio from ratios:") for line in lines)
        assert "warning: gemini_omni_flash takes no seed: its 2 seeds are unseeded repeats" in lines
        assert "warning: hailuo3 takes no seed: its 2 seeds are unseeded repeats" in lines
        # Each ratio a model cannot take is named with the model and the field, never dropped silently.
        assert sum(line.startswith("left out: 4 seedance2 cells: ratio: got '16:9'; allowed: one of ")
                   for line in lines) == 1
        assert sum(line.startswith("left out: 2 hailuo3 cells: ratio: got '1280:720'; allowed: one of adaptive, ")
                   for line in lines) == 1
        assert "12 cells planned on local; 0 already done; 12 to run" in lines
        assert emu.tasks() == [] and not (tmp_path / "mlflow.db").exists()

        ran = _v2v(tmp_path, "sweep", str(spec), "--yes", "--base-url", emu.base_url, "--no-progress")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "12 cells: 12 succeeded" in ran.stdout
        tasks = emu.tasks()
        assert len(tasks) == 12  # one create per cell
        bodies = [t.request for t in emu.state.ledger]
        assert sorted(b["targetAspectRatio"] for b in bodies if b["model"] == "aleph2") == ["16:9", "16:9", "9:16", "9:16"]
        assert all("ratio" not in b for b in bodies if b["model"] in ("aleph2", "gemini_omni_flash"))
        assert sorted((b["duration"], b["audio"], b["ratio"]) for b in bodies if b["model"] == "seedance2") == [
            (4, True, "1280:720"), (4, True, "1280:720"), (5, True, "1280:720"), (5, True, "1280:720")]
        assert {(b["resolution"], b["ratio"]) for b in bodies if b["model"] == "hailuo3"} == {("2k", "16:9")}
        # No seed was sent to a model without one (the emulator draws its own): the spec's seeds were repeats.
        assert all(b["seed"] not in (1, 2) for b in bodies if b["model"] in ("hailuo3", "gemini_omni_flash"))

        # A client of its own: setting MLflow's global tracking URI would leak into later tests.
        client = mlflow.MlflowClient(tracking_uri=_env(tmp_path)["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("mixed")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], filter_string="tags.`v2v.cell_key` != ''")
        assert len(runs) == 12
        params = [r.data.params for r in runs]
        assert sorted(p["target_aspect_ratio"] for p in params if p["model"] == "aleph2") == ["16:9", "16:9",
                                                                                               "9:16", "9:16"]
        assert sorted((p["duration"], p["audio"]) for p in params if p["model"] == "seedance2") == [
            ("4", "true"), ("4", "true"), ("5", "true"), ("5", "true")]
        assert {p["resolution"] for p in params if p["model"] == "hailuo3"} == {"2k"}
        assert not any("duration" in p or "resolution" in p for p in params if p["model"] == "gemini_omni_flash")

        again = _v2v(tmp_path, "sweep", str(spec), "--yes", "--base-url", emu.base_url, "--no-progress")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("warning:") and "nothing to do: 12 cells (12 succeeded)" in again.stdout
        assert len(emu.tasks()) == 12  # the rerun paid for nothing

    # The new fields are design columns on the read side too: typed in load_runs, a `by=` for compare,
    # columns of `v2v-lab runs`; each cell's credits are what the endpoint said the task cost.
    uri = _env(tmp_path)["MLFLOW_TRACKING_URI"]
    df = v2v_lab.load_runs("mixed", tracking_uri=uri)
    seedance = df[df["model"] == "seedance2"]
    assert sorted(seedance["duration"].tolist()) == [4, 4, 5, 5] and seedance["audio"].tolist() == [True] * 4
    assert set(df.loc[df["model"] == "hailuo3", "resolution"]) == {"2k"}
    costs = {t.id: t.charged_credits for t in emu.state.ledger}
    assert all(row.credits == costs[row.task_id] for row in df.itertuples()), (df["credits"].tolist(), costs)
    by_duration = v2v_lab.compare("mixed", by="duration", metric="ssim_source", baseline=4, tracking_uri=uri)
    assert sorted(by_duration["group"].astype(int)) == [4, 5] and by_duration["n"].sum() == 4, by_duration
    table = _v2v(tmp_path, "runs", "mixed")
    header = table.stdout.splitlines()[0].split()
    assert table.returncode == 0 and {"duration", "audio", "resolution", "target_aspect_ratio"} <= set(header), header


@pytest.mark.parametrize(("entry", "says"), [
    ('seedance2: {resolution: 768p}', "models[0].seedance2 (line 3): got 'resolution'; allowed: a field seedance2 "
                                      "takes: audio, duration, ratio, reference_audio, reference_videos, references, seed"),
    ('hailuo3: {resolution: [768p, 4k]}', "models[0].hailuo3.resolution (line 3): got '4k'; allowed: one of 768p, 2k "
                                          "for hailuo3"),
    ('seedance2: {duration: [3, 5]}', "models[0].seedance2.duration (line 3): got 3; allowed: an integer from 4 to 15 "
                                      "or auto for seedance2"),
    ('seedance2_5: {mode: edit}', "models[0].seedance2_5.duration (line 3): got None; allowed: edit takes duration "
                                  "auto for seedance2_5"),
    ('aleph2: {prores_profile: "422"}', "models[0].aleph2.output_format (line 3): got None; allowed: prores_profile "
                                        "only with output_format prores for aleph2"),
    ('aleph2: {seed: 3}', "models[0].aleph2.seed (line 3): got 3; allowed: the spec's own seeds: key (not one per "
                          "model)"),
])
def test_a_field_or_value_a_model_does_not_take_is_one_line_exit_2_and_nothing_is_sent(tmp_path, entry, says):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f'experiment: bad\nmodels:\n  - {entry}\n  - gemini_omni_flash\nvideos: ["{DEMO}"]\n'
                    "prompts: [noir]\n")
    with Emulator(render_scale=0.1) as emu:
        for extra in (["--dry-run"], ["--yes"]):
            done = _v2v(tmp_path, "sweep", str(spec), "--base-url", emu.base_url, *extra)
            assert done.returncode == 2, done.stdout + done.stderr
            assert done.stderr.strip().splitlines() == [f"error: {says}"]
        assert emu.tasks() == []
    assert not (tmp_path / "mlflow.db").exists()


def _plan(text: str, **kw):
    return build_plan(parse_spec(text), **kw)


def test_an_older_spec_plans_aleph2_without_the_ratio_and_says_so(small_clip):
    plan = _plan(f"experiment: e\nvideos: [{small_clip}]\nmodels: [gen4_aleph, aleph2]\nprompts: [noir]\n"
                 "ratios: ['1280:720']\n")
    assert sorted((c.model, c.ratio) for c in plan.cells) == [("aleph2", None), ("gen4_aleph", "1280:720")]
    assert plan.excluded == []
    assert any(w.startswith("aleph2: takes no ratio from ratios:") for w in plan.warnings), plan.warnings
    assert any(w.startswith("gen4_aleph: retired") for w in plan.warnings), plan.warnings


def test_cells_hold_only_the_fields_they_set_and_price_from_the_catalog(small_clip):
    plan = _plan(f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nmodels:\n"
                 "  - hailuo3: {resolution: 768P, duration: [6, 8]}\n  - seedance2_5: {mode: extend}\n"
                 "ratios: ['16:9']\n")
    catalog = load_catalog()
    hailuo = [c for c in plan.cells if c.model == "hailuo3"]
    # 768P is the deprecated spelling of the default: left out, as an absent field is.
    assert [c.options for c in hailuo] == [{}, {"duration": 8}]
    assert [c.output_seconds for c in hailuo] == [6.0, 8.0]
    assert [c.credits for c in hailuo] == [catalog["hailuo3"].estimate_credits(c.input_seconds, c.options)
                                           for c in hailuo]
    # A field's value that changes the price (hailuo3 at 2k: 15 credits/s) is priced by the catalog.
    two_k = _plan(f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nmodels:\n"
                  "  - hailuo3: {resolution: 2k, duration: 8}\n").cells
    assert [(c.options, c.credits) for c in two_k] == [({"resolution": "2k", "duration": 8}, 8 * 15.0)]
    extend = [c for c in plan.cells if c.model == "seedance2_5"]
    # mode extend forbids a ratio: its cells are planned without one, and the plan says so.
    assert [(c.ratio, c.options) for c in extend] == [(None, {"mode": "extend"})]
    assert any(w.startswith("seedance2_5 mode=extend: takes no ratio") for w in plan.warnings), plan.warnings


def test_the_request_and_the_kept_output_follow_the_cells_fields(small_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path))
    plan = _plan(f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nseeds: [4]\nmodels:\n"
                 "  - aleph2: {output_format: prores, prores_profile: '422 HQ', target_aspect_ratio: '1:1'}\n"
                 "  - seedance2: {reference_videos: [[" + small_clip + "]]}\n")
    catalog = load_catalog()
    prores, seedance = plan.cells
    request = cell_request(prores, catalog["aleph2"])
    assert (request.seed, request.target_aspect_ratio, request.options) == (
        4, "1:1", {"output_format": "prores", "prores_profile": "422 HQ"})
    assert output_path("e", prores, catalog["aleph2"]).name == "output.mov"
    assert output_path("e", seedance, catalog["seedance2"]).name == "output.mp4"
    assert cell_request(seedance, catalog["seedance2"]).options == {"reference_videos": [small_clip]}


def test_a_plan_with_a_model_entry_over_the_limit_is_refused_before_it_is_built(small_clip, monkeypatch):
    monkeypatch.setenv("V2V_LAB_MAX_CELLS", "10")
    with pytest.raises(InputError, match="models"):
        _plan(f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nseeds: {{count: 3}}\n"
              "models:\n  - seedance2: {duration: [4, 5, 6, 7]}\n")


@pytest.mark.parametrize("name", ["aleph2_options.yaml", "seedance2_durations.yaml", "kling_gemini.yaml"])
def test_each_example_spec_for_a_request_shape_plans(tmp_path, name):
    done = _v2v(tmp_path, "sweep", str(ROOT / "experiments" / name), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "cells planned on local" in done.stdout
    data = yaml.safe_load((ROOT / "experiments" / name).read_text())
    assert any(isinstance(m, dict) for m in data["models"])


@pytest.mark.parametrize(("entry", "field", "says"), [
    ("seedance2: 5", "models[0]", "a model name or {name: {field: value or [values]}}, one model per entry"),
    ("{seedance2: {}, aleph2: {}}", "models[0]", "one model per entry"),
    ("aleph2: {ratio: [2:1]}", "models[0].aleph2.ratio", "YAML reads an unquoted 2:1 as a number"),
    ("seedance2: {reference_videos: [5]}", "models[0].seedance2.reference_videos[0]", "a path or URI of a video"),
    ("aleph2: {keyframes: [{uri: a.png}]}", "models[0].aleph2.keyframes[0]", "{uri, seconds} or {uri, at}"),
    ("seedance2: {duration: []}", "models[0].seedance2.duration", "or a non-empty list of them"),
])
def test_a_malformed_entry_is_named_by_its_place_and_line(small_clip, entry, field, says):
    with pytest.raises(InputError) as err:
        _plan(f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nmodels:\n  - {entry}\n")
    assert err.value.field == field and err.value.line == 5 and says in err.value.allowed


def test_a_ratio_an_entry_names_replaces_the_specs_ratios_for_it():
    plan = _plan(f"experiment: e\nvideos: [\"{DEMO}\"]\nprompts: [noir]\nratios: ['1280:720']\nmodels:\n"
                 "  - kling_4: {ratio: [auto_720p, auto_1080p]}\n  - seedance2\n")
    assert sorted((c.model, c.ratio) for c in plan.cells) == [
        ("kling_4", "auto_1080p"), ("kling_4", "auto_720p"), ("seedance2", "1280:720")]
    assert plan.excluded == []
