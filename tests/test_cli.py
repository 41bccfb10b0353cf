"""The CLI's contracts: commands, exit codes, one-line errors."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from v2v_lab.cli import main
from v2v_lab.media import probe_video

from .conftest import DEMO


def test_score_json_and_self_score(demo_clip, capsys):
    assert main(["score", demo_clip, demo_clip, "--frames", "4", "--size", "64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["values"]["ssim_source"] == 1.0 and len(report["series"]["flicker"]) == 4


def test_score_missing_file_exits_2(tmp_path, demo_clip, capsys):
    assert main(["score", str(tmp_path / "none.mp4"), demo_clip]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: source") and len(err.strip().splitlines()) == 1


def test_generate_on_the_emulator(emulator, small_clip, tmp_path, capsys):
    out = tmp_path / "g.mp4"
    assert main(["generate", small_clip, "--prompt", "thermal", "--seed", "3", "--provider", "local",
                 "--base-url", emulator.base_url, "--out", str(out)]) == 0
    assert probe_video(out).frame_count > 0
    assert main(["generate", small_clip, "--prompt", "x", "--seed", "abc", "--provider", "local",
                 "--base-url", emulator.base_url]) == 2
    assert "--seed" in capsys.readouterr().err
    # Without --seed, the seed drawn is said (and sent), so the generation can be repeated.
    assert main(["generate", small_clip, "--prompt", "thermal", "--provider", "local", "--yes",
                 "--base-url", emulator.base_url, "--out", str(tmp_path / "h.mp4")]) == 0
    err = capsys.readouterr().err
    drawn = int(re.search(r"seed (\d+) \(drawn: --seed \1 repeats it\)", err).group(1))
    assert emulator.tasks()[-1]["seed"] == drawn and "%/s" not in err, err


def test_runs_lists_experiments_and_their_cells(emulator, mlflow_store, tmp_path, capsys):
    # Nothing swept yet: one line naming the store, and no store is made by asking.
    assert main(["runs", "nothing-here"]) == 2
    err = capsys.readouterr().err
    assert "experiment: got 'nothing-here'" in err and "it has none yet" in err and len(err.splitlines()) == 1, err
    assert main(["runs"]) == 0 and "no experiments in" in capsys.readouterr().out
    assert not any(tmp_path.glob("*.db")) and not (tmp_path / "mlflow.db").exists()
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "listed", "provider": "local", "videos": [str(DEMO)],
                                    "models": ["gen4_aleph"], "prompts": ["noir city", "a gore scene"],
                                    "seeds": [7], "base_url": emulator.base_url,
                                    "scoring": {"frames": 4, "size": 64}}))
    assert main(["sweep", str(spec), "--no-progress"]) == 0
    assert main(["runs", "listd"]) == 2  # a misspelled name: the experiments the store holds
    assert "an experiment in sqlite:" in (err := capsys.readouterr().err) and "listed" in err, err
    capsys.readouterr()
    assert main(["runs"]) == 0
    assert "listed" in capsys.readouterr().out.split()
    assert main(["runs", "listed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows, spend = lines[0].split(), lines[1:lines.index("")], lines[lines.index("") + 1:]
    assert header[:5] == ["status", "model", "prompt", "seed", "ratio"] and "ssim_source" in header
    assert len(rows) == 2
    # What the cells cost, as the server said (the emulator reports costs as Runway does).
    assert len(spend) == 1 and spend[0].startswith("spent on gen4_aleph: ") and "over 2 runs (on the emulator" in spend[0]
    done = next(r for r in rows if "noir city" in r)
    failed = next(r for r in rows if "a gore scene" in r)
    assert done.split()[:5] == ["succeeded", "gen4_aleph", "noir", "city", "7"] and "SAFETY.INPUT.TEXT" in failed


def test_emulator_fault_settings_are_refused_by_the_flag_typed(capsys):
    for argv, flag, value in ((["--error-rate", "nope=0.5"], "--error-rate", "'nope'"),
                              (["--error-rate", "task=1.5"], "--error-rate", "1.5")):
        assert main(["emulator", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {flag}: got {value}; allowed: "), err


def test_reading_an_experiment_that_is_not_there_names_the_store_and_creates_none(tmp_path, monkeypatch):
    """From Python as from `runs`: a misspelled experiment is an InputError naming the store looked
    in (its absolute path) and what it holds, never an empty frame; asking creates no store."""
    import pytest

    from v2v_lab import load_runs
    from v2v_lab.errors import InputError
    from v2v_lab.tracking import list_experiments

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(InputError) as refused:
        load_runs("no_such_exp")
    assert str(refused.value) == (f"experiment: got 'no_such_exp'; allowed: an experiment in "
                                  f"sqlite:///{tmp_path / 'mlflow.db'}: it has none yet")
    assert list_experiments() == []
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no lock folder


def test_ui_on_a_store_that_is_not_there_is_one_line_and_makes_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["ui", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: MLFLOW_TRACKING_URI: got 'sqlite:///") and len(err.splitlines()) == 1
    assert err.endswith(f"allowed: a store that exists (there is none at {tmp_path / 'mlflow.db'}): run a sweep "
                        "first (v2v-lab sweep SPEC), or name the store")
    assert list(tmp_path.iterdir()) == []


def test_sweep_writes_to_the_store_its_tracking_uri_names(tmp_path, monkeypatch, capsys):
    """--tracking-uri, as runs and rescore take it; --help says where the store and state go."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "elsewhere", "videos": [str(DEMO)], "prompts": ["neon"],
                                    "scoring": {"enabled": False}, "emulator": {"render_scale": 0.1}}))
    store = f"sqlite:///{tmp_path / 'lab' / 'runs.db'}"
    (tmp_path / "lab").mkdir()
    assert main(["sweep", str(spec), "--no-progress", "--tracking-uri", store]) == 0
    assert f"MLflow: {store}" in capsys.readouterr().out
    assert not (tmp_path / "mlflow.db").exists()
    assert main(["runs", "elsewhere", "--tracking-uri", store]) == 0
    assert "succeeded" in capsys.readouterr().out
    for command in ("sweep", "ui", "runs", "rescore", "generate"):
        import contextlib

        with contextlib.suppress(SystemExit):
            main([command, "--help"])
        assert "./mlflow.db in the current folder" in " ".join(capsys.readouterr().out.split())


