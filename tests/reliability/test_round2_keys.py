"""Keys and passwords, round two (issue 26, cases 7, 8, 9 and 16): a key goes only to a host the
user named outside the spec, and plain http only to loopback (the emulator's key included); a
password in a store or ledger URL is never printed, by v2v-lab or by MLflow on its behalf; a key an
endpoint echoes back is never stored; every environment variable is checked where it is read.

Everything runs through the console script as a user types it, against real listeners, a real
emulator and a real `mlflow server`; what leaked is searched for in the bytes left behind."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from v2v_lab.cli import main
from v2v_lab.emulator import Emulator

from .._helpers import Recorder, user_env
from ..conftest import DEMO, ROOT, free_port
from .conftest import report, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
# The emulator's key, not shaped like a Runway key: only redacting this very key can hide it.
KEY = "emu-" + "c0ffee42" * 6
PASSWORD = "S3CRETPW"


def clean_env(work: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no variable of ours or MLflow's from the test runner, a store and a
    state folder of the test's own."""
    return user_env(work, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", **extra)


def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def own_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one: where an off-loopback
    listener can be run for real."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def scan(root: Path, needle: str) -> list[str]:
    """Every file under root whose bytes hold needle."""
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# -- case 7: a key goes only where the user points it --------------------------------------------------
def test_7_the_emulator_key_goes_only_to_a_host_the_user_named_and_plain_http_only_to_loopback(
        tmp_path, monkeypatch, capsys):
    loop = Recorder()
    address = own_address()
    off = Recorder(address) if address else None
    off_url = off.url if off else "http://192.0.2.1:9"  # TEST-NET: nothing is there to record it
    try:
        env = clean_env(tmp_path, V2V_LAB_EMULATOR_KEY=KEY)
        spec = write_spec(tmp_path, experiment="k7", base_url=loop.url)
        line_no = next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if line.startswith("base_url"))
        shared = cli("sweep", str(spec), "--yes", "--no-progress", env=env, cwd=tmp_path)
        # Plain http off loopback, for provider local: in the spec (no key set), on the command line,
        # in the environment (the same main() in process).
        for name, value in clean_env(tmp_path).items():
            monkeypatch.setenv(name, value)
        off_spec = write_spec(tmp_path, "off.yaml", experiment="k7off", base_url=off_url)
        plain = write_spec(tmp_path, "plain.yaml", experiment="k7plain")
        refused = [("base_url", main(["sweep", str(off_spec), "--yes", "--no-progress"]), capsys.readouterr())]
        monkeypatch.setenv("V2V_LAB_EMULATOR_KEY", KEY)
        refused.append(("base_url", main(["sweep", str(plain), "--yes", "--no-progress", "--base-url", off_url]),
                        capsys.readouterr()))
        monkeypatch.setenv("V2V_LAB_BASE_URL", off_url)
        refused.append(("V2V_LAB_BASE_URL", main(["generate", str(DEMO), "--prompt", "x", "--provider", "local",
                                                  "--yes", "--out", str(tmp_path / "o.mp4")]), capsys.readouterr()))
        time.sleep(0.3)
        assert KEY.encode() not in loop.received, "the emulator key reached a listener a spec file named"
        assert loop.received == b"", "a spec file's base_url was sent to while a key was set"
        assert off is None or off.received == b"", f"plain http went off loopback: {off.received[:200]!r}"
        assert shared.returncode == 2, shared.stderr
        line = one_line(shared.stderr)
        assert line.startswith(f"error: base_url (line {line_no})"), line
        assert "V2V_LAB_EMULATOR_KEY" in line and "--base-url" in line and KEY not in line, line
        for field, code, seen in refused:
            assert code == 2, seen.err
            line = one_line(seen.err)
            assert line.startswith(f"error: {field}") and "https" in line and "loopback" in line, line
            assert KEY not in seen.out + seen.err
        assert not (tmp_path / "o.mp4").exists()
    finally:
        loop.close()
        if off:
            off.close()
    report("round2_case7", {"spec_base_url_with_key": "exit 2, nothing sent",
                            "off_loopback_http_local": f"exit 2 x3, nothing sent ({'listener on ' + address if address else 'no own address'})"})


