"""Sweeps end to end: emulator over HTTP, a real SQLite MLflow store, resume after kill -9, budgets, dry runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from v2v_lab import load_artifact, load_runs
from v2v_lab.cli import main
from v2v_lab.emulator import Emulator
from v2v_lab.sweeps import Journal, load_spec, run_sweep
from v2v_lab.tracking import compare_frame

from . import _helpers
from .conftest import DEMO, ROOT

SPEC = {"experiment": "t", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
        "prompts": ["neon city", "watercolor"], "seeds": [1, 2], "ratios": ["1280:720"],
        "emulator": {"render_scale": 0.25}, "scoring": {"frames": 6, "size": 96}}


def write_spec(tmp_path: Path, **over) -> Path:
    return _helpers.write_spec(tmp_path, SPEC, **over)


def test_quickstart_end_to_end(mlflow_store, tmp_path):
    spec = load_spec(ROOT / "experiments" / "quickstart.yaml")
    spec.emulator.render_scale = 0.25
    result = run_sweep(spec, progress=False)
    assert result.counts == {"succeeded": 4}
    df = load_runs("quickstart")
    assert len(df) == 4 and set(df["status"]) == {"succeeded"}
    assert set(df["seed"]) == {1, 2} and set(df["model"]) == {"gen4_aleph"} and set(df["ratio"]) == {"1280:720"}
    assert df["ssim_source"].between(0, 1).all() and df["warp_error"].between(0, 1).all()
    assert df["credits"].gt(0).all() and df["latency_s"].gt(0).all()
    run = mlflow.get_run(df["run_id"][0])
    assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert run.data.params["score.frames"] == "16" and run.data.params["api_version"] == "2024-11-06"
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(df["run_id"][0])}
    assert {"output.mp4", "poster.png", "contact_sheet.png", "frames.csv", "task.json", "prompt.txt"} <= names
    assert load_artifact(df.iloc[0], "prompt.txt").read_text() in {"a neon cyberpunk city at night",
                                                                   "a watercolor painting, soft pastel colours"}
    history = mlflow.MlflowClient().get_metric_history(df["run_id"][0], "per_frame.ssim_source")
    assert len(history) == 16
    parent = mlflow.get_run(result.parent_run_id)
    assert parent.data.metrics["cells_done"] == 4
    # Running it again pays nothing: every cell is already done.
    again = run_sweep(spec, progress=False)
    assert again.already_done == 4 and len(load_runs("quickstart")) == 4


def test_spec_forms_and_plan(mlflow_store, tmp_path):
    (tmp_path / "prompts.txt").write_text("# a comment\nnoir alley\n\nsepia street\n")
    spec = load_spec(write_spec(tmp_path, prompts={"file": "prompts.txt"}, seeds={"count": 3, "start": 10},
                                ratios=["1280:720", "960:960"], models=["gen4_aleph", "aleph2"]))
    from v2v_lab import InputError
    from v2v_lab.sweeps import build_plan

    plan = build_plan(spec)
    assert {c.prompt for c in plan.cells} == {"noir alley", "sepia street"}
    assert {c.seed for c in plan.cells} == {10, 11, 12}
    # aleph2's ratio is untyped in the SDK and ignored (the output follows the input): its cells
    # are planned without a ratio (once, not once per ratio: the same output, paid for once),
    # not left out silently, and the plan says so.
    assert len(plan.cells) == 2 * 3 * 2 + 3 * 2 and plan.excluded == []
    assert {(c.model, c.ratio) for c in plan.cells} == {("gen4_aleph", "1280:720"), ("gen4_aleph", "960:960"),
                                                        ("aleph2", None)}
    assert any(w.startswith("aleph2: takes no ratio from ratios:") for w in plan.warnings)
    # A ratio that no model of the spec takes is a mistake in the spec, not a combination to skip.
    with pytest.raises(InputError, match="ratio"):
        build_plan(spec.override(models=["gen4_aleph", "gen3a_turbo"], ratios=["1280:720", "1:1"]))
    assert any(w.startswith("gen4_aleph: the real endpoint ignores ratio") for w in plan.warnings)
    tmpl = load_spec(write_spec(tmp_path, prompts={"template": "{subject} as {style}",
                                                   "vars": {"subject": ["a cat", "a dog"], "style": ["anime"]}},
                                sample={"k": 3, "seed": 1}, seeds={"random": 2}))
    p1 = build_plan(tmpl, state_dir=tmp_path / "state")
    p2 = build_plan(tmpl, state_dir=tmp_path / "state")
    assert len(p1.cells) == 3 and [c.key for c in p1.cells] == [c.key for c in p2.cells]  # seeds recorded


def test_dry_run_figures(mlflow_store, tmp_path, capsys):
    spec = write_spec(tmp_path, models=["gen4_aleph", "gen3a_turbo"], ratios=["1280:720", "1280:768"])
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    # gen4_aleph: 4 cells x 5 s (its cap) x 15 = 300 credits; gen3a_turbo: 4 x 5.312 s x 5 = 106.24
    # (the clip's container runs 5.312 s: the longest of its durations is what is billed)
    assert "gen4_aleph" in out and "300.0" in out and "3.00" in out
    assert "gen3a_turbo" in out and "106.2" in out
    assert "8 cells planned" in out


def test_a_dry_run_decides_done_as_a_run_does_and_writes_nothing(mlflow_store, tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path, prompts=["neon city"], scoring={"enabled": False})
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    assert "2 cells planned" in capsys.readouterr().out
    assert not (tmp_path / "mlflow.db").exists()  # a dry run creates no store
    assert not (tmp_path / "state").exists()  # nor a state folder or an empty journal (V2V_LAB_HOME)
    assert run_sweep(str(spec), progress=False).counts == {"succeeded": 2}
    # The journal is gone (another machine, a fresh V2V_LAB_HOME); the store still holds both runs.
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "other-state"))
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 already done; 0 to run" in out, out
    assert run_sweep(str(spec), progress=False).already_done == 2  # and a real run agrees
    # Two more seeds: only they are priced.
    more = write_spec(tmp_path, prompts=["neon city"], seeds=[1, 2, 3, 4], scoring={"enabled": False})
    assert main(["sweep", str(more), "--dry-run"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("gen4_aleph"))
    assert "2 already done; 2 to run" in out and row[1:4] == ["2", "10.0", "150.0"], out


def test_budget_and_balance_refusals(mlflow_store, tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["sweep", str(spec), "--max-credits", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "budget.max_credits" in err and "200 over" in err
    with Emulator(credits=50) as emu:
        assert main(["sweep", str(spec), "--base-url", emu.base_url, "--no-progress"]) == 2
        assert "250 short" in capsys.readouterr().err
        assert emu.stats["tasks_total"] == 0
    with Emulator(daily_limit=2) as emu:
        assert main(["sweep", str(spec), "--base-url", emu.base_url, "--no-progress"]) == 2
        assert "daily limit (gen4_aleph)" in capsys.readouterr().err
        assert emu.stats["tasks_total"] == 0


@pytest.mark.parametrize("text, field", [
    ("experiment: x\nvideos: [a.mp4]\nprompts: [hi]\nbogus: 1\n", "bogus (line 4)"),
    ("experiment: x\nvideos: [missing.mp4]\nprompts: [hi]\n", "videos[0]"),
    ("experiment: x\nvideos: [a.mp4\n", "spec (line"),
])
def test_spec_errors_exit_2_naming_the_key(mlflow_store, tmp_path, capsys, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["sweep", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1


def test_killed_sweep_resumes_without_creating_twice(tmp_path):
    # One moment every run: three tasks created and recorded, all three held running (so none is done
    # and no fourth create is on the wire), and the sweep killed -9 as it records the third.
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "V2V_LAB_HOME": str(tmp_path / "state"), "V2V_LAB_FAILPOINTS": "task_recorded=3",
           "V2V_LAB_FAILPOINT_LOG": str(tmp_path / "failpoints.log")}
    with Emulator(render_scale=0.25, concurrency=3) as emu:
        spec = write_spec(tmp_path, seeds=[1, 2, 3, 4], base_url=emu.base_url, concurrency=3)
        cmd = [sys.executable, "-m", "v2v_lab.cli", "sweep", str(spec), "--no-progress"]
        with _helpers.HeldTasks(emu):
            killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert (tmp_path / "failpoints.log").read_text() == "task_recorded=3\n"
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        before = journal.task_ids("t")
        assert emu.stats["tasks_total"] == 3 and len(before) == 3
        env.pop("V2V_LAB_FAILPOINTS")
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert {r.state for r in journal.all("t").values()} == {"done"} and len(journal.all("t")) == 8
        # The three tasks created before the kill were taken up by id: eight cells, eight creates.
        after = journal.task_ids("t")
        assert emu.stats["tasks_total"] == 8 and all(len(ids) == 1 for ids in after.values())
        assert {k: after[k] for k in before} == before
        assert "unknown" not in rerun.stdout


def test_same_sweep_against_a_real_mlflow_server(mlflow_server, tmp_path, monkeypatch):
    uri = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    result = run_sweep(write_spec(tmp_path, seeds=[1]), progress=False)
    assert result.counts == {"succeeded": 2}
    df = load_runs("t", tracking_uri=uri)
    assert len(df) == 2 and df["ssim_source"].notna().all()
    assert load_artifact(df.iloc[0], "output.mp4", tracking_uri=uri).stat().st_size > 0


def test_compare_interval_on_a_known_difference():
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for prompt in range(10):
        for seed in range(4):
            base = rng.normal(0.6, 0.1)
            rows.append({"model": "a", "prompt": str(prompt), "seed": seed, "video_sha": "v", "ratio": "r",
                         "repeat": 0, "status": "succeeded", "ssim_source": base})
            rows.append({"model": "b", "prompt": str(prompt), "seed": seed, "video_sha": "v", "ratio": "r",
                         "repeat": 0, "status": "succeeded", "ssim_source": base - 0.05 + rng.normal(0, 0.01)})
    table = compare_frame(pd.DataFrame(rows), by="model", metric="ssim_source", baseline="a").set_index("group")
    assert table.loc["b", "pairs"] == 40
    assert table.loc["b", "diff_ci_low"] < -0.05 < table.loc["b", "diff_ci_high"]
    assert table.loc["b", "diff_ci_high"] < 0  # the difference is clearly there
    assert table.loc["a", "ci_low"] < table.loc["a", "mean"] < table.loc["a", "ci_high"]


def test_compare_by_seed_or_prompt_pairs_within_each_model_and_reference():
    """Two models x 3 prompts x 2 seeds (the issue's 12-run study): by seed, 6 pairs, one per model and
    prompt; by prompt, 4, one per model and seed. Never two models averaged into one pair."""
    rows = [{"model": m, "prompt": p, "prompt_sha": f"sha-{p}", "seed": s, "video": "clip.mp4", "video_sha": "v",
             "ratio": "r", "reference": "none", "repeat": 0, "status": "succeeded",
             # model b sits 0.3 above a; seed 2 is 0.01 above seed 1 in a only
             "ssim_source": 0.5 + 0.3 * (m == "b") + 0.01 * (s == 2 and m == "a") + 0.001 * int(p)}
            for m in ("a", "b") for p in ("1", "2", "3") for s in (1, 2)]
    runs = pd.DataFrame(rows)
    by_seed = compare_frame(runs, by="seed", metric="ssim_source", n_boot=50).set_index("group")
    assert by_seed.loc["2", "pairs"] == 6
    assert by_seed.loc["2", "diff"] == pytest.approx(0.005)  # the mean of 3 pairs at 0.01 and 3 at 0
    by_prompt = compare_frame(runs, by="prompt", metric="ssim_source", n_boot=50).set_index("group")
    assert list(by_prompt["pairs"]) == [4, 4, 4] and by_prompt.loc["3", "diff"] == pytest.approx(0.002)
    # A reference is a design factor too: outputs made with another reference are not a pair.
    other_ref = runs.assign(reference=np.where(runs.model == "b", "ref.png", "none"))
    assert compare_frame(other_ref, by="model", metric="ssim_source", n_boot=50).set_index("group").loc["b", "pairs"] == 0
    # Cells that would be averaged into one pair (two providers' runs of one design cell) are said.
    twice = pd.concat([runs, runs[runs.model == "b"].assign(provider="cometapi")]).assign(
        provider=lambda d: d["provider"].fillna("runway"))
    table = compare_frame(twice, by="model", metric="ssim_source", n_boot=50).set_index("group")
    assert table.loc["b", "pairs"] == 0 and "differ in provider" in table.loc["b", "note"]
    assert table.loc["b", "verdict"] == "undecided" and "sign-flip" in table.attrs["method"]


def test_scoring_failure_is_recorded_not_fatal(mlflow_store, tmp_path, monkeypatch):
    import v2v_lab.metrics as metrics  # where a sweep's cell finds score() when it scores

    def broken(*a, **k):
        raise ValueError("no frames")
    monkeypatch.setattr(metrics, "score", broken)
    result = run_sweep(write_spec(tmp_path, seeds=[1], prompts=["noir"]), progress=False)
    assert result.counts == {"succeeded": 1}
    df = load_runs("t")
    assert df["scoring_error"][0].startswith("scoring failed")


def test_an_output_that_is_not_a_video_is_recorded_never_a_crash(mlflow_store, tmp_path):
    from v2v_lab.emulator import FaultConfig

    # The service answers 200 with bytes that are no video: the download proves it cannot decode it,
    # the cell ends failed and recorded, the sweep goes on.
    spec = write_spec(tmp_path, seeds=[1], prompts=["noir"], max_task_retries=0)
    with Emulator(render_scale=0.25, queue_s=0.02, faults=FaultConfig(corrupt_output_rate=1.0)) as emu:
        result = run_sweep(spec, progress=False, base_url=emu.base_url)
    assert result.counts == {"failed": 1} and result.outcomes[0].failure_code == "DOWNLOAD_FAILED"
    assert "not a decodable video" in result.outcomes[0].note
    df = load_runs("t")
    assert list(df["status"]) == ["failed"] and list(df["failure_code"]) == ["DOWNLOAD_FAILED"]

    # The kept output is damaged on disk between a crash and the rerun that logs it: scoring and
    # the poster both fail on it, both are recorded on a finished run, and the sweep ends normally.
    spec = write_spec(tmp_path, experiment="t2", seeds=[1], prompts=["noir"])
    env = {**os.environ, "V2V_LAB_FAILPOINTS": "log_partial=1"}  # killed while logging
    killed = subprocess.run([sys.executable, "-m", "v2v_lab.cli", "sweep", str(spec), "--no-progress"], env=env,
                            capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    row = next(iter(Journal(tmp_path / "state" / "journal.sqlite").all("t2").values()))
    assert row.state == "paid" and Path(row.output_path).is_file()
    Path(row.output_path).write_text("<html>disk error</html>" * 100)
    result = run_sweep(spec, progress=False)
    assert result.counts == {"succeeded": 1}
    df = load_runs("t2")
    assert list(df["status"]) == ["succeeded"]
    error = df["scoring_error"][0]
    assert error.startswith("scoring failed") and "poster failed" in error, error


def test_failed_cells_are_runs_too(mlflow_store, tmp_path):
    result = run_sweep(write_spec(tmp_path, seeds=[1], prompts=["a gore scene"]), progress=False)
    assert result.counts == {"failed": 1}
    df = load_runs("t")
    assert df["status"][0] == "failed" and df["failure_code"][0] == "SAFETY.INPUT.TEXT"


def test_retry_failed_sends_only_retryable_failures_again(mlflow_store, tmp_path):
    from v2v_lab.emulator import FaultConfig

    spec = write_spec(tmp_path, prompts=["neon city", "a gore scene"], seeds=[1, 2], max_task_retries=0)
    with Emulator(render_scale=0.25, queue_s=0.02, faults=FaultConfig(task_failure_rate=1.0, seed=3)) as emu:
        first = run_sweep(spec, progress=False, base_url=emu.base_url)
        codes = sorted(o.failure_code for o in first.outcomes)
        assert first.counts == {"failed": 4}
        assert [c.split(".")[0] for c in codes] == ["INTERNAL", "INTERNAL", "SAFETY", "SAFETY"]
        assert emu.stats["tasks_total"] == 4  # moderation fails a task, as Runway does
    with Emulator(render_scale=0.25, queue_s=0.02) as emu:
        again = run_sweep(spec, progress=False, base_url=emu.base_url)
        assert again.counts == {"failed": 4} and emu.stats["tasks_total"] == 0  # nothing re-sent without the flag
        retried = run_sweep(spec, progress=False, base_url=emu.base_url, retry_failed=True)
        assert retried.counts == {"succeeded": 2, "failed": 2}
        assert emu.stats["tasks_total"] == 2  # the two INTERNAL cells, once each; moderation is final
        assert {o.cell.prompt for o in retried.outcomes if o.state == "succeeded"} == {"neon city"}
    df = load_runs("t")
    done = df[df["status"] == "succeeded"]
    assert len(done) == 2 and set(done["prompt"]) == {"neon city"}


def test_a_second_sweep_of_the_same_experiment_is_refused_while_one_runs(tmp_path, capsys):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "V2V_LAB_HOME": str(tmp_path / "state")}
    with Emulator(run_s=1.5, render_scale=0.1) as emu:
        spec = write_spec(tmp_path, seeds=[1, 2], base_url=emu.base_url)
        first = subprocess.Popen([sys.executable, "-m", "v2v_lab.cli", "sweep", str(spec), "--no-progress"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while emu.stats["tasks_total"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        created = emu.stats["tasks_total"]
        old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "V2V_LAB_HOME")}
        os.environ.update({k: env[k] for k in old})
        try:
            code = main(["sweep", str(spec), "--no-progress"])
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "experiment" in err[0] and "no other sweep" in err[0]
        assert created >= 1 and first.wait(120) == 0
        assert emu.stats["tasks_total"] == 4  # the first sweep's four cells; the refused one sent nothing


def test_logged_source_references_carry_no_credentials():
    from v2v_lab.tracking.records import source_ref as _source_ref

    assert _source_ref("https://user:pw@cdn.example.com:8443/v/a.mp4?X-Amz-Signature=abc&X-Amz-Credential=k") == \
        "https://cdn.example.com:8443/v/a.mp4"
    assert _source_ref("data:video/mp4;base64,AAAA") == "(inline data URI)"
    assert _source_ref(str(DEMO)) == str(DEMO)


def test_a_re_signed_url_keeps_its_cell_key():
    from v2v_lab.sweeps.plan import content_sha, stable_uri

    a = ("https://bucket.s3.amazonaws.com/clips/a.mp4?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256"
         "&X-Amz-Credential=AK%2F20261126&X-Amz-Date=20261126T000000Z&X-Amz-Expires=3600&X-Amz-Signature=aaa")
    b = a.replace("X-Amz-Signature=aaa", "X-Amz-Signature=bbb").replace("T000000Z", "T010000Z")
    assert stable_uri(a) == "https://bucket.s3.amazonaws.com/clips/a.mp4?versionId=3"
    assert content_sha(a) == content_sha(b)
    # What names the object still counts: another version is another video.
    assert content_sha(a) != content_sha(a.replace("versionId=3", "versionId=4"))
    sas = "https://acct.blob.core.windows.net/c/a.mp4?sv=2024-01-01&se=2026-12-01&sr=b&sp=r&sig=xyz"
    assert stable_uri(sas) == "https://acct.blob.core.windows.net/c/a.mp4"


def test_on_a_new_store_the_first_tasks_go_out_while_the_store_is_made(mlflow_store, tmp_path, monkeypatch):
    """Nothing is done in a store that does not exist yet, so a sweep on a new store does not wait
    for MLflow to load and make it: its first tasks are created meanwhile, and every cell is still
    logged once, under the sweep's parent run. Proven on events: opening the store here waits for
    the sweep's first create, which the old order (store first, then creates) never reaches."""
    import threading

    from v2v_lab.tracking import writer as writer_module

    created = threading.Event()
    opened_after_a_create: list[bool] = []
    real_init = writer_module.SweepWriter.__init__

    def init_after_first_create(self, *args, **kwargs):
        opened_after_a_create.append(created.wait(120))
        real_init(self, *args, **kwargs)

    def on_event(kind, cell, data):
        if kind == "created":
            created.set()

    monkeypatch.setattr(writer_module.SweepWriter, "__init__", init_after_first_create)
    assert not (tmp_path / "mlflow.db").exists()
    result = run_sweep(write_spec(tmp_path, seeds=[1, 2], prompts=["noir"], scoring={"enabled": False}),
                       progress=False, on_event=on_event)
    assert opened_after_a_create == [True]
    assert result.counts == {"succeeded": 2}
    runs = load_runs("t")
    assert len(runs) == 2 and runs["cell_key"].is_unique
    assert {mlflow.get_run(r).data.tags["mlflow.parentRunId"] for r in runs["run_id"]} == {result.parent_run_id}
    assert all(len(ids) == 1 for ids in Journal().task_ids("t").values())  # each cell paid once


def test_on_a_store_that_exists_no_task_goes_out_before_the_store_says_what_is_done(mlflow_store, tmp_path,
                                                                                    monkeypatch):
    """A store that exists may hold cells this state folder never heard of (another clone, a lost
    journal): there, the store is read before any create, and a cell done in it is not paid again."""
    spec = write_spec(tmp_path, seeds=[1], prompts=["noir"], scoring={"enabled": False})
    assert run_sweep(spec, progress=False).counts == {"succeeded": 1}
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "another-state-folder"))  # a journal that knows nothing
    events: list[str] = []
    again = run_sweep(spec, progress=False, on_event=lambda kind, cell, data: events.append(kind))
    assert again.counts == {"succeeded": 1} and again.already_done == 1
    assert "created" not in events
