"""Shared fixtures: the demo clip, synthetic clips with known answers, an emulator, a temporary MLflow store."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from v2v_lab.emulator import Emulator
from v2v_lab.media import write_mp4

from . import _helpers
from ._helpers import free_port  # noqa: F401 - imported from here by many test files

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "media" / "bigbuckbunny.mp4"
# Reports and screenshots for the closing notes: outside the repository unless asked for.
TEST_OUTPUT = Path(os.environ.get("V2V_LAB_TEST_OUTPUT") or Path(tempfile.gettempdir()) / "v2v-lab-test-output")
# What the suite itself may leave in the checkout: the environment it runs in and caches.
_ALLOWED_LEFTOVERS = (".venv/", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/", "v2v_lab.egg-info/", "mutants/")


def _repo_leftovers() -> set[str]:
    """Untracked and ignored paths in the checkout (empty outside a git checkout)."""
    done = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        return set()
    paths = {line[3:] for line in done.stdout.splitlines() if line.startswith(("??", "!!"))}
    return {p for p in paths if not p.startswith(_ALLOWED_LEFTOVERS) and "__pycache__/" not in p}


def pytest_sessionstart(session):
    session.config._v2v_leftovers_before = _repo_leftovers()


def pytest_sessionfinish(session, exitstatus):
    # Tests leave nothing behind in the repository: a store, an mlruns/ folder or a state folder
    # written to the working directory fails the run.
    new = sorted(_repo_leftovers() - getattr(session.config, "_v2v_leftovers_before", set()))
    if new:
        print(f"\nFAILED: the tests left {len(new)} file(s) in the repository, e.g. {new[:5]}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def demo_clip() -> str:
    assert DEMO.is_file(), "the demo clip ships in experiments/media"
    return str(DEMO)


def moving_frames(n: int, w: int = 160, h: int = 96, seed: int = 0) -> list[np.ndarray]:
    """A textured scene panning right by 2 px a frame: real motion, real structure."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 255, (h, w + 2 * n + 8, 3), dtype=np.uint8), (0, 0), 2)
    cv2.circle(base, (w // 2, h // 2), h // 4, (250, 40, 40), -1)
    return [np.ascontiguousarray(base[:, 2 * k : 2 * k + w]) for k in range(n)]


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")

    def make(name: str, frames: list[np.ndarray], fps: float = 24.0) -> str:
        path = folder / name
        write_mp4(path, frames, fps, crf=12)
        return str(path)

    return make


@pytest.fixture(scope="session")
def small_clip(clip_factory) -> str:
    return clip_factory("small.mp4", moving_frames(48), 24.0)


@pytest.fixture(scope="module")
def emulator():
    with Emulator(render_scale=0.25, queue_s=0.02) as emu:
        yield emu


@pytest.fixture()
def mlflow_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("COMETAPI_API_KEY", raising=False)
    monkeypatch.delenv("V2V_LAB_BASE_URL", raising=False)
    return uri


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch):
    # A developer's real key must never reach a test request.
    for var in ("RUNWAYML_API_SECRET", "COMETAPI_API_KEY", "V2V_LAB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    yield


def on_a_terminal(command: list[str] | str, env: dict[str, str], answer: bytes, cwd: Path | None = None,
                  timeout: float = 120, *, controlling: bool = False,
                  after_answer_s: float | None = None) -> tuple[int | None, str]:
    """Run a command (argv, or a shell line as typed) on a pseudo-terminal, answer its [y/N] question
    once, and return its exit code and everything it showed. With `controlling`, the terminal is
    the command's controlling terminal, as in a shell (a Ctrl-C answer is then SIGINT). The code is
    None when it was still running `timeout` s after it started (or `after_answer_s` after the
    answer) and was killed."""
    import fcntl
    import pty
    import select
    import termios

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    master, slave = pty.openpty()
    proc = subprocess.Popen(command, shell=isinstance(command, str), cwd=cwd, env=env, stdin=slave, stdout=slave,
                            stderr=slave, preexec_fn=own_terminal if controlling else None)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
        if b"[y/N]" in seen and answer:
            os.write(master, answer)
            answer = b""
            if after_answer_s is not None:
                deadline = time.monotonic() + after_answer_s
    try:
        code: int | None = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    try:
        while select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 65536)
    except OSError:
        pass
    os.close(master)
    return code, seen.decode(errors="replace")


os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def copy_study(source: Path, folder: Path) -> Path:
    """A private copy of a study's folder (SQLite store and artifacts): the database's artifact
    paths are rewritten to point into the copy, so a test may write to it or damage it."""
    import shutil
    import sqlite3

    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.v2v-locks"))
    with sqlite3.connect(folder / "mlflow.db") as db:
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (str(source), str(folder)))
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
                   (str(source), str(folder)))
    return folder