# -- case 8: a password in a store or ledger URL is never printed ----------------------------------------
def test_8_a_password_in_the_store_or_ledger_url_is_never_printed(mlflow_server, tmp_path, capsys):
    texts: list[str] = []
    port = int(mlflow_server.rsplit(":", 1)[1])
    with Emulator(render_scale=0.1, queue_s=0.01) as emu:
        store = f"http://member:{PASSWORD}@127.0.0.1:{port}"
        env = clean_env(tmp_path, MLFLOW_TRACKING_URI=store)
        spec = write_spec(tmp_path, experiment="k8")
        done = cli("sweep", str(spec), "--yes", "--no-progress", "--base-url", emu.base_url, env=env, cwd=tmp_path)
        texts += [done.stdout, done.stderr]
        # Where nothing listens: the store, then the ledger (not a PostgreSQL URL; one that does not
        # answer), each through the same main() in process.
        nobody = free_port()
        refusals = [("MLFLOW_TRACKING_URI", f"http://member:{PASSWORD}@127.0.0.1:{nobody}"),
                    ("V2V_LAB_LEDGER_URL", f"http://member:{PASSWORD}@127.0.0.1:{nobody}"),
                    ("V2V_LAB_LEDGER_URL", f"postgresql://member:{PASSWORD}@127.0.0.1:{nobody}/v2v_ledger")]
        refused = []
        for name, url in refusals:
            with pytest.MonkeyPatch.context() as m:
                for var, value in clean_env(tmp_path, **{name: url}).items():
                    m.setenv(var, value)
                code = main(["sweep", str(spec), "--yes", "--no-progress", "--base-url", emu.base_url])
                seen = capsys.readouterr()
            texts += [seen.out, seen.err]
            refused.append((name, code, seen.err))
        creates = len(emu.tasks())
    leaks = [t for t in texts if PASSWORD in t]
    assert not leaks, f"the password was printed: {leaks[0][:300]}"
    assert done.returncode == 0, done.stderr
    assert f"MLflow: http://member:***@127.0.0.1:{port}" in done.stdout, done.stdout
    for name, code, err in refused:
        assert code == 2, err
        line = one_line(err)
        assert line.startswith(f"error: {name}") and "member:***@" in line, line
    assert creates == 1  # the cell of the sweep that ran; the refused ones sent nothing
    report("round2_case8", {"creates": creates, "password_in_output": 0})


