"""Pieces several test files share (fixtures live in conftest.py): a user's clean environment, a
condition polled until a deadline, emulated tasks held until a test lets them go, a TCP listener
that records what reached it, and the servers a test starts (`mlflow server`, Voila)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from v2v_lab._net import free_port

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def user_env(folder: Path | None = None, *, drop: tuple[str, ...] = ("V2V_LAB_", "MLFLOW_", "RUNWAYML_", "COMETAPI_"),
             **extra: str) -> dict[str, str]:
    """A user's shell: no variable of the test run's own whose name starts with one of `drop`; with
    `folder`, a SQLite store and a state folder there. A sabotage copy (bench/sabotage.py sets
    PYTHONPATH to it) keeps its PYTHONPATH: the commands must run its package, not the installed one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if folder is not None:
        env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "V2V_LAB_HOME": str(folder / "state")})
    if os.environ.get("PYTHONPATH") == str(ROOT):
        env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


CLI = str(Path(sys.executable).with_name("v2v-lab"))  # the console script of this test run's environment


def run_cli(args: list[str], folder: Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    """`v2v-lab ARGS` in `folder`, on the store and state folder there (user_env), `extra` on top."""
    return subprocess.run([CLI, *args], cwd=folder, env=user_env(folder, drop=("V2V_LAB_", "MLFLOW_"), **extra),
                          capture_output=True, text=True, timeout=timeout)


def study_cells(folder: Path, experiment: str = "study") -> list:
    """The cell runs of `experiment` in the SQLite store in `folder`."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("v2v.kind") == "cell"]


def wait_until(check: Callable[[], T], timeout: float, what: str | Callable[[], str], interval: float = 0.05) -> T:
    """Poll check() until it gives a truthy value and return that value; fail naming `what` once
    `timeout` seconds have passed. Tests wait on the event they need, never on a fixed sleep: the
    deadline is generous because a loaded machine is slow, and costs nothing when it is not."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g} s: {what() if callable(what) else what}")
        time.sleep(interval)


class HeldTasks:
    """Every task of an emulator stays RUNNING (a generation as long as the test needs) until
    release(): a test that needs a sweep still waiting on its tasks at some moment holds them,
    instead of betting that a long run_s outlasts a loaded machine. Released, each task ends as it
    would have (its render done, its run_s counted from when it started).

    `hold` (a test may replace it while tasks wait) says which tasks to hold: a task held goes on
    as soon as it answers False for it, before any release()."""

    def __init__(self, emu: Any, hold: Callable[[Any], bool] = lambda task: True):
        self._state = emu.state
        self._original = emu.state._sleep_progress  # where a task waits out its generation time
        self._released = threading.Event()
        self.hold = hold

        def held(task: Any, started: float, share: float) -> None:
            while not self._released.wait(0.05) and self.hold(task):
                if task.cancelled:  # the emulator is closing
                    return
            self._original(task, started, share)

        self._state._sleep_progress = held

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> HeldTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._state._sleep_progress = self._original


