"""Metric plugins: a real package (tests/plugin_pkg) installed in this test run, through pip, then
used by score, sweeps, rescore, the dashboards and the validity table like a built-in metric."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ._helpers import ROOT, user_env
from ._helpers import run_cli as run
from ._helpers import study_cells as cells

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory) -> str:
    """pip-installs the plugin into a folder of its own (a copy: the build writes beside its source)."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(ROOT / "tests" / "plugin_pkg", tmp / "src")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(tmp / "site"), str(tmp / "src")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert list((tmp / "site").glob("v2v_lab_colour_metric-*.dist-info"))
    return str(tmp / "site")


def with_plugin(plugin_path: str) -> dict[str, str]:
    return {"PYTHONPATH": plugin_path}


def tinted(clip_factory, name: str, bgr: tuple[int, int, int]) -> str:
    frames = []
    for i in range(20):
        f = np.full((96, 160, 3), 40, np.uint8)
        x = 10 + 3 * i
        f[20:76, x:x + 60] = bgr[::-1]  # frames are RGB here
        frames.append(f)
    return clip_factory(name, frames)


def test_score_uses_a_plugin_metric_and_hands_it_the_prompt(plugin_path, clip_factory, tmp_path):
    red, blue = tinted(clip_factory, "red.mp4", (0, 0, 230)), tinted(clip_factory, "blue.mp4", (230, 0, 0))
    values = {}
    for out in (red, blue):
        done = run(["score", blue, out, "--metrics", "prompt_colour,structure", "--prompt", "a red car", "--json"],
                   tmp_path, **with_plugin(plugin_path))
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["params"]["prompt_colour.vivid"] == "s>=80 and v>=60"
        values[out] = report["values"]["prompt_colour"]
    assert values[red] > 0.2 and values[blue] < 0.01, values
    plain = run(["score", blue, red, "--metrics", "prompt_colour"], tmp_path)  # not installed: refused, one line
    assert plain.returncode == 2 and "--metrics" in plain.stderr and "prompt_colour" in plain.stderr


def test_sweeps_rescore_dashboards_and_the_validity_table_use_it(plugin_path, study, tmp_path):
    env = with_plugin(plugin_path)
    # rescore: the study was paid for before the plugin existed.
    done = run(["rescore", "study", "--metrics", "prompt_colour", "--workers", "1"], study, **env)
    assert done.returncode == 0 and "6 rescored (6 values)" in done.stdout, done.stdout + done.stderr
    by_prompt = {}
    for r in cells(study):
        by_prompt.setdefault(r.data.params["prompt"], []).append(r.data.metrics.get("prompt_colour"))
    assert all(v is not None and 0 <= v <= 1 for v in by_prompt["a red watercolor painting"])
    assert all(v is None for v in by_prompt["neon city at night"])  # names no colour: NaN, never logged as 0

    # a sweep whose spec asks for it
    spec = (study / "spec.yaml").read_text().replace("experiment: study", "experiment: plugged").replace(
        "seeds: [1, 2, 3]", "seeds: [7]").replace("[ssim_source, flicker]", "[structure, prompt_colour]")
    (study / "plugged.yaml").write_text(spec)
    swept = run(["sweep", "plugged.yaml", "--yes"], study, **env)
    assert swept.returncode == 0, swept.stderr
    refused = run(["sweep", "plugged.yaml", "--dry-run"], study)  # the same spec where the plugin is not installed
    assert refused.returncode == 2 and "prompt_colour" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    # the dashboards and the validity table, in a process with the plugin
    script = """
from v2v_lab.metrics import PLUGIN_METRICS
from v2v_lab.tracking import load_runs
from v2v_lab.dashboard.browser import RunBrowser
from v2v_lab.validity import EDITS, SHIPPED_CLIPS, validity_table
assert PLUGIN_METRICS == ("prompt_colour",), PLUGIN_METRICS
runs = load_runs("plugged")
red = runs[runs.prompt == "a red watercolor painting"]
assert red["prompt_colour"].notna().all() and len(runs) == 2
browser = RunBrowser("plugged")
assert "prompt_colour" in browser.range_metric.options
table = validity_table(SHIPPED_CLIPS, ["prompt_colour", "structure"], EDITS[:2], frames=4)
assert list(table.columns)[-2:] == ["prompt_colour", "structure"], table.columns
print("ok")
"""
    checked = subprocess.run([sys.executable, "-c", script], cwd=study, env={**_env_of(study), **env},
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0 and checked.stdout.strip().endswith("ok"), checked.stderr[-2000:]


def _env_of(folder: Path) -> dict[str, str]:
    return user_env(folder, drop=("V2V_LAB_", "MLFLOW_"))


def test_a_broken_plugin_is_skipped_with_a_warning_and_the_builtins_still_work(tmp_path, plugin_path):
    site = tmp_path / "site"
    shutil.copytree(plugin_path, site)
    (site / "v2v_lab_colour_metric" / "__init__.py").write_text("raise RuntimeError('weights not found')\n")
    done = subprocess.run([sys.executable, "-c", "from v2v_lab.metrics import PLUGIN_METRICS, REGISTRY; "
                           "print(PLUGIN_METRICS, 'structure' in REGISTRY)"],
                          env={**_env_of(tmp_path), "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "() True", done.stdout + done.stderr
    assert "prompt_colour" in done.stderr and "weights not found" in done.stderr
