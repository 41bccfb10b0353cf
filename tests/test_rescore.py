"""rescore: new scores into the runs of a study already paid for, on Dask, through the command.

One real sweep (the console script, on the built-in emulator) makes the study once; each test
gets its own copy of the store (database and artifacts, paths rewritten), so it can damage it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ._helpers import run_cli as run
from ._helpers import study_cells as cells
from .conftest import STUDY_SPEC

pytestmark = pytest.mark.slow


def history_lengths(folder: Path, key: str) -> list[int]:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return [len(client.get_metric_history(r.info.run_id, key)) for r in cells(folder)]


def test_rescore_adds_new_metrics_to_the_same_runs_once_and_never_creates(study, emulator):
    before = {r.info.run_id: dict(r.data.metrics) for r in cells(study)}
    assert len(before) == 6 and all("structure" not in m for m in before.values())
    # An endpoint and a key in the environment, as a user who also sweeps would have: rescore uses neither.
    requests_before = sum(emulator.stats["requests"].values())
    endpoint = {"V2V_LAB_BASE_URL": emulator.base_url, "RUNWAYML_API_SECRET": "key_" + "0" * 60}
    first = run(["rescore", "study", "--metrics", "structure,motion_epe,piqe", "--workers", "2"], study, **endpoint)
    assert first.returncode == 0, first.stderr
    assert "6 rescored (18 values)" in first.stdout, first.stdout
    after = cells(study)
    assert {r.info.run_id for r in after} == set(before)  # the same runs, no new ones
    for r in after:
        assert 0 <= r.data.metrics["structure"] <= 1 and r.data.metrics["motion_epe"] >= 0
        assert r.data.metrics["ssim_source"] == before[r.info.run_id]["ssim_source"]  # old values untouched
        assert r.data.params["score.motion_epe.unit"] == "px at analysis_size"
        assert r.data.params["score.sampling"] == "frames=16,size=256,crop=center"
    again = run(["rescore", "study", "--metrics", "structure,motion_epe,piqe"], study)
    assert again.returncode == 0 and "0 rescored (0 values), 6 already had them" in again.stdout, again.stdout
    assert history_lengths(study, "structure") == [1] * 6
    assert sum(emulator.stats["requests"].values()) == requests_before  # not a request, let alone a create
    assert endpoint["RUNWAYML_API_SECRET"] not in first.stdout + first.stderr


def test_a_changed_scoring_size_goes_under_its_own_name(study):
    done = run(["rescore", "study", "--metrics", "ssim_source", "--size", "128", "--workers", "1"], study)
    assert done.returncode == 0, done.stderr
    for r in cells(study):
        assert "ssim_source" in r.data.metrics and "ssim_source.size128.frames16" in r.data.metrics
        assert r.data.params["score.ssim_source.size128.frames16.sampling"] == "frames=16,size=128,crop=center"
        assert r.data.params["score.ssim_source.size128.frames16.analysis_size"].endswith("x128")
        assert r.data.params["score.analysis_size"] == "320x180"  # the original's params stay (a 0.25 render: never upscaled)


def test_a_kill_mid_rescore_then_a_rerun_writes_each_value_once(study):
    log = study / "failpoints.log"
    killed = run(["rescore", "study", "--metrics", "structure", "--workers", "1"], study,
                 V2V_LAB_FAILPOINTS="rescore_written=3", V2V_LAB_FAILPOINT_LOG=str(log))
    assert killed.returncode == -9 and log.read_text() == "rescore_written=3\n", (killed.returncode, killed.stderr)
    written = [r for r in cells(study) if "structure" in r.data.metrics]
    assert len(written) == 3
    rerun = run(["rescore", "study", "--metrics", "structure", "--workers", "1"], study)
    assert rerun.returncode == 0 and "3 rescored (3 values), 3 already had them" in rerun.stdout, rerun.stdout
    assert history_lengths(study, "structure") == [1] * 6
    assert history_lengths(study, "per_frame.structure") == [16] * 6


# What a sweep scored with structure's version 1 recorded (v2v_lab.metrics.structure before issue 31).
STRUCTURE_V1_PARAMS = {"feature": "colour gradient magnitude (sobel 3x3 per rgb channel)", "presmooth_sigma": "1.0",
                       "comparison": "pearson correlation per frame, floored at 0", "pairs": "source_t vs output_t"}


def test_runs_scored_with_structure_version_1_keep_it_and_get_version_2_under_its_own_name(study):
    from v2v_lab.metrics.structure import PARAMS
    from v2v_lab.rescoring import _params_of, _version

    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    for r in cells(study):
        for k, v in STRUCTURE_V1_PARAMS.items():
            client.log_param(r.info.run_id, f"score.structure.{k}", v)
        client.log_metric(r.info.run_id, "structure", 0.42)
    done = run(["rescore", "study", "--metrics", "structure", "--workers", "1"], study)
    assert done.returncode == 0 and "6 rescored (6 values)" in done.stdout, (done.stdout, done.stderr)
    key = f"structure.v{_version(_params_of('structure'))}"
    for r in cells(study):
        assert r.data.metrics["structure"] == 0.42  # version 1's value stays, under its own name
        assert 0 <= r.data.metrics[key] <= 1
        assert r.data.params[f"score.{key}.version"] == str(PARAMS["version"]) == "2"
        assert r.data.params[f"score.{key}.presmooth_sigma"] == "0.5"


def test_gone_outputs_are_reported_not_fatal(study):
    runs = cells(study)
    gone = runs[0]
    os.remove(gone.info.artifact_uri + "/output.mp4")
    done = run(["rescore", "study", "--metrics", "structure", "--workers", "1"], study)
    assert done.returncode == 0, done.stderr
    assert "5 rescored (5 values), 0 already had them, 1 outputs gone" in done.stdout, done.stdout
    assert f"gone   {gone.info.run_id}: output artifact not found" in done.stdout
    assert "structure" not in {r.info.run_id: r for r in cells(study)}[gone.info.run_id].data.metrics


def test_rescore_on_a_running_dask_scheduler(study):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        done = run(["rescore", "study", "--metrics", "warp_error", "--scheduler", cluster.scheduler_address], study)
    assert done.returncode == 0, done.stderr
    assert "6 rescored (6 values)" in done.stdout
    assert all("warp_error" in r.data.metrics for r in cells(study))


@pytest.mark.parametrize(("args", "field"), [
    (["rescore", "nope"], "experiment"),
    (["rescore", "study", "--metrics", "ssim,made_up"], "metrics"),
    (["rescore", "study", "--workers", "0"], "--workers"),
    (["rescore", "study", "--scheduler", "localhost:8786"], "scheduler"),
    (["rescore", "study", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
])
def test_bad_rescore_input_is_one_line_naming_the_field(study, args, field):
    done = run(args, study)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and field in lines[0], done.stderr
    assert history_lengths(study, "ssim_source") == [1] * 6  # nothing written


def test_a_study_swept_without_scores_takes_the_plain_names_at_any_size(tmp_path):
    """Scoring off, then `rescore --size 128`: the runs held no value measured any way, so the values
    go under the plain names (with their sampling recorded), and `runs` shows them, not NaN."""
    (tmp_path / "spec.yaml").write_text(STUDY_SPEC.replace("scoring: {metrics: [ssim_source, flicker]}",
                                                     "scoring: {enabled: false}"))
    assert run(["sweep", "spec.yaml", "--yes"], tmp_path).returncode == 0
    done = run(["rescore", "study", "--size", "128", "--metrics", "ssim_source,flicker", "--workers", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    runs = cells(tmp_path)
    assert all({"ssim_source", "flicker"} <= set(r.data.metrics) for r in runs)
    assert not any(k.startswith(("ssim_source.", "flicker.")) for r in runs for k in r.data.metrics)
    assert all(r.data.params["score.sampling"] == "frames=16,size=128,crop=center" for r in runs), runs[0].data.params
    table = run(["runs", "study", "--metrics", "ssim_source,flicker"], tmp_path).stdout.split("\n\n")[0]
    assert " - " not in table and "nan" not in table.lower()


def test_outputs_batched_per_task_are_each_written_once_and_a_bad_one_fails_alone(study):
    """Tasks of 4 outputs over 6 runs (two tasks, one of them short): each run's values are written
    once, and an output that is not a video fails that run only, not the other outputs of its task."""
    from v2v_lab.rescoring import rescore

    runs = cells(study)
    bad = runs[2]
    Path(bad.info.artifact_uri, "output.mp4").write_bytes(b"not a video at all")
    result = rescore("study", ["structure"], workers=1, batch=4, tracking_uri=f"sqlite:///{study / 'mlflow.db'}")
    assert set(result.failed) == {bad.info.run_id}, result.summary()
    assert set(result.written) == {r.info.run_id for r in runs} - {bad.info.run_id}
    lengths = {r.info.run_id: len(MlflowClient(f"sqlite:///{study / 'mlflow.db'}").get_metric_history(
        r.info.run_id, "structure")) for r in runs}
    assert lengths == {r.info.run_id: 0 if r is bad else 1 for r in runs}
    assert history_lengths(study, "per_frame.structure") == [0 if r.info.run_id == bad.info.run_id else 16
                                                            for r in cells(study)]


def test_tasks_hold_several_outputs_of_one_source_and_at_most_sixteen():
    from v2v_lab.rescoring import RescoreJob, _batches, batch_size

    assert batch_size(200, 2) == 12 and batch_size(200, 8) == 3 and batch_size(6, 1) == 1
    assert batch_size(10_000, 2) == 16
    jobs = [RescoreJob(f"r{i}", f"src{i % 3}.mp4", f"o{i}", {}, None, 16, 256, "center", "") for i in range(10)]
    tasks = _batches(jobs, 4)
    assert [len(t) for t in tasks] == [4, 4, 2]
    assert sorted(j.run_id for t in tasks for j in t) == sorted(j.run_id for j in jobs)
    assert [j.source for j in tasks[0]] == ["src0.mp4"] * 4  # one source's outputs together
