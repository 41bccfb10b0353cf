"""The CLI's contracts: commands, exit codes, one-line errors."""

from __future__ import annotations

import json

from v2v_lab.cli import main


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
    assert out.stat().st_size > 0
    assert main(["generate", small_clip, "--prompt", "x", "--seed", "abc", "--provider", "local",
                 "--base-url", emulator.base_url]) == 2
    assert "--seed" in capsys.readouterr().err


def test_runs_lists_an_empty_experiment(mlflow_store, capsys):
    assert main(["runs", "nothing-here"]) == 0
    assert "no cell runs" in capsys.readouterr().out