def test_power_plans_from_a_pilot_study_in_text_and_json(emulator, mlflow_store, tmp_path, capsys):
    from v2v_lab import load_runs, stats

    spec = tmp_path / "pilot.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "pilot", "provider": "local", "videos": [str(DEMO)],
                                    "models": ["gen4_aleph", "aleph2"], "prompts": ["noir city"],
                                    "seeds": [1, 2, 3], "ratios": [None], "base_url": emulator.base_url,
                                    "scoring": {"frames": 4, "size": 64, "metrics": ["ssim_source"]}}))
    assert main(["sweep", str(spec), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["power", "pilot", "--by", "model", "--metric", "ssim_source", "--delta", "0.01", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    (row,) = answer["comparisons"]
    assert {"group", "baseline", "sd", "pairs_needed", "credits", "dollars"} <= set(row)
    assert (row["group"], row["baseline"], row["pairs"]) == ("gen4_aleph", "aleph2", 3)
    # The sd of the three paired differences, the pairs it takes, and their price at the runs' estimates.
    runs = load_runs("pilot").set_index(["seed", "model"])["ssim_source"].unstack()
    assert row["sd"] == pytest.approx((runs["gen4_aleph"] - runs["aleph2"]).std(ddof=1))
    assert row["pairs_needed"] == stats.pairs_needed(0.01, row["sd"])
    per_pair = load_runs("pilot").groupby("model")["credits_estimated"].mean().sum()
    assert row["credits"] == pytest.approx(row["pairs_needed"] * per_pair) and row["dollars"] == pytest.approx(
        row["credits"] / 100)
    assert main(["power", "pilot", "--metric", "ssim_source", "--delta", "0.01"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("pilot: ssim_source by model") and text[1].split()[:4] == ["group", "baseline",
                                                                                           "pairs", "sd"]
    assert text[2].split()[:3] == ["gen4_aleph", "aleph2", "3"] and text[-1].startswith("method: ")
    # Bad input: one line naming the field, exit 2.
    assert main(["power", "pilot", "--metric", "nope", "--delta", "0.01"]) == 2
    assert capsys.readouterr().err.startswith("error: metric: got 'nope'")
    assert main(["power", "pilot", "--delta", "-1"]) == 2 and "--delta" in capsys.readouterr().err
