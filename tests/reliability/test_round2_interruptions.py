"""Faults and interruptions, round two (issue 26, cases 13, 16's full disk, 17 and 18): a metric
plugin that fails or hangs, a full disk under the store, a part of the team's store killed and
left down, Ctrl-C at the spend question. Each is one recorded failure or one line, Ctrl-C works at
every moment, and nothing is paid twice. Each test failed on the code before it.

Everything runs as a user types it (the console script, in a subprocess); creates are counted by
the emulator itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from v2v_lab.emulator import Emulator

from .._helpers import HeldTasks, team_stack_env, wait_until
from ..conftest import DEMO, ROOT, free_port, on_a_terminal
from .conftest import report, tasks_per_cell, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
KEY = "key_" + "cd" * 64

# A plugin package as pip would leave it (a module and its dist-info with the entry point): four
# metrics that fail each its own way, and hang_mark so a test knows when a sweep is stuck in one.
PLUGIN = '''
import os
import threading
from pathlib import Path

from v2v_lab.metrics import Metric, MetricResult


def raises(frames):
    raise RuntimeError("model weights not found")


def a_string(frames):
    return "0.93"


def key_error(frames):
    return {}["clip_model"]


def never_returns(frames):
    mark = os.environ.get("HANG_MARK")
    if mark:
        Path(mark).touch()
    threading.Event().wait()


METRICS = [Metric("plugin_raises", "raises", 0.0, 1.0, raises),
           Metric("plugin_string", "returns a string", 0.0, 1.0, a_string),
           Metric("plugin_keyerror", "raises KeyError", 0.0, 1.0, key_error),
           Metric("plugin_hangs", "never returns", 0.0, 1.0, never_returns)]
'''
BROKEN = ["plugin_raises", "plugin_string", "plugin_keyerror", "plugin_hangs"]


def _env(folder: Path, *, pythonpath: str | None = None, **extra: str) -> dict[str, str]:
    """A user's shell: no v2v-lab or MLflow variables of the test run's own; a store in folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_", "RUNWAYML_", "AWS_"))}
    paths = [p for p in (pythonpath, os.environ.get("PYTHONPATH") if os.environ.get("PYTHONPATH") == str(ROOT)
                         else None) if p]
    env.pop("PYTHONPATH", None)
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)  # a sabotage copy: its package, not the installed one
    env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "V2V_LAB_HOME": str(folder / "state"),
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    env.update(extra)
    return env


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _cell_runs(uri: str, experiment: str) -> list:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'cell'", max_results=500)


def _stop(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str, str]:
    """The process's exit code and output once it has ended by itself within timeout; None (and
    it is killed) when it had not."""
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err


# -- 13: metric plugins that fail ------------------------------------------------------------------
@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> str:
    site = tmp_path_factory.mktemp("plugins")
    (site / "v2v_lab_broken_metrics").mkdir()
    (site / "v2v_lab_broken_metrics" / "__init__.py").write_text(PLUGIN)
    info = site / "v2v_lab_broken_metrics-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: v2v-lab-broken-metrics\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[v2v_lab.metrics]\nbroken = v2v_lab_broken_metrics:METRICS\n")
    return str(site)


