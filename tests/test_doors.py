"""Every door as users meet it (issue 14): the README's commands typed as shown through the console
script, the official runwayml SDK (5.x, and 4.x from its own folder) against `v2v-lab emulator`,
CometAPI's documented request sent verbatim, and every command's --help and signals."""

from __future__ import annotations

import concurrent.futures
import functools
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import httpx
import mlflow
import psutil
import pytest
import yaml

from v2v_lab.api.catalog import load_catalog
from v2v_lab.tracking.store import client as make_client

from .conftest import DEMO, ROOT, TEST_OUTPUT, free_port, on_a_terminal

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "v2v-lab")
SDK4 = Path(sys.executable).parents[1] / "sdk4"  # runwayml 4.x, installed there by the Makefile
KEY = "key_" + "cd" * 64
COMMANDS = ("sweep", "generate", "score", "emulator", "runs", "rescore", "power", "ui")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "V2V_LAB_HOME", "V2V_LAB_BASE_URL", "RUNWAYML_API_SECRET",
                        "COMETAPI_API_KEY", "V2V_LAB_EMULATOR_KEY", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL",
                        "MFLAGS")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    if os.environ.get("PYTHONPATH") == str(ROOT):
        # Only bench/sabotage.py sets it so: the commands must run the (sabotaged) copy under test.
        env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def readme_commands() -> list[str]:
    """Every command line in the README's ```bash blocks, comments stripped."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 180) -> str:
    """What the process printed up to the first line holding `needle` (read on a thread: a
    buffered pipe hides lines from select)."""
    box: dict[str, str] = {"seen": ""}

    def read() -> None:
        for line in proc.stdout:
            box["seen"] += line
            if needle in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if needle not in box["seen"]:
        ended = proc.poll()
        why = proc.stderr.read() if ended is not None and proc.stderr else ""
        raise AssertionError(f"no {needle!r} in its output; exit {ended}; stdout {box['seen']!r}; stderr {why!r}")
    return box["seen"]


@pytest.fixture
def workdir(tmp_path):
    """A folder laid out like a fresh clone's: the experiments (with the demo clip), and .venv as
    this test run's (never a Makefile: its bootstrap would reinstall the package from here)."""
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    return tmp_path


