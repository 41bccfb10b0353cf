"""100 cells against an emulator that fails like the real service: every cell ends recorded, retries
stay within limits, and no cell gets a second task unless the first definitely failed."""

from __future__ import annotations

from collections import Counter

from v2v_lab import load_runs, run_sweep
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
    assert sum(outcomes.values()) == 100 and set(outcomes) <= {"done", "failed", "unknown"}

    # Every cell is a run in MLflow with its final state, and the journal agrees.
    runs = load_runs("rel")
    assert len(runs) == 100 and runs["cell_key"].is_unique
    assert Counter(runs["status"]) == Counter({"done": "succeeded"}.get(s, s) for s in
                                              (o.state for o in result.outcomes))
    journal = Journal(tmp_path / "state" / "journal.sqlite").all("rel")
    assert {k: r.state for k, r in journal.items()} == {o.cell.key: o.state for o in result.outcomes}

    # Tasks per cell, as the emulator counted them.
    by_cell = {(o.cell.model, o.cell.prompt, o.cell.seed, o.cell.ratio): o for o in result.outcomes}
    retries = 0
    for key, outcome in by_cell.items():
        tasks = ledger.get(key, [])
        definite_failures = [t for t in tasks if (t["failure_code"] or "").startswith("INTERNAL")]
        others = [t for t in tasks if t not in definite_failures]
        # A second task only after the first definitely failed (INTERNAL), and within the limit.
        assert len(others) <= 1, (outcome.state, tasks)
        assert len(tasks) <= 1 + 2, tasks
        retries += max(0, len(tasks) - 1)
        if outcome.state == "done":
            assert [t["status"] for t in others] == ["SUCCEEDED"] and outcome.task_id == others[0]["id"]
        elif outcome.state == "failed":
            assert outcome.failure_code.startswith(("SAFETY.OUTPUT", "INTERNAL")), outcome.failure_code
        else:  # unknown: the create's connection dropped; at most the one task the emulator may have made
            assert outcome.failure_code == "CREATE_OUTCOME_UNKNOWN"
    succeeded_tasks = sum(t["status"] == "SUCCEEDED" for ts in ledger.values() for t in ts)
    done = outcomes["done"]
    assert succeeded_tasks - done <= outcomes["unknown"]  # only unknown creates can hide a paid task
    faults = stats["faults"]
    for kind in ("5xx_task", "429_create", "truncate_output", "task_internal", "task_safety_output"):
        assert faults.get(kind, 0) > 0, (kind, sorted(faults.items()))
    assert sum(v for k, v in faults.items() if k.startswith("drop_")) > 0
    report("faults", {"cells": 100, "outcomes": dict(outcomes), "faults_injected": faults,
                      "tasks_created": stats["tasks_total"], "task_retries_after_definite_failure": retries,
                      "create_requests": stats["requests"].get("create", 0),
                      "duplicates": 0, "wall_s": round(result.wall_s, 1)})
