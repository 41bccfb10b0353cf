"""Paying twice through the store (issue 26, cases 1 and 2): two processes with their own state
folders on one tracking store meet there and never pay twice, whether the store is an `mlflow
server` (a lease held in the store itself) or a local store reached by two names (a symlink).

Creates are counted by the emulator itself; complete runs are counted in the store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from v2v_lab.emulator import Emulator

from .._helpers import HeldTasks, user_env, wait_until
from .conftest import report, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
FOUR_CELLS = {"prompts": ["neon city", "noir"], "seeds": [1, 2]}
# The first sweep's tasks are held (RUNNING) until the second has had its answer: the first is
# certainly still running when the second tries, however slowly a loaded machine starts it (a test
# of refusal, not of "nothing to do").


def member_env(home: Path, **extra: str) -> dict[str, str]:
    """A member's environment: their own state folder, no ledger, nothing of the developer's."""
    return user_env(drop=("V2V_LAB_", "MLFLOW_"), V2V_LAB_HOME=str(home), **extra)


def start(spec: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([CLI, "sweep", str(spec), "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_a_create(emu: Emulator, proc: subprocess.Popen) -> None:
    wait_until(lambda: emu.tasks() or proc.poll() is not None, 180, "the first sweep created no task")
    assert emu.tasks(), f"the first sweep never created a task: {proc.communicate()[1][-1500:]}"


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def complete_runs(uri: str, experiment: str) -> int:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'cell'", max_results=500) if exp else []
    return sum(r.data.tags.get("v2v.status") == "succeeded" and r.info.status == "FINISHED" for r in runs)


def first_running_then_second(spec: Path, env_a: dict[str, str], env_b: dict[str, str], emu: Emulator,
                              cells: int) -> subprocess.CompletedProcess:
    """The first sweep running (a task created, every task held), the second started then and run
    to its end (or until more than `cells` tasks exist: it paid too, as the caller's count of
    creates then shows); the tasks let go, the first to its end."""
    with HeldTasks(emu) as held:
        first = start(spec, env_a)
        wait_for_a_create(emu, first)
        late = start(spec, env_b)
        wait_until(lambda: late.poll() is not None or len(emu.tasks()) > cells, 300,
                   "the second sweep neither ended nor created a task")
        held.release()
        out_b, err_b = late.communicate(timeout=300)
    second = subprocess.CompletedProcess(late.args, late.returncode, out_b, err_b)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-1500:]
    return second


# -- case 1: one mlflow server, no ledger ----------------------------------------------------------
def test_1_a_second_process_on_one_tracking_server_is_refused_before_it_sends(mlflow_server, tmp_path):
    spec = write_spec(tmp_path, experiment="server-two-homes", **FOUR_CELLS)
    with Emulator(render_scale=0.1) as slow:
        env = {"MLFLOW_TRACKING_URI": mlflow_server, "V2V_LAB_BASE_URL": slow.base_url}
        second = first_running_then_second(spec, member_env(tmp_path / "home_a", **env),
                                           member_env(tmp_path / "home_b", **env), slow, 4)
        creates = len(slow.tasks())
        report("round2_1_server_second_process", {"creates": creates, "second_exit": second.returncode,
                                                 "said": second.stderr.strip()[-400:]})
        assert second.returncode == 2, (second.returncode, second.stdout[-800:], second.stderr[-800:])
        line = one_line(second.stderr)
        assert "another sweep" in line and "V2V_LAB_LEDGER_URL" in line, line
        assert creates == 4, "four cells, four creates: the second process paid for nothing"
        assert complete_runs(mlflow_server, "server-two-homes") == 4
        # The first let go of the store at its end: the second, run again, finds everything done.
        again = subprocess.run([CLI, "sweep", str(spec), "--no-progress"], env=member_env(tmp_path / "home_b", **env),
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-1500:]
        assert "nothing to do" in again.stdout and len(slow.tasks()) == 4


def test_1_two_processes_started_together_on_one_tracking_server_pay_once(mlflow_server, tmp_path):
    """Both take the store's lease at the same moment: exactly one runs, the other is refused."""
    spec = write_spec(tmp_path, experiment="server-together", **FOUR_CELLS)
    with Emulator(render_scale=0.1) as slow, HeldTasks(slow) as held:
        env = {"MLFLOW_TRACKING_URI": mlflow_server, "V2V_LAB_BASE_URL": slow.base_url}
        procs = [start(spec, member_env(tmp_path / f"home_{i}", **env)) for i in range(2)]
        # Their tasks held until one of the two has ended (or more than four tasks exist): the
        # one that runs is still running when the other tries, whichever started first.
        wait_until(lambda: any(p.poll() is not None for p in procs) or len(slow.tasks()) > 4, 300,
                   "neither sweep ended")
        held.release()
        ended = [p.communicate(timeout=300) for p in procs]
        codes = sorted(p.returncode for p in procs)
        creates = len(slow.tasks())
    report("round2_1_server_together", {"creates": creates, "exits": codes})
    assert codes == [0, 2], [(p.returncode, err[-600:]) for p, (_, err) in zip(procs, ended, strict=True)]
    assert creates == 4, f"four cells, {creates} creates"
    assert complete_runs(mlflow_server, "server-together") == 4


