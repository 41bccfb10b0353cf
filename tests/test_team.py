"""The team store for real: PostgreSQL 15, the object store (moto's server mode) and `mlflow server`
on both, started by tools/team_stack.py (the `make team-up` of the README). Three sweep processes with
separate state folders share one spec through the PostgreSQL ledger; one is killed with -9 midway."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from mlflow.entities import Param

from v2v_lab.emulator import Emulator

from . import _helpers
from .conftest import DEMO, ROOT

CLI = str(Path(sys.executable).with_name("v2v-lab"))
MAKE = _helpers.MAKE
pytestmark = pytest.mark.team


def _member_env(team: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_", "AWS_"))}
    if os.environ.get("PYTHONPATH") == str(ROOT):
        env["PYTHONPATH"] = str(ROOT)
    return {**env, "MLFLOW_TRACKING_URI": team["MLFLOW_TRACKING_URI"], "V2V_LAB_LEDGER_URL": team["V2V_LAB_LEDGER_URL"],
            "V2V_LAB_HOME": str(home), **extra}


def _victim_ready(ledger_url: str, pid: int) -> bool:
    """The victim holds a cell whose task is created, and sends no create right now."""
    import psycopg

    with psycopg.connect(ledger_url) as db:
        states = [s for (s,) in db.execute(
            "SELECT c.state FROM cells c JOIN claims k USING (experiment, cell_key) WHERE k.owner LIKE %s",
            (f"%:{pid}:%",)).fetchall()]
    return "created" in states and "sending" not in states


def test_three_machines_share_one_spec_and_one_killed_changes_nothing(team, tmp_path):
    experiment = f"team_{uuid.uuid4().hex[:8]}"
    spec = {"experiment": experiment, "provider": "local", "videos": [str(DEMO)],
            "models": ["gen4_aleph", "aleph2", "gen3a_turbo"], "prompts": ["neon city", "noir", "sepia", "anime"],
            "seeds": [1, 2, 3], "concurrency": 4, "scoring": {"frames": 4, "size": 64}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with Emulator(render_scale=0.1, run_s=1.0, concurrency=2) as emu:
        def sweep(i: int) -> subprocess.Popen:
            return subprocess.Popen([CLI, "sweep", "spec.yaml", "--base-url", emu.base_url, "--no-progress"],
                                    cwd=tmp_path, env=_member_env(team, tmp_path / f"machine{i}", V2V_LAB_LEASE_S="5"),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        procs = [sweep(i) for i in range(3)]
        victim = procs[2]
        # Kill it -9 while it holds a created task and is not sending a create (frozen first, then
        # looked at: a kill during a send would leave that create's outcome unknown, by design).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and victim.poll() is None:
            if emu.stats["tasks_total"] >= 6:
                os.kill(victim.pid, signal.SIGSTOP)
                if _victim_ready(team["V2V_LAB_LEDGER_URL"], victim.pid):
                    os.kill(victim.pid, signal.SIGKILL)
                    break
                os.kill(victim.pid, signal.SIGCONT)
            time.sleep(0.05)
        assert victim.wait(30) == -signal.SIGKILL, "the victim was not killed midway"
        for proc in procs[:2]:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
            assert "36 cells: 36 succeeded" in out, out[-1500:]
        stats = emu.stats
    assert stats["tasks_total"] == 36, stats["tasks_created"]  # each cell created exactly once
    limits = stats["max_concurrent"]
    # A model no cell used (the catalog now holds 14) never had a task in flight.
    assert all(stats["peak_in_flight"].get(m, 0) <= limits[m] for m in limits), (stats["peak_in_flight"], limits)
    assert max(stats["peak_in_flight"].values()) == 2  # and the processes did work in parallel

    from mlflow import MlflowClient

    client = MlflowClient(team["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment)
    cells = [r for r in client.search_runs([exp.experiment_id], max_results=500) if r.data.tags.get("v2v.kind") == "cell"]
    assert len(cells) == 36 and len({r.data.tags["v2v.cell_key"] for r in cells}) == 36
    assert all(r.data.tags["v2v.status"] == "succeeded" and r.info.status == "FINISHED" for r in cells)
    assert {r.data.tags["v2v.task_id"] for r in cells} == {t["id"] for t in emu.tasks()}
    # The videos are in the object store, served through the tracking server.
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{team['s3_port']}", region_name="us-east-1",
                      aws_access_key_id="v2v-lab", aws_secret_access_key="v2v-lab-secret")
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="v2v-lab",
                                                                              Prefix=f"artifacts/{exp.experiment_id}/")
            for o in page.get("Contents", [])}
    assert all(f"artifacts/{exp.experiment_id}/{r.info.run_id}/artifacts/output.mp4" in keys for r in cells)


def _stack_env(team: dict[str, str]) -> dict[str, str]:
    """The stack's own folder: `make team-up` reads its ports from stack.json there."""
    return _helpers.team_stack_env(team["folder"])