def _sweep_with_plugins(tmp_path: Path, plugins: str, experiment: str, scoring: dict) -> tuple[list, int]:
    """Two cells scored by `scoring`, swept, then swept again: (their runs, creates)."""
    with Emulator(render_scale=0.1) as emu:
        spec = write_spec(tmp_path, experiment=experiment, prompts=["neon city", "noir"],
                          scoring={"frames": 4, "size": 64, **scoring})
        env = _env(tmp_path, pythonpath=plugins)
        done = subprocess.run([CLI, "sweep", str(spec), "--base-url", emu.base_url, "--no-progress"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 cells: 2 succeeded" in done.stdout, done.stdout
        again = subprocess.run([CLI, "sweep", str(spec), "--base-url", emu.base_url, "--no-progress"], env=env,
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
        creates = len(emu.tasks())
    runs = _cell_runs(env["MLFLOW_TRACKING_URI"], experiment)
    assert len(runs) == 2
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        assert run.info.status == "FINISHED" and tags["v2v.status"] == "succeeded", tags
        assert {"ssim_source", "structure"} <= set(metrics) and not set(BROKEN) & set(metrics), metrics
    return runs, creates


def test_13_a_plugin_that_raises_or_returns_a_string_is_a_recorded_failure_on_that_metric_alone(tmp_path, plugins):
    """Raises, returns a string, raises KeyError: the sweep exits 0 and each run is complete with
    the built-in metrics and one recorded failure per broken metric (it crashed the sweep, exit 1,
    after the create was paid, and left the run `logging`)."""
    broken = ["plugin_raises", "plugin_string", "plugin_keyerror"]
    runs, creates = _sweep_with_plugins(tmp_path, plugins, "plugins", {"metrics": ["ssim_source", *broken, "structure"]})
    assert creates == 2
    for run in runs:
        tags = run.data.tags
        assert "RuntimeError: model weights not found" in tags["v2v.metric_error.plugin_raises"]
        assert "not a MetricResult" in tags["v2v.metric_error.plugin_string"]
        assert "KeyError" in tags["v2v.metric_error.plugin_keyerror"]
        assert all(name in tags["v2v.scoring_error"] for name in broken)
    report("round2_13_plugins", {"creates": creates, "runs": len(runs)})


def test_13_a_plugin_that_never_returns_is_abandoned_after_its_time_limit(tmp_path, plugins):
    """scoring.metric_time_limit_s: 2. The first cell waits 2 s for it and records that; the
    second does not start it again (its first call is still running)."""
    runs, creates = _sweep_with_plugins(tmp_path, plugins, "hangs", {
        "metrics": ["ssim_source", "plugin_hangs", "structure"], "metric_time_limit_s": 2})
    assert creates == 2
    said = sorted(run.data.tags["v2v.metric_error.plugin_hangs"] for run in runs)
    assert all("time limit of 2 s" in why for why in said), said
    assert any("abandoned" in why for why in said) and any("not run" in why for why in said), said


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_13_ctrl_c_and_sigterm_stop_a_sweep_stuck_in_a_plugin(tmp_path, plugins, sig, code):
    """A plugin that never returns, within the default time limit (minutes): the signal ends the
    sweep (it could only be killed with -9)."""
    mark = tmp_path / "hanging"
    with Emulator(render_scale=0.1) as emu:
        spec = write_spec(tmp_path, experiment="stuck", scoring={"frames": 4, "size": 64,
                                                                 "metrics": ["ssim_source", "plugin_hangs"]})
        proc = subprocess.Popen([CLI, "sweep", str(spec), "--base-url", emu.base_url, "--no-progress"],
                                env=_env(tmp_path, pythonpath=plugins, HANG_MARK=str(mark)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mark.exists(), "the sweep never reached the plugin"
        proc.send_signal(sig)
        ended, _, err = _stop(proc, 60)
    assert ended == code, f"the sweep did not end on the signal ({ended}): {err[-1500:]}"
    assert len(_lines(err)) == 1 and err.startswith("interrupted"), err


# -- 16: a full disk under the store ---------------------------------------------------------------
def test_16_a_full_disk_under_the_store_is_one_line_and_the_rerun_says_what_it_finished(tmp_path):
    """The store (SQLite and its artifacts) on a 1.6 MB tmpfs in a private mount namespace: it
    fills mid-sweep. One line; then, with room again, the rerun logs the kept outputs, pays for
    nothing twice and says how many it finished that way."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-Urm", "true"]).returncode != 0:
        pytest.skip("needs unshare -Urm (a private mount namespace) to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    prompts = ["neon city", "noir", "sepia", "anime", "red", "blue"]
    with Emulator(render_scale=0.1) as emu:
        spec = write_spec(tmp_path, experiment="full", prompts=prompts, concurrency=2)
        env = _env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{small / 'mlflow.db'}", V2V_LAB_BASE_URL=emu.base_url)
        sweep = f"{CLI} sweep {spec} --no-progress"
        script = (f"mount -t tmpfs -o size=1600k tmpfs {small} && {{ {sweep} > {tmp_path}/1.out 2> {tmp_path}/1.err; "
                  f"echo $? > {tmp_path}/1.code; mount -o remount,size=64m {small} && "
                  f"{sweep} > {tmp_path}/2.out 2> {tmp_path}/2.err; echo $? > {tmp_path}/2.code; "
                  f"cp {small}/mlflow.db {tmp_path}/after.db; }}")
        subprocess.run(["unshare", "-Urm", "sh", "-c", script], env=env, timeout=600, check=True)
        per_cell = tasks_per_cell(emu)
    first_err = (tmp_path / "1.err").read_text()
    assert (tmp_path / "1.code").read_text().strip() == "1", first_err[-2000:]
    assert len(_lines(first_err)) == 1, first_err[-3000:]
    assert "the store's disk is full" in first_err and str(small) in first_err
    second = (tmp_path / "2.out").read_text()
    assert (tmp_path / "2.code").read_text().strip() == "0", (tmp_path / "2.err").read_text()[-2000:]
    assert "6 cells: 6 succeeded" in second, second
    assert "finished now from outputs an earlier run paid for and kept" in second, second
    assert len(per_cell) == 6 and all(len(tasks) == 1 for tasks in per_cell.values()), per_cell
    runs = _cell_runs(f"sqlite:///{tmp_path / 'after.db'}", "full")
    done = [r for r in runs if r.data.tags.get("v2v.status") == "succeeded"]
    assert len(done) == 6 and len({r.data.tags["v2v.cell_key"] for r in done}) == 6
    report("round2_16_full_disk", {"first_stderr_lines": len(_lines(first_err)), "creates": len(per_cell)})


# -- 17: a part of the team's store killed and left down --------------------------------------------
def _team_up(stack: dict[str, str]) -> None:
    """What was killed, started again (`make team-up`: it starts what is not running)."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "team_stack.py"), "up"], capture_output=True,
                          text=True, env=team_stack_env(stack["folder"]), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def _member(stack: dict[str, str], home: Path, retry_s: str) -> dict[str, str]:
    return _env(home, MLFLOW_TRACKING_URI=stack["MLFLOW_TRACKING_URI"], V2V_LAB_LEDGER_URL=stack["V2V_LAB_LEDGER_URL"],
                V2V_LAB_LEDGER_RETRY_S=retry_s)


def _two_sweeps_then_kill(stack: dict[str, str], tmp_path: Path, emu: Emulator, kill, name: str) -> dict:
    """Two sweeps of their own experiments, one with a retry window of 5 s and one of 600 s; the
    part is killed once both have tasks created, and only then do the tasks end (the emulator
    holds them: both sweeps are certainly still waiting when the part goes, however loaded the
    machine), so the killed part is the next one they reach. The first must end by itself with
    one line; the second, still waiting, gets Ctrl-C and must end on it."""
    procs = {}
    with HeldTasks(emu) as held:
        for which, window, prompts in (("short", "5", ["neon city", "noir"]), ("long", "600", ["sepia", "anime"])):
            experiment = f"{name}_{which}"
            spec = write_spec(tmp_path, f"{experiment}.yaml", experiment=experiment, prompts=prompts,
                              base_url=emu.base_url, concurrency=2)
            procs[which] = (spec, subprocess.Popen([CLI, "sweep", str(spec), "--no-progress"], env=_member(
                stack, tmp_path / which, window), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        wait_until(lambda: _all_created(stack, [f"{name}_short", f"{name}_long"])
                   or any(p.poll() is not None for _, p in procs.values()), 180, "the tasks were not all created")
        assert len(emu.tasks()) == 4, [p.communicate()[1][-800:] for _, p in procs.values() if p.poll() is not None]
        # Both must still be waiting on their tasks when the part goes: a sweep that had finished
        # before would prove nothing (and its exit 0 would read as Ctrl-C not working).
        ended = {which: p.poll() for which, (_, p) in procs.items() if p.poll() is not None}
        assert not ended, f"a sweep ended before the part was killed: {ended}"
        kill()
        held.release()
    short = _stop(procs["short"][1], 150)
    procs["long"][1].send_signal(signal.SIGINT)
    long = _stop(procs["long"][1], 60)
    return {"short": short, "long": long, "specs": {k: spec for k, (spec, _) in procs.items()}}


def _all_created(stack: dict[str, str], experiments: list[str]) -> bool:
    """Every cell's task id is in the ledger (a part killed while a create is unanswered leaves
    that cell unknown, by design: it is not what these tests are about)."""
    import psycopg

    try:
        with psycopg.connect(stack["V2V_LAB_LEDGER_URL"]) as db:
            (created,) = db.execute("SELECT count(*) FROM cells WHERE experiment = ANY(%s) AND state = 'created'",
                                    (experiments,)).fetchone()
    except psycopg.errors.UndefinedTable:  # no sweep has made the ledger's tables yet
        return False
    return created == 4


def _rerun_pays_nothing_twice(stack: dict[str, str], tmp_path: Path, emu: Emulator, specs: dict) -> None:
    for which, spec in specs.items():
        done = subprocess.run([CLI, "sweep", str(spec), "--no-progress"], env=_member(stack, tmp_path / which, "60"),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "2 cells: 2 succeeded" in done.stdout, done.stdout + done.stderr[-2000:]
    per_cell = tasks_per_cell(emu)
    assert len(per_cell) == 4 and all(len(tasks) == 1 for tasks in per_cell.values()), per_cell


def _killed_and_left_down(stack: dict[str, str], tmp_path: Path, kill, name: str, says: list[str]) -> None:
    """The part killed under two waiting sweeps (_two_sweeps_then_kill): the one with the short
    window ends by itself with one line holding each of `says`, the other ends on Ctrl-C with one
    line; with the part started again, both finish and nothing was paid twice."""
    _team_up(stack)  # whatever an earlier test left down
    with Emulator(render_scale=0.1) as emu:
        seen = _two_sweeps_then_kill(stack, tmp_path, emu, kill, name)
        code, _, err = seen["short"]
        assert code == 1, f"the sweep did not end by itself ({code}): {err[-2000:]}"
        assert len(_lines(err)) == 1 and all(words in err for words in says), err
        code, _, err = seen["long"]
        assert code == 130, f"Ctrl-C did not end the sweep waiting for the part ({code}): {err[-2000:]}"
        assert len(_lines(err)) == 1, err
        _team_up(stack)
        _rerun_pays_nothing_twice(stack, tmp_path, emu, seen["specs"])
        report(f"round2_17_{name}", {"creates": len(emu.tasks())})


@pytest.mark.team
@pytest.mark.slow
def test_17_the_tracking_server_killed_and_left_down_is_one_line_and_ctrl_c_works(spare_team, tmp_path):
    folder = Path(spare_team["folder"])

    def kill_mlflow() -> None:
        pid = int((folder / "mlflow.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        (folder / "mlflow.pid").unlink()

    _killed_and_left_down(spare_team, tmp_path, kill_mlflow, "server_away",
                          [f"the tracking server at {spare_team['MLFLOW_TRACKING_URI']}"])


@pytest.mark.team
@pytest.mark.slow
def test_17_postgresql_killed_and_left_down_is_the_ledgers_one_line_and_ctrl_c_works(spare_team, tmp_path):
    folder = Path(spare_team["folder"])
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def kill_postgres() -> None:  # an immediate shutdown: as a crash, no checkpoint
        subprocess.run([*as_postgres, "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(folder / "postgres"), "-m",
                        "immediate", "-w", "stop"], check=True, capture_output=True)

    _killed_and_left_down(spare_team, tmp_path, kill_postgres, "ledger_away",
                          ["the ledger at postgresql://", "did not answer for 5 s"])


# -- 18: Ctrl-C at the spend question; `runs` on a store that does not answer -------------------------
def _ctrl_c_at_the_question(command: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    """The command on a terminal of its own (the pty is its controlling terminal, as in a shell):
    at the [y/N] question the user presses Ctrl-C, which the terminal turns into SIGINT. Its exit
    code (None: still running 60 s later, then killed) and everything it showed."""
    return on_a_terminal(command, env, b"\x03", timeout=180, controlling=True, after_answer_s=60)


def _after_the_question(screen: str) -> list[str]:
    return _lines(screen.split("[y/N]", 1)[1].replace("^C", ""))


def test_18_ctrl_c_at_the_spend_question_exits_130_in_one_line_and_sends_nothing(tmp_path):
    with Emulator(render_scale=0.1) as emu:
        spec = write_spec(tmp_path, experiment="asked", provider="runway")
        env = _env(tmp_path, RUNWAYML_API_SECRET=KEY)
        code, screen = _ctrl_c_at_the_question([CLI, "sweep", str(spec), "--base-url", emu.base_url, "--no-progress"],
                                               env)
        assert code == 130, f"the sweep did not end on Ctrl-C at its question ({code}): {screen[-1500:]}"
        assert len(_after_the_question(screen)) == 1 and "Traceback" not in screen, screen
        code, screen = _ctrl_c_at_the_question([CLI, "generate", str(DEMO), "--prompt", "noir", "--provider", "runway",
                                                "--base-url", emu.base_url, "--out", str(tmp_path / "o.mp4")], env)
        assert code == 130, screen[-1500:]
        (said,) = _after_the_question(screen)
        assert "no task was created" in said and "already created" not in said, said
        assert emu.tasks() == [], "a generation was sent after Ctrl-C at the question"


def test_18_runs_on_a_store_that_does_not_answer_or_a_file_store_is_one_line(tmp_path):
    nothing = f"http://127.0.0.1:{free_port()}"
    file_store = (tmp_path / "mlruns").as_uri()
    for uri in (nothing, file_store):
        for args in (["runs"], ["runs", "some_experiment"]):
            env = _env(tmp_path, MLFLOW_TRACKING_URI=uri)
            try:
                done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`v2v-lab {' '.join(args)}` on {uri} was still running after 60 s")
            assert done.returncode == 2, (uri, done.returncode, done.stderr[-2000:])
            (line,) = _lines(done.stderr)
            # a long value is shortened in the middle, as in every InputError: its end names it
            assert line.startswith("error: MLFLOW_TRACKING_URI") and uri[-20:] in line, line
    allowed = subprocess.run([CLI, "runs"], env=_env(tmp_path, MLFLOW_TRACKING_URI=file_store,
                                                     MLFLOW_ALLOW_FILE_STORE="true"),
                             capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr[-1500:]  # a file store MLflow is told to open is read
    report("round2_18_runs", {"uris": [nothing, file_store]})
