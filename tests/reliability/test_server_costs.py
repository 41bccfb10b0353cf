"""What a task cost is what the server says (issue 28): the journal keeps each create's estimate,
the server's estimatedCost and its cost; a budget holds against what is in flight even when the
catalog's price is stale; a kill between a create's answer and its record leaves its reservation
counted; the emulator charges as Runway does (its own prices with --prices, "auto" refunded,
a cancel while RUNNING charged in full, while PENDING nothing).

The server's side is counted by the emulator itself (its tasks' costs and its usage endpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from v2v_lab.api.catalog import load_catalog, load_prices
from v2v_lab.cli import main
from v2v_lab.emulator import Emulator
from v2v_lab.sweeps.journal import Journal

from .._helpers import server_charged
from .conftest import report, tasks_per_cell, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
KEY = "key_" + "cd" * 64


def _stale_emulator(tmp_path: Path, factor: float = 2.0) -> Emulator:
    """An endpoint charging `factor` times the client's catalog price for aleph2 (`--prices FILE`)."""
    prices = tmp_path / "prices.yaml"
    base = load_catalog()["aleph2"].credits_per_second
    prices.write_text(yaml.safe_dump({"models": {"aleph2": {"credits_per_second": base * factor}}}))
    return Emulator(render_scale=0.1, queue_s=0.01, catalog=load_prices(prices))


def _server_charged(emu: Emulator) -> float:
    return server_charged(emu.base_url, KEY)


def _paid_spec(tmp_path: Path, experiment: str, prompts: int = 3, seeds: int = 4) -> Path:
    return write_spec(tmp_path, experiment=experiment, provider="runway", models=["aleph2"], ratios=[None],
                      prompts=["neon city", "watercolor", "noir", "ink"][:prompts], seeds=list(range(1, seeds + 1)),
                      concurrency=6)