# -- case 9: a key echoed back by the endpoint is never stored -------------------------------------------
class EchoingEndpoint:
    """An endpoint in front of a keyed emulator that echoes the caller's bearer key back, by prompt:
    in the task id ("echo id"), in the failure text and code ("echo failure"), in the output URL
    ("echo output"). Whatever follows a task id in a path (the echo, or what is left of it) is
    dropped before the emulator sees it."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.modes: dict[str, str] = {}
        self.echoed: dict[str, int] = {"echo id": 0, "echo failure": 0, "echo output": 0}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _rewrite(self, method: str, path: str, task_id: str | None, sent: bytes, key: str, answer: dict) -> dict:
        if method == "POST" and path == "/v1/video_to_video":
            self.modes[answer["id"]] = json.loads(sent).get("promptText", "")
            task_id = answer["id"]
        mode = self.modes.get(task_id or "")
        if mode == "echo id":
            answer["id"] = f"{task_id}.{key}"
        elif mode == "echo failure" and "status" in answer:
            answer.update(status="FAILED", output=[], failure=f"key {key} is not allowed to do that",
                          failureCode=f"SAFETY.INPUT.{key}")
        elif mode == "echo output" and answer.get("output"):
            answer["output"] = [f"{u}&echo={key}" for u in answer["output"]]
        else:
            return answer
        self.echoed[mode] += 1
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self) -> None:
                sent = self.rfile.read(int(self.headers.get("content-length") or 0))
                key = self.headers.get("authorization", "").removeprefix("Bearer ")
                found = re.match(r"/v1/tasks/([0-9a-f-]{36})", self.path)
                task_id = found.group(1) if found else None
                path = f"/v1/tasks/{task_id}" if task_id else self.path
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = httpx.request(self.command, outer.upstream + path, content=sent or None, headers=headers,
                                     timeout=30)
                body = resp.content
                if resp.status_code < 400 and resp.headers.get("content-type", "").startswith("application/json"):
                    body = json.dumps(outer._rewrite(self.command, path, task_id, sent, key, resp.json())).encode()
                self.send_response(resp.status_code)
                self.send_header("content-type", resp.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _forward

        return Handler


def test_9_a_key_the_endpoint_echoes_back_is_never_stored(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    with Emulator(key=KEY, render_scale=0.1, queue_s=0.01) as emu:
        echo = EchoingEndpoint(emu.base_url)
        try:
            env = clean_env(work, V2V_LAB_EMULATOR_KEY=KEY)
            spec = write_spec(work, experiment="k9", prompts=["echo id", "echo failure", "echo output"])
            # The user names the endpoint on the command line: the key is meant to go there.
            done = cli("sweep", str(spec), "--yes", "--no-progress", "--base-url", echo.url, env=env, cwd=work)
        finally:
            echo.close()
        creates = len(emu.tasks())
    assert done.returncode == 0, done.stderr
    assert all(echo.echoed.values()), echo.echoed  # each echo was made, and read by the client
    leaks = scan(work, KEY)
    assert not leaks, f"the echoed key was stored in {leaks}"
    assert KEY not in done.stdout + done.stderr
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("k9")
    runs = {r.data.params["prompt"]: r.data.tags for r in client.search_runs([exp.experiment_id],
                                                                            "tags.`v2v.kind` = 'cell'")}
    assert runs["echo failure"]["v2v.failure_code"] == "SAFETY.INPUT.***", runs["echo failure"]
    assert runs["echo failure"]["v2v.failure"] == "key *** is not allowed to do that"
    assert runs["echo id"]["v2v.task_id"].endswith(".***") and runs["echo id"]["v2v.status"] == "succeeded"
    assert runs["echo output"]["v2v.status"] == "succeeded"
    assert creates == 3
    report("round2_case9", {"creates": creates, "echoes": echo.echoed, "files_holding_the_key": len(leaks)})


# -- case 16: every environment variable is checked where it is read ------------------------------------
BAD_SECONDS = ("abc", "0", "-1", "nan", "inf")


def test_16_bad_durations_in_the_environment_are_one_line_naming_the_variable(tmp_path, monkeypatch, capsys):
    # As typed: the traceback case, through the console script.
    ledger = "postgresql://member@127.0.0.1:9/v2v_ledger"  # never reached: the variable is checked first
    env = clean_env(tmp_path, V2V_LAB_LEDGER_URL=ledger, V2V_LAB_LEASE_S="abc")
    spec = write_spec(tmp_path, experiment="k16")
    done = cli("sweep", str(spec), "--yes", "--no-progress", env=env, cwd=tmp_path)
    assert done.returncode == 2 and one_line(done.stderr).startswith("error: V2V_LAB_LEASE_S: got 'abc'"), done.stderr
    # The rest in process (the same main()): each bad value of each duration the ledger reads.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("V2V_LAB_LEDGER_URL", ledger)
    for name in ("V2V_LAB_LEASE_S", "V2V_LAB_LEDGER_RETRY_S"):
        for bad in BAD_SECONDS:
            with monkeypatch.context() as m:
                m.setenv(name, bad)
                code = main(["sweep", str(spec), "--yes", "--no-progress"])
                line = one_line(capsys.readouterr().err)
            assert code == 2 and line.startswith(f"error: {name}: got '{bad}'") and "positive" in line, (name, bad, line)
    # Every duration the package declares, whoever reads it, refuses the same values by name.
    from v2v_lab._env import VARIABLES, env_seconds, env_url
    from v2v_lab.errors import InputError

    durations = [v.name for v in VARIABLES.values() if v.kind == "seconds"]
    assert {"V2V_LAB_LEASE_S", "V2V_LAB_LEDGER_RETRY_S"} <= set(durations)
    for name in durations:
        for bad in BAD_SECONDS:
            monkeypatch.setenv(name, bad)
            with pytest.raises(InputError, match=f"^{name}: ") as err:
                env_seconds(name)
            assert "\n" not in str(err.value)
        monkeypatch.setenv(name, "2.5")
        assert env_seconds(name) == 2.5
        monkeypatch.delenv(name)
        assert env_seconds(name) == VARIABLES[name].default
    for name in (v.name for v in VARIABLES.values() if v.kind == "url"):
        monkeypatch.setenv(name, "localhost:5000")
        with pytest.raises(InputError, match=f"^{name}: "):
            env_url(name)


def test_16_every_variable_is_read_through_one_table_and_the_readme_lists_exactly_those():
    from v2v_lab._env import VARIABLES

    package = ROOT / "v2v_lab"
    stray = []
    for path in package.rglob("*.py"):
        if path.name == "_env.py":
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            # Reading the environment anywhere else skips the checks; setting MLflow's own switches is not reading.
            code = line.split("#", 1)[0]
            if re.search(r"os\.environ|getenv\(|\benviron\b", code) and not re.search(
                    r"\[(_PROGRESS_BAR|_QUIET_RUN_LINKS)\]|\(_PROGRESS_BAR\b|environ\.setdefault\(name, value\)", code):
                stray.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not stray, stray
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([A-Z0-9_]+)` \|", section, re.M)
    assert sorted(listed) == sorted(VARIABLES), (sorted(set(listed) ^ set(VARIABLES)))
    assert len(listed) == len(set(listed))
