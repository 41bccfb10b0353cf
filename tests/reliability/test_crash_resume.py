"""kill -9 at ten moments, each defined by what the sweep has done: the create on the wire; answered
but its task id not yet recorded; recorded; mid-download; downloaded; mid-log; logged; and from
outside, right after the emulator counted the k-th create. Each kill is followed by a rerun, and the
test proves that every kill landed where it was meant to. In the end every cell is done or reported
as unknown, no cell holds two paid successful tasks, and MLflow holds one complete run per done cell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from v2v_lab import load_runs
from v2v_lab.emulator import Emulator
from v2v_lab.sweeps import Journal

from .conftest import report, tasks_per_cell, write_spec

# (failpoint, which pass through it kills), or ("after_creates", k): killed from outside as soon as
# the emulator has counted k new creates from this run.
CELLS = 36
KILLS = [("create_sending", 2), ("after_creates", 2), ("create_answered", 1), ("task_recorded", 3),
         ("after_creates", 3), ("download_partial", 1), ("create_answered", 2), ("downloaded", 2),
         ("log_partial", 1), ("logged", 2)]


def _kill_after_creates(cmd: list[str], env: dict, emu: Emulator, k: int) -> tuple[int, int]:
    """Start a sweep and kill -9 it once the emulator has seen k more creates; (exit code, creates seen)."""
    before = emu.stats["tasks_total"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while emu.stats["tasks_total"] - before < k and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    return (code if alive else 0), emu.stats["tasks_total"] - before


def test_ten_kills_and_reruns_lose_nothing_and_pay_nothing_twice(tmp_path):
    fired_log = tmp_path / "failpoints.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "V2V_LAB_HOME": str(tmp_path / "state"), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
           "V2V_LAB_FAILPOINT_LOG": str(fired_log)}
    env.pop("V2V_LAB_FAILPOINTS", None)
    where: list[str] = []  # where each kill landed, as proven by the failpoint log or the emulator
    with Emulator(run_s=0.4, render_scale=0.1, queue_s=0.02, concurrency=4) as emu:
        # 36 cells: enough left for the last kills even when a loaded machine (CI runs two test
        # workers) lets a killed run finish more cells than it would alone.
        spec = write_spec(tmp_path, prompts=["neon city", "noir street", "winter park", "sepia film"],
                          seeds=list(range(CELLS // 4)), base_url=emu.base_url, concurrency=4)
        cmd = [sys.executable, "-m", "v2v_lab.cli", "sweep", str(spec), "--no-progress"]
        for point, nth in KILLS:
            if point == "after_creates":
                code, seen = _kill_after_creates(cmd, env, emu, nth)
                assert code == -signal.SIGKILL and seen >= nth, (point, nth, code, seen)
                where.append(f"{point}={nth}")
                continue
            lines_before = fired_log.read_text().splitlines() if fired_log.exists() else []
            code = subprocess.run(cmd, env={**env, "V2V_LAB_FAILPOINTS": f"{point}={nth}"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300).returncode
            fired = fired_log.read_text().splitlines()[len(lines_before):] if fired_log.exists() else []
            # The process died by kill -9, and by this failpoint's own hand at its nth pass: not elsewhere.
            assert code == -signal.SIGKILL and fired == [f"{point}={nth}"], (point, nth, code, fired)
            where.append(fired[0])
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        ledger = tasks_per_cell(emu)
        tasks_total = emu.stats["tasks_total"]
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        rows = journal.all("rel")
        runs = load_runs("rel", tracking_uri=env["MLFLOW_TRACKING_URI"])
        # Only when asked: resend the unknown cells. Runway has no task listing and no idempotency
        # key, so a create whose answer died with the process can't be found: resending may pay twice.
        retry = subprocess.run(cmd + ["--retry-unknown"], env=env, capture_output=True, text=True, timeout=300)
        assert retry.returncode == 0, retry.stderr
        after_retry = tasks_per_cell(emu)

    assert where == [f"{p}={n}" for p, n in KILLS]  # all ten kills hit a running sweep where meant
    states = Counter(r.state for r in rows.values())
    assert len(rows) == CELLS and set(states) <= {"done", "unknown"}, states
    # The kills at "create_answered" land between an answered create and the durable record of its
    # id: those cells cannot know their task, so they are reported, never silently sent again.
    assert states["unknown"] >= 2
    assert f"{states['unknown']} cell(s) have an unknown create outcome" in final.stdout

    succeeded_per_cell = {k: sum(t["status"] == "SUCCEEDED" for t in ts) for k, ts in ledger.items()}
    assert max(succeeded_per_cell.values()) == 1  # no cell holds two paid successful tasks
    assert all(len(ts) == 1 for ts in ledger.values())  # and none was ever sent twice
    ids = journal.task_ids("rel")
    for key, row in rows.items():
        if row.state == "done":
            assert ids[key] == [row.task_id]

    done_runs = runs[runs["status"] == "succeeded"]
    assert len(done_runs) == states["done"] and done_runs["cell_key"].is_unique
    assert set(runs["status"]) <= {"succeeded", "unknown"}  # no half-logged run survives a rerun
    # After --retry-unknown every cell is done. A second paid task exists exactly for the unknown
    # cells whose first create had in fact arrived (the orphans); the others got their only task now.
    assert {r.state for r in journal.all("rel").values()} == {"done"}
    unknown_cells = [k for k in after_retry if len(ledger.get(k, [])) != len(after_retry[k])]
    orphans = [k for k in unknown_cells if ledger.get(k)]
    assert len(unknown_cells) == states["unknown"]
    for key in unknown_cells:
        assert len(after_retry[key]) == len(ledger.get(key, [])) + 1
    report("crash_resume_retry_unknown", {"unknown_cells_resent": len(unknown_cells),
                                          "of_which_had_an_orphan_task": len(orphans)})
    report("crash_resume", {"cells": CELLS, "kills": where, "final_states": dict(states),
                            "tasks_created": tasks_total, "cells_with_two_successful_tasks": 0,
                            "unknown_reported": states["unknown"]})
