"""16 cells in flight writing to one SQLite MLflow store, while a second sweep process writes
another experiment into the same file: every run present and complete.

No timing decides what the test proves: the emulator holds tasks until the test lets them go, so
16 of ours and 8 of the other's are in flight together (the emulator's own count says so), and the
other's runs are logged after our first run and before our last (the sweep's own events say so)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

from mlflow import MlflowClient

from v2v_lab import load_runs, run_sweep
from v2v_lab.emulator import Emulator
from v2v_lab.emulator.state import ACTIVE

from .._helpers import HeldTasks, wait_until
from .conftest import report, write_spec

ARTIFACTS = {"output.mp4", "poster.png", "contact_sheet.png", "frames.csv", "task.json", "prompt.txt"}
OURS, THEIRS = "street", "lane"  # the two experiments' prompts start with these


def _prompt(task: Any) -> str:
    return task.request.get("promptText") or ""


def test_sixteen_in_flight_and_a_second_writer_leave_every_run_complete(mlflow_store, tmp_path):
    with Emulator(render_scale=0.1, queue_s=0.0, concurrency=24) as emu, HeldTasks(emu) as held:
        mine = write_spec(tmp_path, "load.yaml", experiment="load", prompts=[f"{OURS} {i}" for i in range(6)],
                          seeds=list(range(8)), concurrency=16, base_url=emu.base_url)
        other = write_spec(tmp_path, "other.yaml", experiment="load_other", prompts=[f"{THEIRS} {i}" for i in range(4)],
                           seeds=[1, 2, 3, 4], concurrency=8, base_url=emu.base_url)
        env = {**os.environ, "V2V_LAB_HOME": str(tmp_path / "state_other")}
        second = subprocess.Popen([sys.executable, "-m", "v2v_lab.cli", "sweep", str(other), "--no-progress"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        logged: list[str] = []  # our cells, as the sweep reports each one logged
        theirs_done = threading.Event()
        seen: dict[str, Any] = {}

        def in_flight(prefix: str) -> int:
            return sum(1 for t in emu.tasks() if (t["prompt"] or "").startswith(prefix) and t["status"] in ACTIVE)

        def conduct() -> None:
            # Every task held until both sweeps have all they may have in flight at once.
            try:
                wait_until(lambda: in_flight(OURS) == 16 and in_flight(THEIRS) == 8, 180,
                           lambda: f"in flight: ours {in_flight(OURS)} of 16, theirs {in_flight(THEIRS)} of 8")
                seen["in_flight"] = (16, 8)
            except AssertionError as exc:
                seen["error"] = exc
            # Then ours go on, theirs wait for our first logged run, and our seed-7 cells wait for the
            # other process to end: its runs are logged amid ours whatever the machine's speed.
            held.hold = lambda task: ((_prompt(task).startswith(THEIRS) and not logged)
                                      or (_prompt(task).startswith(OURS) and task.request.get("seed") == 7
                                          and not theirs_done.is_set()))
            try:
                seen["other"] = second.communicate(timeout=600)
            except subprocess.TimeoutExpired:  # never left waiting on it: ours go on, the test fails
                second.kill()
                seen["other"] = second.communicate()
            finally:
                theirs_done.set()

        conductor = threading.Thread(target=conduct, daemon=True)
        conductor.start()
        result = run_sweep(mine, progress=False,
                           on_event=lambda kind, cell, data: logged.append(cell.key) if kind == "done" else None)
        conductor.join(timeout=600)
    assert "error" not in seen, seen.get("error")
    assert second.returncode == 0, seen["other"][1]
    assert result.counts == {"succeeded": 48}
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
    # The store recorded what the holds arranged: every run of the other's finished while this sweep
    # was still writing its own (after our first, before our last).
    mine_ends, theirs_ends = sorted(ends["load"]), sorted(ends["load_other"])
    interleaved = sum(mine_ends[0] < t < mine_ends[-1] for t in theirs_ends)
    assert interleaved == len(theirs_ends), (interleaved, len(theirs_ends))
    report("store_load", {"other_writer_runs_finished_amid_ours": interleaved, "runs_checked": checked,
                          "in_flight_ours_and_theirs": list(seen["in_flight"]), "writers": 2,
                          "wall_s": round(result.wall_s, 1)})