def test_a_stale_catalog_never_charges_past_the_cap_and_a_higher_cap_takes_up_the_rest(
        mlflow_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
    spec = _paid_spec(tmp_path, "stale-price")
    with _stale_emulator(tmp_path) as emu:
        assert main(["sweep", str(spec), "--dry-run"]) == 0
        estimate = float(next(line for line in capsys.readouterr().out.splitlines()
                              if line.startswith("aleph2")).split()[3].replace(",", ""))
        cap = estimate + 1  # the catalog's estimate of all 12 fits
        assert main(["sweep", str(spec), "--no-progress", "--base-url", emu.base_url, "--yes",
                     "--max-credits", f"{cap:g}"]) == 0
        out, err = capsys.readouterr()
        charged = _server_charged(emu)
        assert charged <= cap, f"the server charged {charged} past the cap {cap}"
        assert "warning: price: aleph2 costs 2.00x the catalog's price" in err
        ran = len(emu.tasks())
        assert 0 < ran < 12 and f"{12 - ran} not started" in out and "not started (budget)" in out
        # The runs record the server's costs (integers), with the estimate beside them.
        runs = mlflow.search_runs(experiment_names=["stale-price"], filter_string="tags.`v2v.kind` = 'cell'")
        assert len(runs) == ran
        task_costs = {t["id"]: t for t in emu.tasks()}
        assert set(runs["tags.v2v.credits_source"]) == {"server"}
        assert runs["metrics.credits"].sum() == charged
        assert all(float(c).is_integer() for c in runs["metrics.credits"])
        assert (runs["metrics.credits_estimated"] > 0).all()
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        rows = journal.charges("stale-price")
        journal.close()
        assert len(rows) == ran and all(r.task_id in task_costs and r.cost is not None and r.estimated_cost
                                        for r in rows)
        # A higher cap takes up the cells left, and pays for nothing twice.
        assert main(["sweep", str(spec), "--no-progress", "--base-url", emu.base_url, "--yes",
                     "--max-credits", f"{3 * cap:g}"]) == 0
        out, err = capsys.readouterr()
        assert "12 cells: 12 succeeded" in out
        per_cell = tasks_per_cell(emu)
        assert len(per_cell) == 12 and all(len(t) == 1 for t in per_cell.values())
        total = _server_charged(emu)
        assert total <= 3 * cap
        # Reconciled with the account's usage: the first sweep's spend is other work for this one.
        assert f"reconciliation: the account spent {charged:g} credits more than this sweep recorded on aleph2" in err
        assert main(["runs", "stale-price"]) == 0
        assert (f"spent on aleph2: {total:g} credits over 12 runs; the account reported {total:g} for the days of "
                "the latest sweep") in capsys.readouterr().out
    report("issue28_stale_price", {"cap": cap, "server_charge": charged, "cells_run": ran, "cells_left": 12 - ran})


def test_a_kill_between_the_create_answer_and_its_record_keeps_the_reservation_counted(mlflow_store, tmp_path):
    """The create was answered (the money may be spent) and the process died before the task id
    was written: the rerun counts that create's estimate against the cap, so the cap holds."""
    spec = _paid_spec(tmp_path, "killed-reserved", prompts=1, seeds=3)
    with _stale_emulator(tmp_path, factor=1.0) as emu:
        per_cell = load_catalog()["aleph2"]
        env = {**os.environ, "RUNWAYML_API_SECRET": KEY, "V2V_LAB_FAILPOINTS": "create_answered=1"}
        done = subprocess.run([CLI, "sweep", str(spec), "--no-progress", "--base-url", emu.base_url, "--yes",
                               "--concurrency", "1"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == -9, done.stderr[-2000:]
        assert len(emu.tasks()) == 1
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        [kept] = journal.charges("killed-reserved")
        journal.close()
        assert kept.task_id is None and kept.estimate > 0  # the reservation, its task id never recorded
        # A cap with room for two more cells but not three: the lost create's estimate still counts.
        cap = kept.estimate * 3 - 1
        env.pop("V2V_LAB_FAILPOINTS")
        rerun = subprocess.run([CLI, "sweep", str(spec), "--no-progress", "--base-url", emu.base_url, "--yes",
                                "--max-credits", f"{cap:g}"], env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 2 and "budget.max_credits" in rerun.stderr, rerun.stdout + rerun.stderr
        assert len(emu.tasks()) == 1, "a create left past the cap"
        assert per_cell.credits_per_second > 0


def test_auto_duration_is_refunded_and_the_server_cost_is_what_the_run_records(mlflow_store, tmp_path,
                                                                             monkeypatch, capsys):
    monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
    spec = write_spec(tmp_path, experiment="auto-refund", provider="runway", ratios=[None],
                      models=[{"seedance2": {"duration": "auto"}}])
    with Emulator(render_scale=0.1, queue_s=0.01) as emu:
        assert main(["sweep", str(spec), "--no-progress", "--base-url", emu.base_url, "--yes"]) == 0
        capsys.readouterr()
        [task] = emu.state.ledger
        assert task.charged_credits < task.estimated_credits  # billed at the maximum up front, refunded after
        runs = mlflow.search_runs(experiment_names=["auto-refund"], filter_string="tags.`v2v.kind` = 'cell'")
        assert runs["metrics.credits"].tolist() == [task.charged_credits]
        assert runs["metrics.credits_estimated"].iloc[0] > task.charged_credits


def test_the_emulator_charges_a_cancel_while_running_in_full_and_while_pending_nothing():
    from v2v_lab.api import GenerationRequest, RunwayClient

    # One aleph2 task at a time: the first runs (for 30 s), the second waits THROTTLED behind it.
    with Emulator(render_scale=0.1, queue_s=0.01, run_s=30, concurrency=1) as emu, \
            RunwayClient("local", base_url=emu.base_url) as client:
        first = client.create(GenerationRequest(_demo(), "a", "aleph2"))
        deadline = time.monotonic() + 30
        while client.get_task(first).status.value != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        second = client.create(GenerationRequest(_demo(), "b", "aleph2"))
        assert client.get_task(second).status.value in ("PENDING", "THROTTLED")
        client.cancel(first)
        client.cancel(second)
        charged = {t.id: (t.charged_credits, t.estimated_credits) for t in emu.state.ledger}
        assert _server_charged(emu) == charged[first][0]
    assert charged[first][0] == pytest.approx(charged[first][1], abs=1) and charged[first][0] > 0
    assert charged[second][0] == 0


def _demo() -> str:
    from ..conftest import DEMO

    return str(DEMO)


def test_the_emulator_command_charges_by_its_prices_file(tmp_path):
    """`v2v-lab emulator --prices FILE` as a user types it: the create's estimatedCost follows the
    file (twice the catalog's aleph2 price here), not the client's catalog."""
    from v2v_lab.api import GenerationRequest, RunwayClient
    from v2v_lab.media import probe_video

    base = load_catalog()["aleph2"].credits_per_second
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models: {{aleph2: {{credits_per_second: {2 * base:g}}}}}\n")
    proc = subprocess.Popen([CLI, "emulator", "--port", "0", "--prices", str(prices), "--render-scale", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = proc.stdout.readline().split()[-1]
        with RunwayClient("local", base_url=url) as client:
            created = client.create_task(GenerationRequest(_demo(), "a", "aleph2"))
        catalog_price = load_catalog()["aleph2"].estimate_credits(probe_video(_demo()).duration_s, {})
        assert created.estimated_cost == pytest.approx(2 * catalog_price, abs=0.02)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)


def test_a_provider_that_sends_no_cost_is_charged_at_the_estimate_and_marked_so(tmp_path):
    """An older API or a proxy that sends neither estimatedCost nor cost: the journal keeps the
    estimate as the task's cost, marked "estimate", and it still counts against the cap."""
    import asyncio

    from v2v_lab.api.task import CreatedTask, parse_task
    from v2v_lab.sweeps.plan import Cell
    from v2v_lab.sweeps.spend import NotStartedError, SpendGuard

    journal = Journal(tmp_path / "journal.sqlite")
    guard = SpendGuard(journal, "no-cost", load_catalog(), cap=100.0, say=lambda _: None)
    cell = Cell("k1", _demo(), "sha", "aleph2", "p", 1, None, None, None, 0, 5.0, 5.0, 60.0, {})
    other = Cell("k2", _demo(), "sha", "aleph2", "p", 2, None, None, None, 0, 5.0, 5.0, 60.0, {})

    async def run() -> float:
        r = await guard.reserve(cell)
        await guard.created(r, CreatedTask("t1", None))
        cost = await guard.ended(cell, parse_task({"id": "t1", "status": "SUCCEEDED", "output": ["u"]}))
        with pytest.raises(NotStartedError):  # 60 kept + 60 more is past the cap of 100
            await guard.reserve(other)
        return cost

    assert asyncio.run(run()) == 60.0
    [charge] = journal.charges("no-cost")
    journal.close()
    assert (charge.cost, charge.cost_source, charge.task_id) == (60.0, "estimate", "t1")


def test_the_daily_limit_holds_with_the_same_reservations_and_a_null_limit_is_none(tmp_path):
    """Generations left today (GET /v1/organization) less the creates reserved since: a cell past it
    is not started (daily limit), whichever process reserved the others. A limit the API sends as
    null is no limit."""
    import asyncio

    from v2v_lab.api.responses import NO_LIMIT, parse_organization
    from v2v_lab.sweeps.plan import Cell
    from v2v_lab.sweeps.spend import NotStartedError, SpendGuard

    journal = Journal(tmp_path / "journal.sqlite")
    guard = SpendGuard(journal, "daily", load_catalog(), cap=None, say=lambda _: None, daily_left={"aleph2": 1})
    cells = [Cell(f"k{i}", _demo(), "sha", "aleph2", "p", i, None, None, None, 0, 5.0, 5.0, 60.0, {}) for i in (1, 2)]

    async def run() -> str:
        await guard.reserve(cells[0])
        with pytest.raises(NotStartedError) as refused:
            await guard.reserve(cells[1])
        return refused.value.reason

    assert asyncio.run(run()) == "daily limit"
    journal.close()
    org = parse_organization({"creditBalance": 5, "tier": {"models": {"aleph2": {
        "maxConcurrentGenerations": None, "maxDailyGenerations": None}}}, "usage": {"models": {}}})
    assert (org.models["aleph2"].max_concurrent, org.models["aleph2"].max_daily) == (NO_LIMIT, NO_LIMIT)