def _stop(pidfile: Path) -> None:
    pid = int(pidfile.read_text())
    os.killpg(pid, signal.SIGKILL)  # as a crash would
    pidfile.unlink()


def test_parts_of_the_store_restarting_mid_sweep_lose_nothing_and_pay_nothing_twice(spare_team, tmp_path):
    """PostgreSQL restarted, the MLflow server killed and started again, the object store away for
    8 s (moto restarted replays what it held): the sweep goes on through each."""
    import threading

    team = spare_team
    folder = Path(team["folder"])
    # Whatever an earlier test left down, started again (team-up starts only what is not running).
    subprocess.run([*MAKE, "team-up"], env=_stack_env(team), check=True, capture_output=True)
    pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    experiment = f"team_faults_{uuid.uuid4().hex[:8]}"
    spec = {"experiment": experiment, "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph", "aleph2"],
            "prompts": ["neon city", "noir", "sepia"], "seeds": [1, 2], "concurrency": 3,
            "scoring": {"frames": 4, "size": 64}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done_faults: list[str] = []
    with Emulator(render_scale=0.1, run_s=1.5, concurrency=2) as emu:
        def faults() -> None:
            try:
                inject()
            except Exception as exc:  # noqa: BLE001 - said in the assertion below, not lost in a thread
                done_faults.append(f"fault injection failed: {exc!r}")

        def inject() -> None:
            def at(creates: int) -> None:
                while emu.stats["tasks_total"] < creates:
                    time.sleep(0.05)
            at(2)
            subprocess.run([*pg, "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(folder / "postgres"), "-m", "fast",
                            "-w", "-l", str(folder / "logs" / "postgres.log"), "restart"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            done_faults.append("postgres restarted")
            at(5)
            _stop(folder / "mlflow.pid")
            time.sleep(2)
            subprocess.run([*MAKE, "team-up"], env=_stack_env(team), check=True, capture_output=True)
            done_faults.append("mlflow server restarted")
            at(8)
            _stop(folder / "s3.pid")
            time.sleep(8)
            subprocess.run([*MAKE, "team-up"], env=_stack_env(team), check=True, capture_output=True)
            done_faults.append("object store back")

        thread = threading.Thread(target=faults, daemon=True)
        thread.start()
        result = subprocess.run([CLI, "sweep", "spec.yaml", "--base-url", emu.base_url, "--no-progress"],
                                cwd=tmp_path, env=_member_env(team, tmp_path / "home"), capture_output=True, text=True,
                                timeout=600)
        thread.join(120)
        tasks = emu.stats["tasks_total"]
    assert done_faults == ["postgres restarted", "mlflow server restarted", "object store back"], done_faults
    assert result.returncode == 0, result.stderr[-2000:]
    assert "12 cells: 12 succeeded" in result.stdout, result.stdout[-1500:]
    assert tasks == 12
    from mlflow import MlflowClient

    client = MlflowClient(team["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment)
    cells = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("v2v.kind") == "cell"]
    assert len(cells) == 12 and all(r.data.tags["v2v.status"] == "succeeded" for r in cells)
    for run in cells:  # every video readable back through the server, from the object store
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "output.mp4" in names, (run.info.run_id, names)


@pytest.mark.parametrize("url, why", [("mysql://v2v@127.0.0.1/ledger", "a PostgreSQL URL"),
                                      ("postgresql://v2v:hunter2@127.0.0.1:1/v2v_ledger", "answers")])
def test_a_bad_ledger_url_is_one_line_naming_it_and_nothing_is_sent(url, why, tmp_path, emulator):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({"experiment": "ledger_bad", "provider": "local",
                                                        "videos": [str(DEMO)], "prompts": ["noir"], "seeds": [1]}))
    env = _member_env({"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "V2V_LAB_LEDGER_URL": url},
                      tmp_path / "home")
    before = emulator.stats["tasks_total"]
    done = subprocess.run([CLI, "sweep", "spec.yaml", "--base-url", emulator.base_url], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: V2V_LAB_LEDGER_URL") and why in done.stderr
    assert "hunter2" not in done.stderr  # a password in the URL is never shown
    assert emulator.stats["tasks_total"] == before


def test_every_door_works_on_the_team_server_and_members_share_ratings(team, tmp_path, emulator, monkeypatch):
    """sweep, runs, generate and rescore through the console script; RunBrowser, CompareView and
    RateView in Python; a second member rating from another process: all on the team's server,
    with the videos coming back from the object store."""
    experiment = f"team_doors_{uuid.uuid4().hex[:8]}"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": experiment, "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph", "aleph2"],
        "prompts": ["neon city", "noir"], "seeds": [1], "scoring": {"frames": 4, "size": 64}}))
    env = _member_env(team, tmp_path / "home")

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stderr[-1500:])
        return done

    assert "4 cells: 4 succeeded" in cli("sweep", "spec.yaml", "--base-url", emulator.base_url).stdout
    assert cli("runs", experiment).stdout.count("succeeded") == 4
    cli("generate", str(DEMO), "--prompt", "noir", "--model", "gen4_aleph", "--provider", "local", "--base-url",
        emulator.base_url, "--out", "one.mp4", "--yes")
    assert (tmp_path / "one.mp4").stat().st_size > 1000
    assert "4 rescored" in cli("rescore", experiment, "--metrics", "piqe", "--size", "48", "--workers", "1").stdout

    for name in ("MLFLOW_TRACKING_URI", "V2V_LAB_LEDGER_URL"):
        monkeypatch.setenv(name, team[name])
    from v2v_lab import CompareView, RateView, RunBrowser, load_ratings, load_runs

    runs = load_runs(experiment)
    rescored = [c for c in runs.columns if c.startswith("piqe.size48.")]  # rescore's own key, beside piqe
    assert len(runs) == 4 and len(rescored) == 1 and runs[rescored[0]].notna().all()
    browser = RunBrowser(experiment)
    browser.table.selected = runs["run_id"][0]
    videos = [c for c in _walk(browser.detail) if c.__class__.__name__ == "Video"]
    assert len(videos) == 2 and videos[1].value[4:8] == b"ftyp"  # the output, from the object store
    view = CompareView(experiment)
    assert [c for c in _walk(view.grid) if c.__class__.__name__ == "Image"]
    rate = RateView(experiment, rater="ann")
    assert rate.total == 2 and httpx.get(rate.left_url).content[4:8] == b"ftyp"
    rate.choose("left")
    other = subprocess.run([sys.executable, "-c", f"from v2v_lab import RateView\nv = RateView({experiment!r}, "
                            "rater='bob')\nv.choose('right')\nv.choose('tie')"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert other.returncode == 0, other.stderr[-1500:]
    ratings = load_ratings(experiment)
    assert ratings.groupby("rater").size().to_dict() == {"ann": 1, "bob": 2}


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_a_cell_logged_by_a_process_killed_before_the_ledger_heard_is_not_logged_again(team, tmp_path, emulator):
    """kill -9 right after a cell's MLflow run is complete and before the ledger says done (the
    failpoint "logged"): the process that takes the cell over finds the run and logs nothing twice."""
    experiment = f"team_logged_{uuid.uuid4().hex[:8]}"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": experiment, "provider": "local", "videos": [str(DEMO)], "prompts": ["neon city", "noir"],
        "seeds": [1], "concurrency": 1, "scoring": {"frames": 4, "size": 64}}))
    cmd = [CLI, "sweep", "spec.yaml", "--base-url", emulator.base_url, "--no-progress"]
    before = emulator.stats["tasks_total"]
    # Both start together, one cell each; the one killed leaves its cell logged but not marked
    # done, and the other, already running, takes it over once the claim's lease runs out.
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_member_env(
        team, tmp_path / "a", V2V_LAB_LEASE_S="3", V2V_LAB_FAILPOINTS="logged=1"))
    second = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_member_env(team, tmp_path / "b", V2V_LAB_LEASE_S="3"))
    out, err = second.communicate(timeout=300)
    assert first.wait(60) == -signal.SIGKILL
    assert second.returncode == 0, err[-1500:]
    assert "2 cells: 2 succeeded" in out, out[-1000:]
    assert emulator.stats["tasks_total"] - before == 2
    from mlflow import MlflowClient

    client = MlflowClient(team["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment)
    cells = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("v2v.kind") == "cell"]
    assert len(cells) == 2 and len({r.data.tags["v2v.cell_key"] for r in cells}) == 2


def test_three_processes_on_one_ledger_hold_one_cap_under_a_stale_catalog(team, tmp_path):
    """The cap is the experiment's: three processes sharing the team ledger, against an endpoint
    charging twice the catalog's aleph2 price, together never make the server charge past it."""
    from v2v_lab.api.catalog import load_catalog, load_prices
    from v2v_lab.sweeps import plan_sweep

    experiment = f"team_cap_{uuid.uuid4().hex[:8]}"
    spec = {"experiment": experiment, "provider": "runway", "videos": [str(DEMO)], "models": ["aleph2"],
            "prompts": ["neon city", "noir", "sepia", "anime"], "seeds": [1, 2, 3], "concurrency": 6,
            "scoring": {"frames": 4, "size": 64}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    cap = sum(c.credits for c in plan_sweep(tmp_path / "spec.yaml").cells) + 1  # the catalog says all 12 fit
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"models": {"aleph2": {
        "credits_per_second": 2 * load_catalog()["aleph2"].credits_per_second}}}))
    key = "key_" + "cd" * 64
    with Emulator(render_scale=0.1, run_s=0.5, catalog=load_prices(prices)) as emu:
        procs = [subprocess.Popen([CLI, "sweep", "spec.yaml", "--base-url", emu.base_url, "--no-progress", "--yes",
                                   "--max-credits", f"{cap:g}"], cwd=tmp_path,
                                  env=_member_env(team, tmp_path / f"machine{i}", RUNWAYML_API_SECRET=key),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
            outs.append(out + err)
        charged = _helpers.server_charged(emu.base_url, key)
        tasks = emu.tasks()
    assert charged <= cap, f"three processes together made the server charge {charged}, past the cap {cap}"
    cells = {(t["prompt"], t["seed"]) for t in tasks}
    assert len(cells) == len(tasks) and 0 < len(tasks) < 12  # none paid twice; the stale price left some out
    assert any("not started (budget)" in o for o in outs)
    assert any("warning: price: aleph2 costs 2.00x" in o for o in outs)


def test_load_runs_on_the_teams_postgresql_reads_the_table_the_client_reads(team, monkeypatch):
    """load_runs on the team's PostgreSQL (the store's own database URL) reads MLflow's tables with
    SQL (tracking/runs_sql), and gives the frame MlflowClient gives on the same database: cells with
    an option param, a NaN metric and a per-frame series; the sweep's parent and a ratings run left
    out (and in, with include_parents); a deleted run never."""
    from mlflow import MlflowClient

    from v2v_lab import load_runs
    from v2v_lab.tracking import reader, runs_sql

    experiment = f"team_sql_{uuid.uuid4().hex[:8]}"
    client = MlflowClient(team["MLFLOW_TRACKING_URI"])  # written through the server, as members write
    exp = client.create_experiment(experiment)
    parent = client.create_run(exp, tags={"v2v.kind": "sweep"}).info.run_id
    client.create_run(exp, tags={"v2v.kind": "ratings"})
    for i in range(5):
        run = client.create_run(exp, start_time=1000 + i, tags={
            "v2v.kind": "cell", "v2v.status": "failed" if i == 4 else "succeeded", "mlflow.parentRunId": parent,
            "v2v.task_id": f"task-{i}"}).info.run_id
        client.log_batch(run, params=[Param("model", ["gen4_aleph", "aleph2"][i % 2]), Param("seed", str(i)),
                                      Param("prompt", "neon city")] + ([Param("duration", "5")] if i % 2 else []))
        client.log_metric(run, "ssim_source", float("nan") if i == 3 else i / 10)
        client.log_metric(run, "per_frame.ssim_source", 0.5, step=2)
        if i == 2:
            client.delete_run(run)
    database = f"postgresql://v2v@127.0.0.1:{_helpers.team_stack_ports(Path(team['folder']))['pg']}/mlflow"
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    tables = runs_sql.read_runs(database, exp_id, params=["model"], tags=["v2v.status"], series_prefix="per_frame.",
                                kind_tag="v2v.kind", kinds=["cell"])
    assert tables is not None and len(tables[0]) == 4  # read with SQL, not through the client's fallback
    by_sql = [load_runs(experiment, tracking_uri=database, include_parents=p) for p in (False, True)]
    monkeypatch.setattr(reader, "is_database", lambda uri: False)
    by_client = [load_runs(experiment, tracking_uri=database, include_parents=p) for p in (False, True)]
    for sql, kept in zip(by_sql, by_client, strict=True):
        pd.testing.assert_frame_equal(sql.sort_values("run_id").reset_index(drop=True),
                                      kept.sort_values("run_id").reset_index(drop=True))
    assert len(by_sql[0]) == 4 and len(by_sql[1]) == 5 and by_sql[0]["ssim_source"].isna().sum() == 1
    assert by_sql[0]["duration"].notna().sum() == 2 and "per_frame.ssim_source" not in by_sql[0].columns


def test_a_process_waiting_on_the_ledger_wakes_when_a_claim_or_a_slot_is_given_up_not_on_a_timer(team):
    """A process waiting for a cell another holds, or for one of the account's slots, is woken by
    the ledger's notification when the other gives it up (LISTEN/NOTIFY), not by looking again on
    a timer: with leases of an hour its fallback look is 15 minutes away, so only the notification
    can wake it here. Proven on events: the wait ends after the give-up and because of it. A slot
    given back wakes only the waits for slots, a claim given up only the waits for cells."""
    import asyncio
    import contextlib
    import threading
    from types import SimpleNamespace

    from v2v_lab.sweeps.ledger import PgLedger
    from v2v_lab.sweeps.shared import CLAIM, SLOT, LedgerChanges, shared_slot

    url = team["V2V_LAB_LEDGER_URL"]
    experiment, account = f"team_wake_{uuid.uuid4().hex[:8]}", f"acct-{uuid.uuid4().hex[:8]}"
    holder, waiter = PgLedger(url, lease_s=3600), PgLedger(url, lease_s=3600)
    tried = threading.Event()  # the waiter has looked for a slot and found none
    take_slot = waiter.take_slot

    def take_and_tell(*args: object) -> bool:
        got = take_slot(*args)  # type: ignore[arg-type]
        tried.set()
        return got

    waiter.take_slot = take_and_tell  # type: ignore[method-assign]

    async def run() -> None:
        changes = LedgerChanges(waiter)
        assert changes.fallback_s == 900
        await asyncio.wait_for(changes.after(CLAIM, 0), 60)  # its LISTEN has taken hold
        # A cell the holder has claimed: the waiter is woken when the claim is given up, and the
        # next free cell is the one it claims (in one round trip, the held one passed over).
        assert holder.claim(experiment, "cell-a") and not waiter.claim(experiment, "cell-a")
        assert waiter.claim_next(experiment, ["cell-a", "cell-x"]) == "cell-x"
        assert waiter.claim_next(experiment, ["cell-a"]) is None
        seen = changes.generation(CLAIM)
        woke = asyncio.ensure_future(changes.after(CLAIM, seen))
        await asyncio.to_thread(holder.release, experiment, "cell-a")
        await asyncio.wait_for(woke, 60)
        assert changes.generation(CLAIM) > seen and waiter.claim_next(experiment, ["cell-a"]) == "cell-a"
        # Each kind wakes only its own waits: a slot given back, then a claim given up (heard in
        # that order), move the slots' generation and the claims' by one each.
        assert holder.claim(experiment, "cell-d") and holder.take_slot(account, "aleph2", "cell-d", 1)
        loop, claim_heard = asyncio.get_running_loop(), asyncio.Event()
        # Told after `changes` (subscribed first), through the same loop: once this is set, `changes`
        # has heard everything up to the claim given up.
        def heard(what: str) -> None:
            if what == CLAIM:
                with contextlib.suppress(RuntimeError):  # the loop has closed (the test is over)
                    loop.call_soon_threadsafe(claim_heard.set)
        waiter.subscribe(heard)
        claims_seen, slots_seen = changes.generation(CLAIM), changes.generation(SLOT)
        await asyncio.to_thread(holder.give_slot, account, "cell-d")
        await asyncio.to_thread(holder.release, experiment, "cell-d")
        await asyncio.wait_for(claim_heard.wait(), 60)
        assert (changes.generation(CLAIM), changes.generation(SLOT)) == (claims_seen + 1, slots_seen + 1)
        # The account's only slot for the model, held: the waiter gets it once it is given back.
        assert holder.take_slot(account, "gen4_aleph", "cell-b", 1)
        got = asyncio.Event()

        async def wait_for_slot() -> None:
            async with shared_slot(waiter, changes, account, SimpleNamespace(model="gen4_aleph", key="cell-c"), 1):
                got.set()

        slot = asyncio.ensure_future(wait_for_slot())
        await asyncio.to_thread(tried.wait, 60)
        assert not got.is_set()
        await asyncio.to_thread(holder.give_slot, account, "cell-b")
        await asyncio.wait_for(slot, 60)
        assert got.is_set()

    try:
        asyncio.run(run())
    finally:
        holder.close()
        waiter.close()


def test_a_process_whose_last_claimed_cell_ended_elsewhere_stops_with_its_outcome(team):
    """The last cell a process claims turns out ended by another process (done in the ledger): the
    shared run ends with that cell's outcome (it had nothing left to wait on), nothing is run."""
    import asyncio
    from types import SimpleNamespace

    import psycopg

    from v2v_lab.sweeps.ledger import PgLedger
    from v2v_lab.sweeps.shared import LedgerChanges, run_shared
    from v2v_lab.sweeps.states import CellState

    url = team["V2V_LAB_LEDGER_URL"]
    experiment = f"team_ended_{uuid.uuid4().hex[:8]}"
    ledger = PgLedger(url, lease_s=3600)
    with psycopg.connect(url) as conn:  # what another process left: the cell, done
        conn.execute("INSERT INTO cells (experiment, cell_key, state, run_id, updated) VALUES (%s, 'cell-a', 'done', "
                     "'run-a', 0)", (experiment,))
    ran = []

    async def run_one(cell, row):  # never called: the cell is not this process's to run
        ran.append(cell.key)

    async def run() -> list:
        changes = LedgerChanges(ledger)
        cell = SimpleNamespace(key="cell-a", model="gen4_aleph")
        return await asyncio.wait_for(run_shared(ledger, changes, experiment, [cell], 1, run_one,
                                                 lambda cell, row: row.state.value == "done"), 60)

    try:
        outcomes = asyncio.run(run())
    finally:
        ledger.close()
    assert [(o.cell.key, o.state, o.run_id) for o in outcomes] == [("cell-a", CellState.DONE, "run-a")] and not ran


def test_a_killed_holders_slot_stays_taken_while_its_task_is_in_flight_and_passes_to_whoever_takes_its_cell_up(team):
    """The account's cap holds across a kill -9: the slot of a cell whose task is out (created) does
    not free itself when its holder's lease lapses (the task is still running at the provider); it
    passes to the process that takes the cell up, and frees itself only a lease later if none does."""
    import psycopg

    from v2v_lab.sweeps.ledger import PgLedger
    from v2v_lab.sweeps.states import JournalState

    url = team["V2V_LAB_LEDGER_URL"]
    experiment, account = f"team_slot_{uuid.uuid4().hex[:8]}", f"acct-{uuid.uuid4().hex[:8]}"
    victim, other = PgLedger(url, lease_s=60), PgLedger(url, lease_s=60)
    try:
        assert victim.claim(experiment, "cell-a") and victim.take_slot(account, "gen4_aleph", "cell-a", 1)
        victim.set(experiment, "cell-a", JournalState.SENDING)
        victim.set(experiment, "cell-a", JournalState.CREATED, task_id="task-1")

        def lapse(seconds: float) -> None:
            """The victim killed -9 `seconds` ago: its leases ran out then, and nothing renews them."""
            with psycopg.connect(url, autocommit=True) as db:
                for table in ("claims", "slots"):
                    db.execute(f"UPDATE {table} SET lease_until = now() - make_interval(secs => %s) WHERE owner=%s",
                               (seconds, victim.owner))

        victim._stop.set()  # its heartbeat stops, as a killed process's does
        victim._heartbeat.join(30)
        lapse(1)
        assert not other.take_slot(account, "gen4_aleph", "cell-b", 1), "a create took the slot of a task in flight"
        assert other.claim(experiment, "cell-a")  # the cell taken up: its task's slot with it
        assert other.take_slot(account, "gen4_aleph", "cell-a", 1)
        with psycopg.connect(url) as db:
            owners = db.execute("SELECT owner FROM slots WHERE account=%s", (account,)).fetchall()
        assert owners == [(other.owner,)]
        other.give_slot(account, "cell-a")
        # Nobody taking a cell up: its slot frees itself a lease after it lapsed.
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("INSERT INTO slots VALUES (%s, 'gen4_aleph', %s, 'cell-a', now())", (account, victim.owner))
        lapse(61)
        assert other.take_slot(account, "gen4_aleph", "cell-b", 1)
    finally:
        other.close()
        with contextlib.suppress(Exception):
            victim.close()