def _run(line: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# The README's commands that work on what the main job leaves (its store and outputs) run in order
# after it; the others need nothing from it and run in a test of their own, beside it on another worker.
ON_THE_DEMO_STORE = ("make demo", "v2v-lab sweep experiments/quickstart.yaml", "v2v-lab runs ", "v2v-lab rescore ",
                     "v2v-lab power ", "v2v-lab score ")


def _on_the_demo_store(line: str) -> bool:
    return line.startswith(ON_THE_DEMO_STORE) and not line.endswith("--dry-run")


def test_the_readme_commands_on_the_main_jobs_store_run_as_typed(workdir):
    """The main job, then each README command that reads what it left, typed as shown."""
    _run_as_typed([line for line in readme_commands() if _on_the_demo_store(line)], workdir, "readme_commands_store.json")


def test_the_other_readme_commands_run_as_typed(workdir, small_clip):
    """Every other README command, typed as shown, from a fresh folder. A command added to the
    README that this file does not know runs here as typed: covering it is part of adding it."""
    shutil.copy(small_clip, workdir / "clip.mp4")
    _run_as_typed([line for line in readme_commands() if not _on_the_demo_store(line)], workdir, "readme_commands.json")


def _run_as_typed(lines: list[str], workdir: Path, report_name: str) -> None:
    env = _env()
    seen: dict[str, str] = {}
    pending_env: dict[str, str] = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            # The README's placeholders: a key shaped like Runway's, any CometAPI key.
            pending_env[name] = KEY if value.endswith("...") and name == "RUNWAYML_API_SECRET" else "sk-test"
            seen[line] = "sets the next commands' environment"
            continue
        seen[line] = _run_one(line, workdir, {**env, **pending_env})
    assert len(seen) == len(set(lines)), "a README command was not run"
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    (TEST_OUTPUT / report_name).write_text(json.dumps(seen, indent=2))


def _run_one(line: str, workdir: Path, run_env: dict[str, str]) -> str:
    """Runs one README command as typed; what it showed, in a few words."""
    if line == "make test":
        dry = _run("make -n test", ROOT, run_env)
        assert dry.returncode == 0 and "pytest" in dry.stdout
        return "this suite (make -n shows the pytest run)"
    if line == "make demo":
        # Its recipe, run here (the bootstrap half is what `make test`, running this, just did).
        plan = _run("make -n demo", ROOT, run_env).stdout
        recipe = next(x for x in plan.splitlines() if x.endswith("v2v-lab sweep experiments/quickstart.yaml"))
        result = _run(recipe, workdir, run_env, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "4 cells: 4 succeeded" in result.stdout and (workdir / "mlflow.db").is_file()
        return "4 cells done into ./mlflow.db"
    if line.startswith("v2v-lab emulator"):
        return _emulator_as_typed(line, workdir, run_env)
    if "--provider cometapi" in line:
        return _cometapi_sweep_as_typed(line, workdir, run_env)
    typed = line.replace("SOURCE.mp4", "experiments/media/bigbuckbunny.mp4")
    if "OUTPUT.mp4" in typed:
        output = next(workdir.glob(".v2v-lab/outputs/*/*/output.mp4"))
        typed = typed.replace("OUTPUT.mp4", str(output))
    result = _run(typed, workdir, run_env)
    assert result.returncode == 0, (line, result.stdout[-1500:], result.stderr[-1500:])
    assert "Traceback" not in result.stderr
    if typed.endswith("--json"):
        assert json.loads(result.stdout)["values"]["ssim_source"] > 0
    return result.stdout.strip().splitlines()[-1][:80] if result.stdout.strip() else "(quiet)"


def _emulator_as_typed(line: str, cwd: Path, env: dict[str, str]) -> str:
    """Start it as typed, drive it with the official SDK, stop it with Ctrl-C."""
    import runwayml

    # exec: the shell becomes the command, so Ctrl-C reaches it as it would in a terminal.
    proc = subprocess.Popen("exec " + line, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        banner = _wait_for_line(proc, "try:")
        base = re.search(r"emulator on (http://\S+)", banner).group(1)
        sdk = runwayml.RunwayML(api_key=KEY, base_url=base, max_retries=0)
        upload = sdk.uploads.create_ephemeral(file=DEMO)
        task = sdk.video_to_video.create(model="aleph2", video_uri=upload.uri,
                                         prompt_text="neon").wait_for_task_output(timeout=120)
        assert task.status == "SUCCEEDED"
    finally:
        if proc.poll() is None:  # (one that failed to start has already said why on stderr)
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == "emulator stopped", err
    return f"served the SDK ({task.status}), Ctrl-C -> 130"


def _cometapi_sweep_as_typed(line: str, cwd: Path, env: dict[str, str]) -> str:
    """`v2v-lab sweep spec.yaml --provider cometapi` with the user's V2V_LAB_BASE_URL pointing at a
    CometAPI-flavoured emulator (the README's way to point a provider elsewhere); a terminal answers yes."""
    from v2v_lab.emulator import Emulator

    (cwd / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": "comet", "videos": ["experiments/media/bigbuckbunny.mp4"], "models": ["gen3a_turbo"],
        "prompts": ["neon city"], "seeds": [1], "ratios": ["1280:768"], "scoring": {"frames": 4, "size": 64}}))
    with Emulator(flavor="cometapi", render_scale=0.1) as emu:
        code, screen = on_a_terminal(line, {**env, "V2V_LAB_BASE_URL": emu.base_url}, b"y\n", cwd)
        assert code == 0, screen[-2000:]
        assert "1 cells: 1 succeeded" in screen and len(emu.tasks()) == 1
    return "asked on the terminal, 1 cell done on the CometAPI emulator"


# -- the official SDK against the served emulator --------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`v2v-lab emulator` started through the console script, as a user would."""
    folder = tmp_path_factory.mktemp("served")
    proc = subprocess.Popen([CLI, "emulator", "--port", "0", "--render-scale", "0.1", "--queue-seconds", "0.05"],
                            cwd=folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    banner = _wait_for_line(proc, "try:")
    yield re.search(r"emulator on (http://\S+)", banner).group(1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143


SDK5_CALLS = ["uploads.create_ephemeral", "video_to_video.create", "wait_for_task_output -> Succeeded",
              "task.cost.credits", "tasks.retrieve", "tasks.delete", "organization.retrieve",
              "organization.retrieve_usage", "with_raw_response", "PermissionDeniedError (unknown model)",
              "BadRequestError (unknown upload)", "AsyncRunwayML create + wait"]


def test_runwayml_sdk_5_against_the_served_emulator(served):
    import asyncio

    import runwayml
    from runwayml.types.task_retrieve_response import Succeeded

    assert runwayml.__version__.startswith("5."), runwayml.__version__
    table: dict[str, bool] = {}
    sdk = runwayml.RunwayML(api_key=KEY, base_url=served, max_retries=0)
    upload = sdk.uploads.create_ephemeral(file=DEMO)
    table["uploads.create_ephemeral"] = upload.uri.startswith("runway://")
    created = sdk.video_to_video.create(model="aleph2", video_uri=upload.uri, prompt_text="noir", seed=7)
    table["video_to_video.create"] = bool(created.id)
    task = created.wait_for_task_output(timeout=120)
    table["wait_for_task_output -> Succeeded"] = isinstance(task, Succeeded)
    table["task.cost.credits"] = task.cost.credits > 0
    again = sdk.tasks.retrieve(created.id)
    table["tasks.retrieve"] = again.status == "SUCCEEDED" and again.output[0].startswith(served)
    sdk.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        sdk.tasks.retrieve(created.id)
    table["tasks.delete"] = True
    org = sdk.organization.retrieve()
    table["organization.retrieve"] = org.credit_balance > 0 and "aleph2" in org.tier.models
    import datetime as dt

    # beforeDate is exclusive and defaults to start + 30 days: today's spend needs a window from today.
    usage = sdk.organization.retrieve_usage(start_date=dt.datetime.now(dt.timezone.utc).date())
    table["organization.retrieve_usage"] = any(r.used_credits for r in usage.results)
    raw = sdk.organization.with_raw_response.retrieve()
    table["with_raw_response"] = raw.http_response.status_code == 200 and raw.parse().credit_balance > 0
    with pytest.raises(runwayml.PermissionDeniedError, match="not available"):
        sdk.video_to_video.create(model="gen9_imaginary", video_uri=upload.uri, prompt_text="x",
                                  extra_body={})
    table["PermissionDeniedError (unknown model)"] = True
    with pytest.raises(runwayml.BadRequestError):
        sdk.video_to_video.create(model="aleph2", video_uri="runway://uploads/nope", prompt_text="x")
    table["BadRequestError (unknown upload)"] = True

    async def async_run() -> bool:
        client = runwayml.AsyncRunwayML(api_key=KEY, base_url=served, max_retries=0)
        made = await client.video_to_video.create(model="aleph2", video_uri=upload.uri, prompt_text="sepia")
        done = await made.wait_for_task_output(timeout=120)
        await client.close()
        return isinstance(done, Succeeded)

    table["AsyncRunwayML create + wait"] = asyncio.run(async_run())
    assert table == {call: True for call in SDK5_CALLS}, table


SDK4_SCRIPT = """
import json, sys
import runwayml
sdk = runwayml.RunwayML(api_key=sys.argv[2], base_url=sys.argv[1], max_retries=0)
out = {"version": runwayml.__version__}
up = sdk.uploads.create_ephemeral(file=open(sys.argv[3], "rb"))
out["uploads.create_ephemeral"] = up.uri.startswith("runway://")
task = sdk.video_to_video.create(model="gen4_aleph", video_uri=up.uri, prompt_text="noir",
                                 ratio="1280:720").wait_for_task_output(timeout=120)
out["gen4_aleph create + wait_for_task_output"] = task.status == "SUCCEEDED"
out["tasks.retrieve"] = sdk.tasks.retrieve(task.id).status == "SUCCEEDED"
out["organization.retrieve"] = sdk.organization.retrieve().credit_balance > 0
print(json.dumps(out))
"""


def test_runwayml_sdk_4_against_the_served_emulator(served):
    assert (SDK4 / "runwayml").is_dir(), "make installs runwayml 4.x into .venv/sdk4 (make test does it)"
    result = subprocess.run([sys.executable, "-c", SDK4_SCRIPT, served, KEY, str(DEMO)], capture_output=True,
                            text=True, timeout=180, env={**_env(), "PYTHONPATH": str(SDK4)})
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads(result.stdout)
    assert table.pop("version").startswith("4.")
    assert all(table.values()), table


# -- CometAPI, as its docs write the request ---------------------------------------------------------
@pytest.fixture()
def video_url():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DEMO.parent))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{DEMO.name}"
    server.shutdown()
    server.server_close()


def test_cometapi_request_sent_verbatim_with_curl(tmp_path, video_url):
    proc = subprocess.Popen([CLI, "emulator", "--flavor", "cometapi", "--port", "0", "--render-scale", "0.1"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = re.search(r"emulator on (http://\S+)", _wait_for_line(proc, "try:")).group(1)
        host = base[: -len("/runwayml")]
        body = json.dumps({"model": "gen4_aleph", "videoUri": video_url, "promptText": "neon city at night",
                           "seed": 1, "ratio": "1280:720", "references": [],
                           "contentModeration": {"publicFigureThreshold": "auto"}})
        created = subprocess.run(
            ["curl", "-s", "--request", "POST", "--url", f"{host}/runwayml/v1/video_to_video",
             "--header", "Content-Type: application/json", "--header", "Authorization: Bearer sk-comet",
             "--header", "X-Runway-Version: 2024-11-06", "--data", body],
            capture_output=True, text=True, timeout=60)
        task_id = json.loads(created.stdout)["id"]
        answers = []
        for _ in range(200):
            got = subprocess.run(["curl", "-s", "--url", f"{host}/runwayml/v1/tasks/{task_id}",
                                  "--header", "Authorization: Bearer sk-comet"], capture_output=True, text=True,
                                 timeout=30)
            answer = json.loads(got.stdout)
            answers.append(answer.get("code"))
            if answer.get("code") == "success" and answer["data"]["status"] in ("SUCCESS", "FAILURE"):
                break
            time.sleep(0.2)
        assert answers[0] == "task_not_exist", "CometAPI knows a task only a moment after its create"
        assert answer["data"]["status"] == "SUCCESS" and answer["data"]["progress"] == "100%"
        output = answer["data"]["data"]["output"][0]
        assert httpx.get(output).content[4:8] == b"ftyp"
        # v2v-lab's own client on the same door: generate, with the real host's form of base URL.
        generated = subprocess.run([CLI, "generate", str(DEMO), "--prompt", "noir", "--model", "gen3a_turbo",
                                    "--ratio", "1280:768", "--provider", "cometapi", "--base-url", base, "--yes",
                                    "--out", str(tmp_path / "c.mp4")], env=_env(COMETAPI_API_KEY="sk-comet"),
                                   capture_output=True, text=True, timeout=180)
        assert generated.returncode == 0, generated.stderr[-2000:]
        assert (tmp_path / "c.mp4").read_bytes()[4:8] == b"ftyp"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


# -- provider local against a keyed emulator -----------------------------------------------------------
def test_provider_local_reads_a_keyed_emulators_key_from_the_environment(tmp_path, small_clip):
    from v2v_lab.emulator import Emulator

    with Emulator(key=KEY, render_scale=0.1) as emu:
        base = ["generate", small_clip, "--prompt", "noir", "--provider", "local", "--base-url", emu.base_url]
        without = subprocess.run([CLI, *base, "--out", str(tmp_path / "a.mp4")], env=_env(), capture_output=True,
                                 text=True, timeout=120)
        assert without.returncode == 1
        line = without.stderr.strip().splitlines()[-1]
        assert "POST /v1/uploads: HTTP 401" in line and KEY not in without.stderr
        with_key = subprocess.run([CLI, *base, "--out", str(tmp_path / "b.mp4")],
                                  env=_env(V2V_LAB_EMULATOR_KEY=KEY), capture_output=True, text=True, timeout=120)
        assert with_key.returncode == 0, with_key.stderr
        assert KEY not in with_key.stdout + with_key.stderr


# -- the CLI as a person reads it ----------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_defaults(command):
    result = subprocess.run([CLI, command, "--help"], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: v2v-lab " + command)
    # Every option has a help line (argparse prints a bare flag when help is missing).
    flags = re.findall(r"^  (--[a-z-]+)", result.stdout, re.M)
    assert flags
    for flag in flags:
        block = result.stdout.split(f"  {flag}", 1)[1].split("\n  -", 1)[0]
        words = re.sub(r"^[ A-Z_{},.-]*", "", block.replace("\n", " ")).strip()
        assert words, f"{command} {flag} has no help line"


def test_score_prints_each_metrics_range_and_direction(small_clip):
    from v2v_lab.metrics import REGISTRY

    result = subprocess.run([CLI, "score", small_clip, small_clip, "--frames", "4", "--size", "64"],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for name, metric in REGISTRY.items():
        line = next(row for row in result.stdout.splitlines() if row.startswith(name + " "))
        assert metric.describe() in line
    assert REGISTRY["temporal_consistency_rel"].describe() == "range 0..∞, best at 1"  # a target, not "higher"
    assert REGISTRY["warp_error"].describe() == "range 0..1, lower is better"
    assert REGISTRY["motion_epe"].describe() == "range 0..∞ px, lower is better"  # its unit


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_long_running_commands_stop_cleanly_on_signals(tmp_path, sig, code):
    """emulator, ui and a running sweep: started, answering, stopped with one line and the
    conventional exit code; a stopped sweep leaves its parent run KILLED, not RUNNING."""
    env = _env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", V2V_LAB_HOME=str(tmp_path / "h"))
    emu = subprocess.Popen([CLI, "emulator", "--port", "0", "--latency", "30", "--render-scale", "0.1"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = re.search(r"emulator on (http://\S+)", _wait_for_line(emu, "try:")).group(1)
    assert httpx.get(base + "/v1/organization", headers={"Authorization": "Bearer x",
                                                         "X-Runway-Version": "2024-11-06"}).status_code == 200
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "signals", "videos": [str(DEMO)], "prompts": ["neon"],
                                    "scoring": {"frames": 4, "size": 64}}))
    sweep = subprocess.Popen([CLI, "sweep", str(spec), "--no-progress", "--base-url", base], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    client = None
    while sweep.poll() is None and time.monotonic() < deadline:  # until its parent run is open
        # Opened through v2v-lab's store lock, as the sweep opens it: a plain MlflowClient reading
        # the file while the sweep still creates the schema saw it half made ("no such column").
        if client is None and (tmp_path / "mlflow.db").exists():
            client = make_client(env["MLFLOW_TRACKING_URI"])
        exp = client.get_experiment_by_name("signals") if client is not None else None
        if exp is not None and client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'sweep'"):
            break
        time.sleep(0.3)
    client = client or make_client(env["MLFLOW_TRACKING_URI"])
    time.sleep(0.5)
    sweep.send_signal(sig)
    _, err = sweep.communicate(timeout=60)
    assert sweep.returncode == code, err
    assert err.strip().splitlines()[-1].startswith("interrupted: the journal keeps every created task"), err
    assert "Traceback" not in err
    runs = client.search_runs([client.get_experiment_by_name("signals").experiment_id], "tags.`v2v.kind` = 'sweep'")
    assert [r.info.status for r in runs] == ["KILLED"]
    emu.send_signal(sig)
    _, err = emu.communicate(timeout=30)
    assert emu.returncode == code and err.strip() == "emulator stopped"
    ui = subprocess.Popen([CLI, "ui", "--port", str(free_port())], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = re.search(r"starting on (http://\S+)", ui.stdout.readline()).group(1)
    ready = ui.stdout.readline()  # said once it answers, not before
    assert ready.startswith(f"ready at {url} ("), ready
    assert httpx.get(url + "/health", timeout=5).status_code == 200
    group = [c.pid for c in psutil.Process(ui.pid).children(recursive=True)]
    assert group, "mlflow ui runs as a child"
    ui.send_signal(sig)
    _, err = ui.communicate(timeout=60)
    assert ui.returncode == code and err.strip().splitlines()[-1] == "MLflow UI stopped"
    assert not [pid for pid in group if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"], \
        "a process the UI started outlived it"



def test_a_cell_run_spans_its_generation_and_the_experiment_opens_on_its_runs(mlflow_store, tmp_path):
    from v2v_lab.emulator import Emulator
    from v2v_lab.sweeps import run_sweep

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "spans", "videos": [str(DEMO)], "prompts": ["neon"],
                                    "scoring": {"frames": 4, "size": 64}}))
    with Emulator(render_scale=0.1, run_s=1.5) as emu:
        result = run_sweep(str(spec), base_url=emu.base_url, progress=False)
    client = mlflow.MlflowClient()
    run = client.get_run(result.outcomes[0].run_id)
    span_s = (run.info.end_time - run.info.start_time) / 1000
    assert span_s >= run.data.metrics["latency_s"] >= 1.5
    assert client.get_experiment_by_name("spans").tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(result.parent_run_id)
    assert parent.info.run_name.startswith("spans sweep ")


def test_the_public_api_is_exactly_what_the_readme_documents():
    import v2v_lab

    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", line.split(" | ")[0]))
    assert documented == set(v2v_lab.__all__)
    for name in v2v_lab.__all__:  # each one really imports (the dashboards lazily)
        assert getattr(v2v_lab, name) is not None, name
    # Every package's public names are declared too.
    for module in ("api", "emulator", "media", "metrics", "sweeps", "tracking", "dashboard"):
        mod = __import__(f"v2v_lab.{module}", fromlist=["__all__"])
        assert all(hasattr(mod, n) for n in mod.__all__), module
    # And every public module (a name without a leading underscore) says what it exports, each
    # name defined there.
    import importlib

    for path in sorted((ROOT / "v2v_lab").rglob("[!_]*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        mod = importlib.import_module(name)
        assert isinstance(getattr(mod, "__all__", None), list), f"{name} has no __all__"
        assert all(hasattr(mod, n) for n in mod.__all__), name


# Each of the SDK's video_to_video models with a request of its own shape: the source in the field
# the SDK names, the model's own fields beside it.
SDK_MODEL_REQUESTS: dict[str, dict] = {
    "aleph2": {"target_aspect_ratio": "9:16", "seed": 3},
    "seedance2": {"duration": 4, "audio": True, "seed": 1, "ratio": "1280:720"},
    "seedance2_fast": {"duration": "auto"},
    "seedance2_mini": {"ratio": "640:640"},
    "seedance2_5": {"mode": "reference", "draft": True},
    "hailuo3": {"resolution": "768p", "duration": 6},
    "gemini_omni_flash": {},
    "gemini_omni_flash_1.1": {"mode": "edit", "duration": "auto"},
    "klingO3_standard": {"provider_settings": {"keep_original_sound": False}},
    "klingO3_pro": {},
    "klingO3_4k": {},
    "kling_4": {"ratio": "auto_720p"},
}


def test_runwayml_sdk_creates_and_awaits_every_model_it_types(served):
    """The official SDK (the version pinned in the dev dependencies) sends each of its 12 models'
    requests to `v2v-lab emulator`, which takes each and renders it; a field a model does not take
    is Runway's 400, naming the field."""
    import runwayml
    from runwayml.types import video_to_video_create_params as params

    typed = {typing.get_args(typing.get_type_hints(v)["model"])[0] for v in typing.get_args(params.VideoToVideoCreateParams)}
    assert typed == set(SDK_MODEL_REQUESTS), typed ^ set(SDK_MODEL_REQUESTS)
    sdk = runwayml.RunwayML(api_key=KEY, base_url=served, max_retries=0)
    uri = sdk.uploads.create_ephemeral(file=DEMO).uri
    created = {}
    for model, extra in SDK_MODEL_REQUESTS.items():  # all sent first: the emulator renders them side by side
        source = "video_uri" if load_catalog()[model].video_field == "videoUri" else "prompt_video"
        created[model] = sdk.video_to_video.create(model=model, prompt_text="noir, rain", **{source: uri}, **extra)
    # The SDK's own wait sleeps its 6 s poll interval before each look: twelve waits side by side.
    with concurrent.futures.ThreadPoolExecutor(len(created)) as pool:
        done = dict(zip(created, pool.map(lambda task: task.wait_for_task_output(timeout=180), created.values()), strict=True))
    table = {model: (done[model].status, sorted(extra)) for model, extra in SDK_MODEL_REQUESTS.items()}
    assert all(status == "SUCCEEDED" for status, _ in table.values()), table
    with pytest.raises(runwayml.BadRequestError, match="resolution"):
        sdk.video_to_video.create(model="seedance2", prompt_video=uri, extra_body={"resolution": "768p"})
    with pytest.raises(runwayml.BadRequestError, match="duration"):
        sdk.video_to_video.create(model="hailuo3", prompt_video=uri, prompt_text="x", duration=99)
    with pytest.raises(runwayml.BadRequestError, match="seed"):
        sdk.video_to_video.create(model="kling_4", video_uri=uri, prompt_text="x", extra_body={"seed": 1})