def test_1_a_killed_sweeps_lease_on_the_server_runs_out(mlflow_server, tmp_path):
    """A lease left by a process killed with -9 is no lock for ever: once it runs out, the rerun
    takes up the tasks the killed one created, by id."""
    spec = write_spec(tmp_path, experiment="server-killed", **FOUR_CELLS)
    with Emulator(render_scale=0.1) as slow, HeldTasks(slow) as held:
        env = member_env(tmp_path / "home", MLFLOW_TRACKING_URI=mlflow_server, V2V_LAB_BASE_URL=slow.base_url,
                         V2V_LAB_LEASE_S="5")
        victim = start(spec, env)
        # Killed once its four task ids are recorded (killed mid-send, a cell would rightly be
        # left unknown, never resent), its tasks still running.
        wait_until(lambda: _all_created(tmp_path / "home", 4) or victim.poll() is not None, 180,
                   "the sweep did not record its four tasks")
        victim.kill()
        victim.communicate(timeout=60)
        killed = time.monotonic()
        held.release()
        time.sleep(max(0.0, killed + 5.5 - time.monotonic()))  # the lease's length: it has run out
        rerun = subprocess.run([CLI, "sweep", str(spec), "--no-progress"], env=env, capture_output=True, text=True,
                               timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-1500:]
        assert len(slow.tasks()) == 4
    assert complete_runs(mlflow_server, "server-killed") == 4, rerun.stdout[-1500:]


def _all_created(home: Path, cells: int) -> bool:
    journal = home / "journal.sqlite"
    if not journal.is_file():
        return False
    with sqlite3.connect(journal) as db:
        try:
            rows = db.execute("SELECT state FROM cells").fetchall()
        except sqlite3.OperationalError:  # its table not made yet
            return False
    return len(rows) == cells and all(state != "sending" for (state,) in rows)


# -- case 2: one local store, two names -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite-file-symlink", "file-store-symlink"])
def test_2_one_local_store_reached_through_a_symlink_is_one_store(kind, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    extra: dict[str, str] = {}
    if kind == "sqlite-file-symlink":
        (real / "shared.db").touch()
        (tmp_path / "link.db").symlink_to(real / "shared.db")
        uri_a, uri_b = f"sqlite:///{real / 'shared.db'}", f"sqlite:///{tmp_path / 'link.db'}"
    else:  # a file store: the symlink names its folder
        (real / "mlruns").mkdir()
        (tmp_path / "runs").symlink_to(real / "mlruns", target_is_directory=True)
        uri_a, uri_b = f"file://{real / 'mlruns'}", f"file://{tmp_path / 'runs'}"
        extra = {"MLFLOW_ALLOW_FILE_STORE": "true"}
    spec = write_spec(tmp_path, experiment="two-names", **FOUR_CELLS)
    with Emulator(render_scale=0.1) as slow:
        env_a = member_env(tmp_path / "home_a", MLFLOW_TRACKING_URI=uri_a, V2V_LAB_BASE_URL=slow.base_url, **extra)
        env_b = member_env(tmp_path / "home_b", MLFLOW_TRACKING_URI=uri_b, V2V_LAB_BASE_URL=slow.base_url, **extra)
        second = first_running_then_second(spec, env_a, env_b, slow, 4)
        creates = len(slow.tasks())
    report(f"round2_2_{kind}", {"creates": creates, "second_exit": second.returncode})
    assert second.returncode == 2, (second.returncode, second.stdout[-800:], second.stderr[-800:])
    assert "no other sweep is running" in one_line(second.stderr)
    assert creates == 4, f"four cells, {creates} creates"
