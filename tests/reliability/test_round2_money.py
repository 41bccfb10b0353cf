"""Money and bad input, round two (issue 26, cases 5, 6 and 12): a paid output is never paid again,
a catalog never prices a cell at nothing, and a plan is counted before it is built.

Creates are counted by the emulator itself (its task ledger). Each test failed on the code before it."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from v2v_lab.cli import main
from v2v_lab.emulator import Emulator
from v2v_lab.emulator.faults import FaultConfig
from v2v_lab.sweeps import run_sweep
from v2v_lab.sweeps.journal import Journal

from ..conftest import DEMO
from .conftest import report, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
KEY = "key_" + "cd" * 64


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def sweep(spec: Path, emu: Emulator, *extra: str) -> int:
    return main(["sweep", str(spec), "--no-progress", "--base-url", emu.base_url, *extra])


def cell_runs(experiment: str) -> list:
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'cell'") if exp else []


def done_runs(experiment: str) -> list:
    return [r for r in cell_runs(experiment) if r.data.tags.get("v2v.status") == "succeeded"]


def truncating() -> Emulator:
    """An emulator whose every output download is cut short (`emulator --truncate-rate 1`)."""
    return Emulator(render_scale=0.1, queue_s=0.01, faults=FaultConfig(truncate_rate=1.0))


# -- case 5: a paid, succeeded task is taken up by id, never paid again ----------------------------------
def test_5a_a_succeeded_task_whose_download_failed_is_fetched_again_by_id(mlflow_store, tmp_path, capsys):
    spec = write_spec(tmp_path, experiment="paid-truncated")
    with truncating() as emu:
        assert sweep(spec, emu) == 0
        first = capsys.readouterr().out
        assert len(emu.tasks()) == 1 and emu.tasks()[0]["status"] == "SUCCEEDED"
        assert "1 failed" in first
        (paid,) = emu.tasks()
        emu.state.dice.config.truncate_rate = 0.0  # the network is fine again; the task's URL is fresh on a read
        assert sweep(spec, emu, "--retry-failed") == 0
        out = capsys.readouterr().out
        assert len(emu.tasks()) == 1, "--retry-failed paid for a task that had succeeded"
        assert "1 succeeded" in out
        assert "fetch it by task id (never paid again)" in first, "the failed sweep did not say what a rerun does"
        (run,) = done_runs("paid-truncated")
        assert run.data.tags["v2v.task_id"] == paid["id"]
        assert "output.mp4" in {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
        assert sweep(spec, emu) == 0 and "nothing to do" in capsys.readouterr().out
        assert len(emu.tasks()) == 1
    report("round2_case5_truncated", {"creates": 1, "creates_on_main": 2})


def test_5b_an_output_lost_to_an_unwritable_folder_is_fetched_once_the_folder_is_fixed(mlflow_store, tmp_path,
                                                                                        capsys):
    spec = write_spec(tmp_path, experiment="paid-oserror")
    outputs = Path(os.environ["V2V_LAB_HOME"]) / "outputs"
    outputs.parent.mkdir(parents=True, exist_ok=True)
    # A file where the outputs folder belongs: no output can be written under it (as root too,
    # where a chmod would not stop the write).
    outputs.write_text("not a folder")
    with Emulator(render_scale=0.1, queue_s=0.01) as emu:
        assert sweep(spec, emu) == 0
        assert "1 failed" in capsys.readouterr().out
        assert len(emu.tasks()) == 1 and emu.tasks()[0]["status"] == "SUCCEEDED"
        outputs.unlink()  # the folder fixed
        assert sweep(spec, emu) == 0, "a plain rerun"
        out = capsys.readouterr().out
        assert "1 succeeded" in out, out
        assert len(emu.tasks()) == 1, "the paid output was paid for again"
        assert sweep(spec, emu, "--retry-failed") == 0 and "nothing to do" in capsys.readouterr().out
        assert len(emu.tasks()) == 1
        (run,) = done_runs("paid-oserror")
        assert run.data.tags["v2v.task_id"] == emu.tasks()[0]["id"]
    report("round2_case5_oserror", {"creates": 1, "creates_on_main": "1, output lost (a rerun: nothing to do)"})


def test_5c_a_failed_row_from_before_whose_task_succeeded_is_taken_up_by_id(mlflow_store, tmp_path, capsys):
    """A journal written by the earlier code says `failed` for a task that succeeded: --retry-failed
    reads the task first and fetches its output instead of paying for a new one."""
    spec = write_spec(tmp_path, experiment="paid-old-journal")
    with truncating() as emu:
        assert sweep(spec, emu) == 0
        journal = Journal()
        ((key, row),) = journal.all("paid-old-journal").items()
        journal.close()
        # Written as the earlier code wrote it (a step today's journal refuses: paid never becomes failed).
        with sqlite3.connect(journal.path) as db:
            db.execute("UPDATE cells SET state='failed', failure_code='DOWNLOAD_FAILED', retryable=1 "
                       "WHERE experiment='paid-old-journal' AND cell_key=?", (key,))
        emu.state.dice.config.truncate_rate = 0.0
        capsys.readouterr()
        assert sweep(spec, emu, "--retry-failed") == 0
        assert "1 succeeded" in capsys.readouterr().out
        assert len(emu.tasks()) == 1, "a task that had succeeded was paid for again"


def test_5d_a_paid_output_no_longer_fetchable_is_reported_and_paid_again_only_with_force(mlflow_store, tmp_path,
                                                                                         monkeypatch, capsys):
    monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
    spec = write_spec(tmp_path, experiment="paid-gone", provider="runway")
    with truncating() as emu:
        first = run_sweep(spec, yes=True, base_url=emu.base_url, progress=False)
        assert first.counts == {"failed": 1} and len(emu.tasks()) == 1
        task_id = emu.tasks()[0]["id"]
        with emu.client() as c:
            c.cancel(task_id)  # past the provider's retention: the task reads 404 from now on
        emu.state.dice.config.truncate_rate = 0.0
        again = run_sweep(spec, yes=True, base_url=emu.base_url, progress=False, retry_failed=True)
        (outcome,) = again.outcomes
        assert outcome.state == "missing" and "no longer be fetched" in outcome.note, outcome
        assert len(emu.tasks()) == 1, "a rerun paid again without --force"
        assert main(["sweep", str(spec), "--yes", "--no-progress", "--base-url", emu.base_url]) == 0
        out = capsys.readouterr().out
        assert "1 missing" in out and "--force" in out and len(emu.tasks()) == 1
        asked: list[str] = []
        forced = run_sweep(spec, force=True, base_url=emu.base_url, progress=False,
                           confirm=lambda q: asked.append(q) or True)
        assert forced.counts == {"succeeded": 1}
        assert asked and "credits" in asked[0] and "$" in asked[0], "--force paid without showing the cost"
        assert len(emu.tasks()) == 2
    report("round2_case5_gone", {"creates_without_force": 1, "creates_with_force": 2})


# -- case 6: a catalog never prices a cell at nothing -----------------------------------------------------
BAD_CATALOG_VALUES = [
    ("credits_per_second", 0), ("credits_per_second", float("nan")), ("credits_per_second", -1),
    ("credits_per_second", float("inf")), ("max_output_seconds", 0), ("max_output_seconds", float("nan")),
    ("max_output_seconds", -5), ("input.max_seconds", 0), ("input.max_seconds", float("nan")),
    ("output_fps", -24),
]


def _catalog(path: Path, field: str, value: float) -> Path:
    entry: dict = {}
    node = entry
    *parents, leaf = field.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    path.write_text(yaml.safe_dump({"models": {"gen4_aleph": entry}}))
    return path


def test_6a_a_catalog_with_a_zero_nan_or_negative_price_or_length_is_refused(mlflow_store, tmp_path, monkeypatch,
                                                                             capsys):
    spec = write_spec(tmp_path, experiment="catalog-prices", budget={"max_credits": 10})
    messages = {}
    with Emulator(render_scale=0.1) as emu:  # the emulator's own catalog is the built-in one
        for k, (field, value) in enumerate(BAD_CATALOG_VALUES):
            monkeypatch.setenv("V2V_LAB_CATALOG", str(_catalog(tmp_path / f"cat{k}.yaml", field, value)))
            code = sweep(spec, emu, "--max-credits", "10")
            out, err = capsys.readouterr()
            assert code == 2, (field, value, out, err)
            line = one_line(err)
            assert f"models.gen4_aleph.{field}" in line, line
            messages[f"{field}={value}"] = line
        assert emu.tasks() == [], "a cell was created under a catalog that priced it at nothing"
        assert emu.stats["requests"].get("create", 0) == 0
    report("round2_case6_prices", {"creates": 0, "messages": messages})


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return {**env, **extra}


@pytest.mark.parametrize("kind", ["missing", "broken"])
def test_6b_a_missing_or_broken_catalog_file_is_one_line_for_every_command(tmp_path, kind):
    path = tmp_path / "my_models.yaml"
    if kind == "broken":
        path.write_text("models: [\n  gen4_aleph: {credits_per_second: 5\n")
    spec = write_spec(tmp_path, experiment="catalog-file")
    env = _clean_env(V2V_LAB_CATALOG=str(path), V2V_LAB_HOME=str(tmp_path / "h"),
                     MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}")
    for args in (["--help"], ["sweep", str(spec), "--no-progress"]):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        line = one_line(done.stderr)
        assert "V2V_LAB_CATALOG" in line and path.name in line and "Traceback" not in done.stderr, line
    imported = subprocess.run([sys.executable, "-c", "import v2v_lab, v2v_lab.cli, v2v_lab.sweeps"], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert imported.returncode == 0 and "Traceback" not in imported.stderr, imported.stderr
    assert not (tmp_path / "h").exists() and not (tmp_path / "m.db").exists(), "a refused command wrote state"


# -- case 12: a plan is counted before it is built ----------------------------------------------------------
def _limit_memory() -> None:
    # On the code before this fix a bomb ran until the machine's memory was gone: held to 3 GB,
    # it fails fast there instead of taking the test machine with it.
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def _bombs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (spec file, the field its one line must name)."""
    base = {"experiment": "bomb", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
            "ratios": ["1280:720"], "emulator": {"render_scale": 0.1}}
    words = [f"word{i:04d}" for i in range(1000)]
    template = folder / "template.yaml"  # 1000^4 = 10^12 prompts from 4 lists of 1000 words
    template.write_text(yaml.safe_dump({**base, "seeds": [1], "prompts": {
        "template": "{a} {b} {c} {d}", "vars": {k: words for k in "abcd"}}}, width=10**6))
    (folder / "prompts.txt").write_text("\n".join(f"prompt number {i}" for i in range(200_000)) + "\n")
    file_x_seeds = folder / "file_x_seeds.yaml"  # 200,000 prompts x 100,000 seeds = 2x10^10 cells
    file_x_seeds.write_text(yaml.safe_dump({**base, "prompts": {"file": "prompts.txt"},
                                            "seeds": {"count": 100_000}}))
    nested = folder / "nested.yaml"  # 20,000 nested lists
    nested.write_text(yaml.safe_dump({**base, "seeds": [1]}) + "prompts: " + "[" * 20_000 + "]" * 20_000 + "\n")
    return {"template": (template, "prompts"), "file_x_seeds": (file_x_seeds, "prompts"), "nested": (nested, "spec")}


