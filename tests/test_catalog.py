"""The catalog against the official SDK, and the keys of cells an earlier v2v-lab finished."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from v2v_lab.api.catalog import build_catalog, load_catalog, models_table
from v2v_lab.api.providers import get_provider
from v2v_lab.api.validation import GenerationRequest, validate_request
from v2v_lab.errors import InputError
from v2v_lab.sweeps.plan import build_plan
from v2v_lab.sweeps.spec import parse_spec

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import sdk_fields  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_catalog_has_every_sdk_model_with_the_sdks_fields_and_enums():
    sdk = sdk_fields.sdk_models()
    assert len(sdk) == 12, sorted(sdk)
    assert sdk_fields.catalog_differences(sdk, load_catalog()) == []
    # Retired models stay (CometAPI, accounts that still have them), marked as such.
    assert all(load_catalog()[m].retired for m in ("gen4_aleph", "gen3a_turbo"))


def test_a_catalog_that_drifts_from_the_sdk_is_named_field_by_field():
    raw = {name: m.model_dump(exclude={"name"}) for name, m in load_catalog().items()}
    raw["hailuo3"]["fields"]["resolution"]["enum"] = ["768p"]
    raw["hailuo3"]["fields"]["resolution"]["deprecated"] = []
    del raw["seedance2"]["fields"]["audio"]
    raw["kling_4"]["fields"]["seed"] = {"type": "integer"}
    for entry in raw.values():
        entry["fields"] = {k: {kk: vv for kk, vv in v.items() if kk != "name"} for k, v in entry["fields"].items()}
    lines = sdk_fields.catalog_differences(sdk_fields.sdk_models(), build_catalog(raw))
    assert any(line.startswith("hailuo3.resolution: enum differs") and "2k" in line for line in lines), lines
    assert "seedance2.audio: in the SDK (boolean), not in the catalog" in lines
    assert "kling_4.seed: in the catalog, not in the SDK" in lines


def test_cells_finished_by_an_earlier_main_keep_their_keys():
    """tests/fixtures/cell_keys_9294188.json: the plan of a study (3 models x ratios x seeds x
    references x repeats, a signed URL) as main at 9294188 keyed it, before models had fields."""
    fixture = json.loads((FIXTURES / "cell_keys_9294188.json").read_text())
    plan = build_plan(parse_spec(fixture["spec"]))
    now = {(c.video, c.model, c.prompt, c.seed, c.ratio, c.reference, c.repeat): c.key for c in plan.cells}
    then = {(c["video"], c["model"], c["prompt"], c["seed"], c["ratio"], c["reference"], c["repeat"]): c["key"]
            for c in fixture["cells"]}
    assert len(then) == 216
    assert {k: now.get(k) for k in then} == then


@pytest.mark.parametrize(("model", "options", "field", "says"), [
    ("seedance2", {"resolution": "768p"}, "option resolution", "a field seedance2 takes: audio, duration"),
    ("hailuo3", {"duration": 99}, "option duration", "an integer from 6 to 10 for hailuo3"),
    ("seedance2_5", {"mode": "edit"}, "option duration", "edit takes duration auto for seedance2_5"),
    ("aleph2", {"output_format": "mov"}, "option output_format", "one of mp4, prores, png_sequence"),
])
def test_a_models_options_are_refused_by_field_before_anything_is_sent(small_clip, model, options, field, says):
    request = GenerationRequest(small_clip, "noir", model, options=options)
    with pytest.raises(InputError) as err:
        validate_request(request, load_catalog(), get_provider("local"))
    assert err.value.field == field and says in str(err.value) and "\n" not in str(err.value)


def test_a_model_without_a_seed_refuses_one_and_a_spec_treats_its_seeds_as_repeats(small_clip):
    request = GenerationRequest(small_clip, "noir", "kling_4", seed=3)
    with pytest.raises(InputError, match="kling_4 takes none"):
        validate_request(request, load_catalog(), get_provider("local"))
    plan = build_plan(parse_spec(f"experiment: e\nvideos: [{small_clip}]\nmodels: [gemini_omni_flash, aleph2]\n"
                                 "prompts: [noir]\nseeds: [1, 2, 3]\n"))
    assert sum(c.model == "gemini_omni_flash" for c in plan.cells) == 3
    assert "gemini_omni_flash takes no seed: its 3 seeds are unseeded repeats" in plan.warnings


def test_a_catalog_file_in_the_older_format_still_reads(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("models:\n  gen4_aleph:\n    ratios: ['1280:720']\n    max_references: 0\n    seed_max: 99\n")
    model = load_catalog(path)["gen4_aleph"]
    assert model.ratios == ("1280:720",) and model.max_references == 0 and model.seed_max == 99


def test_the_readmes_table_of_models_is_the_catalog():
    readme = (ROOT / "README.md").read_text()
    missing = [row for row in models_table() if row not in readme.splitlines()]
    assert missing == [], missing


def test_generate_takes_a_models_own_fields_and_refuses_a_bad_one_in_one_line(tmp_path, small_clip):
    import subprocess

    cli = str(Path(sys.executable).parent / "v2v-lab")
    helped = subprocess.run([cli, "generate", "--help"], capture_output=True, text=True, timeout=60)
    assert "--option FIELD=VALUE" in helped.stdout and "duration" in helped.stdout
    refused = subprocess.run([cli, "generate", small_clip, "--model", "hailuo3", "--prompt", "noir",
                              "--option", "resolution=4k", "--out", str(tmp_path / "o.mp4")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: option resolution: got '4k'; allowed: one of 768p, 2k for hailuo3"], refused.stderr
    assert not (tmp_path / "o.mp4").exists()
    # A value that only looks like a number is text, refused by name (never a traceback).
    odd = subprocess.run([cli, "generate", small_clip, "--model", "hailuo3", "--prompt", "noir",
                          "--option", "duration=--5", "--out", str(tmp_path / "o.mp4")],
                         capture_output=True, text=True, timeout=60)
    assert odd.returncode == 2 and odd.stderr.strip().splitlines() == [
        "error: option duration: got '--5'; allowed: an integer from 6 to 10 for hailuo3"], odd.stderr


def test_a_field_a_user_catalog_adds_changes_no_key_and_an_option_set_changes_the_cells_key(tmp_path, monkeypatch,
                                                                                             small_clip):
    """The key is the canonical request, defaults and absent fields left out: a catalog that
    gives a model one more optional field re-pays nothing; a cell that sets a field is another cell."""
    text = (f"experiment: e\nvideos: [{small_clip}]\nprompts: [noir]\nseeds: [1, 2]\nmodels:\n"
            "  - seedance2: {duration: [4, 5]}\n  - aleph2\n  - hailuo3: {resolution: 768p}\n")
    before = {(c.model, c.seed, tuple(c.options.items())): c.key for c in build_plan(parse_spec(text)).cells}
    mine = tmp_path / "mine.yaml"
    mine.write_text("models:\n  seedance2:\n    fields:\n      watermark: {type: boolean, default: false}\n"
                    "  aleph2:\n    fields:\n      grain: {type: integer, minimum: 0, maximum: 9}\n")
    for catalog in (load_catalog(mine), None):
        if catalog is None:  # the same, read through the environment as a user sets it
            monkeypatch.setenv("V2V_LAB_CATALOG", str(mine))
        after = build_plan(parse_spec(text), catalog=catalog)
        assert "watermark" in (catalog or load_catalog())["seedance2"].fields
        assert {(c.model, c.seed, tuple(c.options.items())): c.key for c in after.cells} == before
    keys = {c.key for c in build_plan(parse_spec(text)).cells}
    assert len(keys) == len(before) == 2 * 2 + 2 + 2  # durations, seeds: each its own cell
    # hailuo3 at its default resolution is hailuo3 with none named: one cell, one key.
    plain = build_plan(parse_spec(text.replace("hailuo3: {resolution: 768p}", "hailuo3")))
    assert {c.key for c in plain.cells} == keys
    # A field set only in the user's catalog is an option like any other: a cell of its own.
    grain = build_plan(parse_spec(text.replace("  - aleph2\n", "  - aleph2: {grain: [0, 3]}\n")),
                       catalog=load_catalog(mine))
    aleph2 = {tuple(c.options.items()): c.key for c in grain.cells if c.model == "aleph2" and c.seed == 1}
    assert len(set(aleph2.values())) == 2 and aleph2[(("grain", 0),)] != before[("aleph2", 1, ())]


def test_a_catalog_file_can_bound_a_models_input_frame_rate(tmp_path, small_clip):
    """Input limits include the frame rate when a catalog states it (none is first-party today)."""
    from v2v_lab.api.providers import get_provider
    from v2v_lab.api.validation import check_input
    from v2v_lab.errors import MediaError
    from v2v_lab.media.probe import probe_video

    fps = probe_video(small_clip).fps
    path = tmp_path / "fps.yaml"
    path.write_text(f"models:\n  aleph2: {{input: {{min_fps: {fps + 5}, max_fps: {fps + 10}}}}}\n")
    strict = load_catalog(path)["aleph2"]
    with pytest.raises(MediaError) as caught:
        check_input(small_clip, strict, get_provider("local"), "video", "video")
    assert "fps for aleph2" in str(caught.value) and "\n" not in str(caught.value)
    assert check_input(small_clip, load_catalog()["aleph2"], get_provider("local"), "video", "video") > 0