class Recorder:
    """A TCP listener that keeps everything anyone sent it (and answers nothing)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.received = b""
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                self.received += conn.recv(65536) or b"(connected)"
            except OSError:
                self.received += b"(connected)"
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process's whole group (a server's workers too), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue


# An `mlflow server` starts a job runner and seven huey consumers beside its workers by default (for
# GenAI jobs: scorers, trace rollups), each a Python process importing mlflow: on a loaded 2-core
# machine, a minute before it answers. No test here uses them; the tracking API is the same.
NO_SERVER_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@contextmanager
def mlflow_server(folder: Path, timeout: float = 240) -> Iterator[str]:
    """`mlflow server` on a SQLite file in `folder`, on a free loopback port, as a lab first sets
    one up: its URI once /health answers. Started in a session of its own and stopped with its
    whole process group, so its workers go with it. Without MLflow's job runner (NO_SERVER_JOBS)."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
                               "--default-artifact-root", str(folder / "artifacts"), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, **NO_SERVER_JOBS})
    uri = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert server.poll() is None, f"mlflow server ended with {server.returncode} before it answered"
        try:
            return httpx.get(f"{uri}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout, "mlflow server did not answer", interval=0.2)
        yield uri
    finally:
        _stop_group(server)


@contextmanager
def voila(pages: Path, env: dict[str, str], log: Path, timeout: float = 180) -> Iterator[tuple[str, subprocess.Popen]]:
    """Voila serving the notebooks in `pages` on a free loopback port: its render URL once its API
    answers, and its process (its kernels are its children). Its output goes to `log` (shown when
    it does not start)."""
    import httpx

    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "voila"), str(pages), f"--port={port}",
                                 "--no-browser", "--Voila.ip=127.0.0.1"], cwd=pages, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)

        def answers() -> bool:
            assert proc.poll() is None, "voila ended before it answered: " + log.read_text()[-2000:]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        try:
            wait_until(answers, timeout, lambda: "voila did not start: " + log.read_text()[-2000:], interval=0.3)
            yield f"http://127.0.0.1:{port}/voila/render/", proc
        finally:
            _stop_group(proc, timeout=10)


# The README's commands, `make team-up` / `make team-down`, with this test run's Python (no bootstrap).
MAKE = ["make", "-s", "-C", str(ROOT), "STAMP=", f"BIN={Path(sys.executable).parent}"]


def team_stack_env(folder: str) -> dict[str, str]:
    """The environment `make team-up` / `make team-down` run in for the stack in `folder` (its
    ports are in stack.json there). A stack the tests start has no MLflow job runner (NO_SERVER_JOBS):
    restarting its tracking server is then seconds, not a minute."""
    return {**os.environ, **NO_SERVER_JOBS, "V2V_LAB_TEAM_DIR": folder}


def team_stack_ports(folder: Path) -> dict[str, int]:
    import json

    return json.loads((folder / "stack.json").read_text())


def start_team_stack(folder: Path, own: bool) -> dict[str, str]:
    """`make team-up` on `folder` (on free ports when it is ours); the variables a member exports,
    the folder and the object store's port."""
    folder.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data folder
    env = team_stack_env(str(folder))
    if own:
        env.update({"V2V_LAB_TEAM_PG_PORT": str(free_port()), "V2V_LAB_TEAM_S3_PORT": str(free_port()),
                    "V2V_LAB_TEAM_MLFLOW_PORT": str(free_port())})
    up = subprocess.run([*MAKE, "team-up"], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr[-2000:]
    exports = dict(line[len("export "):].split("=", 1) for line in up.stdout.splitlines() if line.startswith("export "))
    assert set(exports) == {"MLFLOW_TRACKING_URI", "V2V_LAB_LEDGER_URL"}
    return {**exports, "folder": str(folder), "s3_port": str(team_stack_ports(folder)["s3"])}


def stop_team_stack(folder: str) -> None:
    subprocess.run([*MAKE, "team-down"], env=team_stack_env(folder), capture_output=True, timeout=120)


def write_spec(folder: Path, base: dict, name: str = "spec.yaml", **over) -> Path:
    """A spec file in `folder`: a test module's base spec with `over` on top (the one spec writer)."""
    import yaml

    path = folder / name
    path.write_text(yaml.safe_dump({**base, **over}))
    return path


def server_charged(base_url: str, key: str) -> float:
    """What an endpoint charged the account today (UTC), as its usage endpoint reports it: the
    server's own count, to hold against a cap."""
    import datetime as dt

    import httpx

    today = dt.datetime.now(dt.timezone.utc).date()
    window = {"startDate": today.isoformat(), "beforeDate": (today + dt.timedelta(days=1)).isoformat()}
    body = httpx.post(f"{base_url}/v1/organization/usage", json=window,
                      headers={"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"}).json()
    return sum(u["amount"] for day in body["results"] for u in day["usedCredits"])