# One study paid for once per test run (the console script, on the built-in emulator), for the
# tests that score or rescore what a study kept (test_rescore, test_plugins).
STUDY_SPEC = f"""
experiment: study
videos: [{DEMO}]
prompts: ["neon city at night", "a red watercolor painting"]
seeds: [1, 2, 3]
models: [gen4_aleph]
emulator: {{render_scale: 0.25}}
scoring: {{metrics: [ssim_source, flicker]}}
"""


@pytest.fixture(scope="session")
def paid_study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("paid-study")
    (folder / "spec.yaml").write_text(STUDY_SPEC)
    done = _helpers.run_cli(["sweep", "spec.yaml", "--yes"], folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture()
def study(paid_study, tmp_path) -> Path:
    """A private copy of the paid study: the database's artifact paths point into the copy."""
    return copy_study(paid_study, tmp_path / "study")


RATING_SPEC = f"""
experiment: rating
videos: [{DEMO}]
models: [gen4_aleph, gen3a_turbo, aleph2]
prompts: ["neon city at night", "a red watercolor painting"]
seeds: [1, 2]
emulator: {{render_scale: 0.25}}
scoring: {{frames: 6, size: 96}}
"""


@pytest.fixture(scope="session")
def rating_study(tmp_path_factory) -> Path:
    """A study to rate, made once by the console script: 3 models x 2 prompts x 2 seeds, 12 outputs,
    12 pairs (three model pairs per prompt and seed)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("rating-study")
    (folder / "spec.yaml").write_text(RATING_SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_", "RUNWAYML_", "COMETAPI_"))}
    env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "V2V_LAB_HOME": str(folder / "state")})
    if os.environ.get("PYTHONPATH") == str(ROOT):  # a sabotage copy: its package, not the installed one
        env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([str(Path(sys.executable).with_name("v2v-lab")), "sweep", "spec.yaml", "--yes"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` on a SQLite file, on loopback (no auth: it ignores credentials in a
    URL): its URI. One for the whole run (each test uses experiments of its own names), stopped
    with its workers at the end."""
    with _helpers.mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


@pytest.fixture(scope="session")
def team():
    """The team stack .ci/run started (V2V_LAB_TEAM_DIR set), else one of our own in a fresh folder
    on free ports, stopped at the end. Gives the variables a member exports (and the folder and
    the object store's port)."""
    given = os.environ.get("V2V_LAB_TEAM_DIR")
    stack = _helpers.start_team_stack(Path(given or tempfile.mkdtemp(prefix="v2v-team-")), own=not given)
    yield stack
    if not given:
        _helpers.stop_team_stack(stack["folder"])


@pytest.fixture(scope="session")
def spare_team():
    """A second team stack, of the tests that kill or restart its parts (never the shared one's):
    on free ports in a fresh folder, one per test process. Each test using it first starts what an
    earlier one left down (`make team-up` starts only what is not running)."""
    import shutil

    stack = _helpers.start_team_stack(Path(tempfile.mkdtemp(prefix="v2v-team-spare-")), own=True)
    yield stack
    _helpers.stop_team_stack(stack["folder"])
    shutil.rmtree(stack["folder"], ignore_errors=True)