def test_12a_a_plan_too_big_to_build_is_refused_before_it_is_built(tmp_path):
    home = tmp_path / "h"
    messages = {}
    with Emulator(render_scale=0.1) as emu:
        env = _clean_env(V2V_LAB_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}",
                         V2V_LAB_BASE_URL=emu.base_url)
        for name, (spec, field) in _bombs(tmp_path).items():
            try:
                done = subprocess.run([CLI, "sweep", str(spec), "--no-progress", "--yes"], env=env, cwd=tmp_path,
                                      capture_output=True, text=True, timeout=90, preexec_fn=_limit_memory)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name}: still running after 90 s")
            assert done.returncode == 2, (name, done.returncode, done.stderr[-2000:])
            line = one_line(done.stderr)
            assert line.startswith(f"error: {field}"), (name, line)
            if name == "nested":
                assert "32 levels" in line, line
            else:
                assert "at most 100000 cells" in line and "V2V_LAB_MAX_CELLS" in line, line
            messages[name] = line
        assert sum(emu.stats["requests"].values()) == 0, "a request was sent for a plan that was refused"
    assert not home.exists() and not (tmp_path / "m.db").exists(), "a refused plan wrote state"
    report("round2_case12_bombs", {"creates": 0, "messages": messages})


def test_12b_the_cell_limit_is_stated_and_raised_by_V2V_LAB_MAX_CELLS(mlflow_store, tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path, experiment="limit", prompts=["a", "b", "c"])
    monkeypatch.setenv("V2V_LAB_MAX_CELLS", "2")
    assert main(["sweep", str(spec), "--dry-run"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "at most 2 cells" in line and "3 prompts" in line and "V2V_LAB_MAX_CELLS" in line
    monkeypatch.setenv("V2V_LAB_MAX_CELLS", "3")
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    assert "3 cells planned" in capsys.readouterr().out
    for bad in ("abc", "0", "-1", "1e9"):
        monkeypatch.setenv("V2V_LAB_MAX_CELLS", bad)
        assert main(["sweep", str(spec), "--dry-run"]) == 2
        assert one_line(capsys.readouterr().err).startswith("error: V2V_LAB_MAX_CELLS")
