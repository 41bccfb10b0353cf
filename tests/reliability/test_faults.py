"""100 cells against an emulator that fails like the real service: every cell ends recorded, retries
stay within limits, and no cell gets a second task unless the first definitely failed."""

from __future__ import annotations

from collections import Counter

from v2v_lab import load_runs, run_sweep
from v2v_lab.cli import main
from v2v_lab.emulator import Emulator, FaultConfig
from v2v_lab.sweeps import Journal

from .conftest import report, tasks_per_cell, write_spec

FAULTS = FaultConfig(seed=16, server_error_rate={"task": 0.20}, create_429_rate=0.10, drop_rate=0.10,
                     task_failure_rate=0.10, truncate_rate=0.05, safety_output_rate=0.03)


def test_a_hundred_cells_under_faults_end_recorded_and_never_double_billed(mlflow_store, tmp_path):
    prompts = [f"a city street, take {i}" for i in range(10)]
    spec = write_spec(tmp_path, prompts=prompts, seeds=list(range(10)), max_task_retries=2)
    with Emulator(faults=FAULTS, render_scale=0.1, queue_s=0.02, concurrency=8) as emu:
        result = run_sweep(spec, progress=False, base_url=emu.base_url)
        ledger = tasks_per_cell(emu)
        stats = emu.stats
    outcomes = Counter(o.state for o in result.outcomes)
    assert sum(outcomes.values()) == 100 and set(outcomes) <= {"succeeded", "failed", "unknown"}

    # Every cell is a run in MLflow with its final state, and the journal agrees.
    runs = load_runs("rel")
    assert len(runs) == 100 and runs["cell_key"].is_unique
    assert Counter(runs["status"]) == Counter(o.state for o in result.outcomes)  # one word for one state
    journal = Journal(tmp_path / "state" / "journal.sqlite").all("rel")
    # The journal's own word for a cell logged is "done" (its "paid" is a task paid, not yet logged).
    assert {k: r.state for k, r in journal.items()} == {o.cell.key: {"succeeded": "done"}.get(o.state, o.state)
                                                        for o in result.outcomes}

    # Tasks per cell, as the emulator counted them.
    by_cell = {(o.cell.model, o.cell.prompt, o.cell.seed, o.cell.ratio): o for o in result.outcomes}
    retries = 0
    internal_failed_cells = 0
    for key, outcome in by_cell.items():
        tasks = ledger.get(key, [])  # in creation order
        # A second task only after the one before it definitely failed (INTERNAL), and within the limit.
        for earlier in tasks[:-1]:
            assert (earlier["failure_code"] or "").startswith("INTERNAL"), (outcome.state, tasks)
        assert len(tasks) <= 1 + 2, tasks
        retries += len(tasks) - 1 if tasks else 0
        if outcome.state == "succeeded":
            assert tasks[-1]["status"] == "SUCCEEDED" and outcome.task_id == tasks[-1]["id"]
        elif outcome.state == "failed":
            assert outcome.failure_code.startswith(("SAFETY.OUTPUT", "INTERNAL")), outcome.failure_code
            assert outcome.task_id == tasks[-1]["id"] and tasks[-1]["failure_code"] == outcome.failure_code
            if outcome.failure_code.startswith("INTERNAL"):
                # INTERNAL is retried until the limit: the first task and both retries failed.
                internal_failed_cells += 1
                assert len(tasks) == 3, tasks
        else:  # unknown: a create's connection dropped (maybe a retry's); at most one task made by it
            assert outcome.failure_code == "CREATE_OUTCOME_UNKNOWN"
    # INTERNAL failures really were retried (with the retry switched off this is 0 and the INTERNAL
    # cells above end after one task).
    assert retries > 0, retries
    succeeded_tasks = sum(t["status"] == "SUCCEEDED" for ts in ledger.values() for t in ts)
    done = outcomes["succeeded"]
    assert succeeded_tasks - done <= outcomes["unknown"]  # only unknown creates can hide a paid task
    faults = stats["faults"]
    for kind in ("5xx_task", "429_create", "truncate_output", "task_internal", "task_safety_output"):
        assert faults.get(kind, 0) > 0, (kind, sorted(faults.items()))
    assert sum(v for k, v in faults.items() if k.startswith("drop_")) > 0
    report("faults", {"cells": 100, "outcomes": dict(outcomes), "faults_injected": faults,
                      "tasks_created": stats["tasks_total"], "task_retries_after_definite_failure": retries,
                      "cells_failed_internal_after_2_retries": internal_failed_cells,
                      "create_requests": stats["requests"].get("create", 0),
                      "duplicates": 0, "wall_s": round(result.wall_s, 1)})


def test_an_unknown_create_is_reported_and_resent_only_when_asked(mlflow_store, tmp_path, capsys):
    spec = write_spec(tmp_path, prompts=["neon city"], seeds=[1, 2])
    argv = ["sweep", str(spec), "--no-progress"]
    with Emulator(faults=FaultConfig(server_error_rate={"create": 1.0}), render_scale=0.1) as emu:
        assert main(argv + ["--base-url", emu.base_url]) == 0
        out = capsys.readouterr().out
        sent = emu.stats["requests"].get("create", 0)
    assert sent == 2  # one create per cell, never resent after its answer was lost
    assert "2 cell(s) have an unknown create outcome" in out
    assert {r.state for r in Journal(tmp_path / "state" / "journal.sqlite").all("rel").values()} == {"unknown"}
    with Emulator(render_scale=0.1) as emu:
        assert main(argv + ["--base-url", emu.base_url]) == 0
        out = capsys.readouterr().out
        assert emu.stats["requests"].get("create", 0) == 0  # a rerun reports again and sends nothing
        assert "2 cell(s) have an unknown create outcome" in out
        assert main(argv + ["--base-url", emu.base_url, "--retry-unknown"]) == 0
        assert emu.stats["requests"].get("create", 0) == 2 and emu.stats["tasks_total"] == 2
    assert {r.state for r in Journal(tmp_path / "state" / "journal.sqlite").all("rel").values()} == {"done"}
