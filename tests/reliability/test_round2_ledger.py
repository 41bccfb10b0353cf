"""Paying twice on the team ledger (issue 26, cases 3 and 4): processes sharing one spec through
PostgreSQL draw its random seeds once, in the ledger, and a process whose claim passed to another
while it was stopped stands down instead of logging the cell a second time.

Creates are counted by the emulator itself; complete runs are counted in the team's store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from v2v_lab.emulator import Emulator

from .. import _helpers
from .._helpers import HeldTasks
from ..conftest import DEMO
from ..test_team import CLI, _member_env
from .conftest import report

pytestmark = pytest.mark.team


SPEC = {"provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"], "prompts": ["neon city"], "seeds": [1],
        "concurrency": 4, "scoring": {"frames": 4, "size": 64}}


def write_spec(folder: Path, experiment: str, **over) -> Path:
    return _helpers.write_spec(folder, SPEC, experiment=experiment, **over)


def sweep(folder: Path, stack: dict[str, str], emu: Emulator, home: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "sweep", "spec.yaml", "--base-url", emu.base_url, "--no-progress"], cwd=folder,
                            env=_member_env(stack, folder / home, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def complete_runs(stack: dict[str, str], experiment: str) -> dict[str, int]:
    """cell key -> complete runs (succeeded, FINISHED, not deleted) of that cell in the team's store."""
    client = MlflowClient(stack["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, int] = {}
    for run in client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'cell'", max_results=500):
        if run.data.tags.get("v2v.status") == "succeeded" and run.info.status == "FINISHED":
            key = run.data.tags["v2v.cell_key"]
            out[key] = out.get(key, 0) + 1
    return out


# -- case 3 ------------------------------------------------------------------------------------------
def test_3_random_seeds_on_a_ledger_are_drawn_once_and_shared(team, tmp_path):
    experiment = f"r2_seeds_{uuid.uuid4().hex[:8]}"
    write_spec(tmp_path, experiment, seeds={"random": 3})
    with Emulator(render_scale=0.1, run_s=2.0) as emu:
        procs = [sweep(tmp_path, team, emu, f"machine{i}") for i in range(2)]  # started together
        ended = [p.communicate(timeout=300) for p in procs]
        tasks = emu.tasks()
    report("round2_3_ledger_random_seeds", {"creates": len(tasks), "seeds": sorted({t["seed"] for t in tasks})})
    for proc, (out, err) in zip(procs, ended, strict=True):
        assert proc.returncode == 0, err[-1500:]
        assert "3 cells: 3 succeeded" in out, out[-1000:]
    assert len(tasks) == 3, f"one spec of 3 random seeds, {len(tasks)} creates"
    assert len({t["seed"] for t in tasks}) == 3
    assert sorted(complete_runs(team, experiment).values()) == [1, 1, 1]


# -- case 4 ------------------------------------------------------------------------------------------
def _stopped_holding_a_created_cell(ledger_url: str, pid: int) -> bool:
    """The (stopped) process holds a cell whose task is created, and holds no row lock that the
    process taking over would wait on (stopped mid-transaction, it would block the other)."""
    import psycopg

    with psycopg.connect(ledger_url) as db:
        states = [s for (s,) in db.execute(
            "SELECT c.state FROM cells c JOIN claims k USING (experiment, cell_key) WHERE k.owner LIKE %s",
            (f"%:{pid}:%",)).fetchall()]
        if "created" not in states or "sending" in states:
            return False
        try:
            for table in ("claims", "slots"):
                db.execute(f"SELECT 1 FROM {table} WHERE owner LIKE %s FOR UPDATE NOWAIT", (f"%:{pid}:%",))
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            db.rollback()
    return True


def test_4_a_process_whose_claim_passed_on_while_it_was_stopped_does_not_log_the_cell_again(team, tmp_path):
    experiment = f"r2_fence_{uuid.uuid4().hex[:8]}"
    write_spec(tmp_path, experiment)
    # The task is held running until the first process is stopped holding its cell (a fixed run_s
    # of 8 s was a bet that the first could not log it before it was caught).
    with Emulator(render_scale=0.1) as emu, HeldTasks(emu) as held:
        first = sweep(tmp_path, team, emu, "a", V2V_LAB_LEASE_S="3")
        deadline = time.monotonic() + 180
        stopped = False
        while time.monotonic() < deadline and first.poll() is None:
            if emu.tasks():
                os.kill(first.pid, signal.SIGSTOP)
                if _stopped_holding_a_created_cell(team["V2V_LAB_LEDGER_URL"], first.pid):
                    stopped = True
                    break
                os.kill(first.pid, signal.SIGCONT)
            time.sleep(0.05)
        held.release()
        assert stopped, f"the first process was not stopped holding its created cell: {first.communicate()[1][-1500:]}"
        try:
            # Its lease runs out; the second takes the cell over, takes up its task by id, ends it.
            second = sweep(tmp_path, team, emu, "b", V2V_LAB_LEASE_S="3")
            out_b, err_b = second.communicate(timeout=300)
        finally:
            os.kill(first.pid, signal.SIGCONT)  # and now the first goes on from where it stood
        out_a, err_a = first.communicate(timeout=300)
        creates = len(emu.tasks())
    runs = complete_runs(team, experiment)
    report("round2_4_ledger_fenced_log", {"creates": creates, "complete_runs": sorted(runs.values())})
    assert second.returncode == 0, err_b[-1500:]
    assert "1 cells: 1 succeeded" in out_b, out_b[-1000:]
    assert first.returncode == 0, err_a[-1500:]
    assert creates == 1
    assert list(runs.values()) == [1], f"one cell, {sum(runs.values())} complete runs of it"
