"""16 cells in flight writing to one SQLite MLflow store, while a second sweep process writes
another experiment into the same file: every run present and complete."""

from __future__ import annotations

import os
import subprocess
import sys

from mlflow import MlflowClient

from v2v_lab import load_runs, run_sweep
from v2v_lab.emulator import Emulator

from .conftest import report, write_spec

ARTIFACTS = {"output.mp4", "poster.png", "contact_sheet.png", "frames.csv", "task.json", "prompt.txt"}


def test_sixteen_in_flight_and_a_second_writer_leave_every_run_complete(mlflow_store, tmp_path):
    prompts = [f"street {i}" for i in range(6)]
    with Emulator(render_scale=0.1, queue_s=0.0, run_s=0.3, concurrency=16) as emu:
        mine = write_spec(tmp_path, "load.yaml", experiment="load", prompts=prompts, seeds=list(range(8)),
                          concurrency=16, base_url=emu.base_url)
        other = write_spec(tmp_path, "other.yaml", experiment="load_other", prompts=prompts[:4], seeds=[1, 2, 3, 4],
                           concurrency=8, base_url=emu.base_url)
        env = {**os.environ, "V2V_LAB_HOME": str(tmp_path / "state_other")}
        second = subprocess.Popen([sys.executable, "-m", "v2v_lab.cli", "sweep", str(other), "--no-progress"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        in_flight = []
        result = run_sweep(mine, progress=False,
                           on_event=lambda kind, cell, data: in_flight.append(emu.stats["task_statuses"]))
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err
    peak = max(s.get("RUNNING", 0) + s.get("PENDING", 0) + s.get("THROTTLED", 0) for s in in_flight)
    assert result.counts == {"succeeded": 48} and peak >= 12, peak
    client = MlflowClient(mlflow_store)
    checked = 0
    ends: dict[str, list[int]] = {}
    for experiment, n in (("load", 48), ("load_other", 16)):
        runs = load_runs(experiment)
        assert len(runs) == n and runs["cell_key"].is_unique and set(runs["status"]) == {"succeeded"}
        for run_id in runs["run_id"]:
            run = client.get_run(run_id)
            assert run.info.status == "FINISHED"
            ends.setdefault(experiment, []).append(run.info.end_time)
            assert {"model", "prompt", "seed", "ratio", "video"} <= set(run.data.params)
            assert {"ssim_source", "temporal_consistency", "warp_error", "flicker"} <= set(run.data.metrics)
            assert len(client.get_metric_history(run_id, "per_frame.ssim_source")) == 4
            assert {a.path for a in client.list_artifacts(run_id)} == ARTIFACTS
            checked += 1
    # The two processes really wrote at the same time: the other's runs were finished while this
    # sweep was still finishing its own, interleaved with them, not before or after.
    mine, theirs = sorted(ends["load"]), sorted(ends["load_other"])
    interleaved = sum(mine[0] < t < mine[-1] for t in theirs)
    assert interleaved >= len(theirs) // 2, (interleaved, len(theirs))
    report("store_load", {"other_writer_runs_finished_amid_ours": interleaved,"runs_checked": checked, "peak_in_flight": peak, "writers": 2,
                          "wall_s": round(result.wall_s, 1)})
