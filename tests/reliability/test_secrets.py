"""A canary key through sweeps, a single generation, an auth failure and Python exceptions; then
a search of everything left behind: zero occurrences."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from v2v_lab import AsyncRunwayClient, GenerationRequest, InputError, RunwayClient
from v2v_lab.emulator import Emulator
from v2v_lab.errors import AuthenticationError

from ..conftest import DEMO
from .conftest import report, write_spec

CANARY = "key_" + "5ec2e7" * 20 + "ca11"
OTHER = "key_" + "0ddba11" * 17 + "ff"  # a wrong key: must not show either
# With DEBUG logging on for every library (httpx, httpcore, mlflow, alembic, urllib3...). MLflow's
# logger does not propagate and sets its own level when imported: it gets DEBUG and the file too.
RUN_WITH_DEBUG_LOGS = (
    "import logging, sys, mlflow; "
    "logging.basicConfig(level=logging.DEBUG, filename=sys.argv[1], format='%(name)s %(levelname)s %(message)s'); "
    "ml = logging.getLogger('mlflow'); ml.setLevel(logging.DEBUG); ml.propagate = True; "
    "from v2v_lab.cli import main; code = main(sys.argv[2:]); "
    # After the command: proof that an MLflow DEBUG record of this run would have reached the file.
    "logging.getLogger('mlflow.tracking.v2v_check').debug('mlflow debug reaches the log'); sys.exit(code)")


def _scan(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {n[:12]}..." for n in needles if n.encode() in data]
    return hits


def test_a_canary_key_goes_nowhere(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "V2V_LAB_HOME": str(work / "state"),
           "RUNWAYML_API_SECRET": CANARY}
    log = work / "debug.log"
    texts: list[str] = []
    with Emulator(key=CANARY, render_scale=0.1, queue_s=0.02) as emu:
        # The user points their key at the emulator themselves (a spec file may not: issue 13).
        env["V2V_LAB_BASE_URL"] = emu.base_url
        spec = write_spec(work, provider="runway", prompts=["neon city", "a gore scene"], seeds=[1, 2])
        base = [sys.executable, "-c", RUN_WITH_DEBUG_LOGS, str(log)]
        for argv, want in ((["sweep", str(spec), "--yes", "--no-progress"], 0),
                           (["runs", "rel"], 0),
                           (["generate", str(DEMO), "--prompt", "noir", "--provider", "runway", "--base-url",
                             emu.base_url, "--out", str(work / "single.mp4"), "--yes"], 0)):
            done = subprocess.run(base + argv, env=env, cwd=work, capture_output=True, text=True, timeout=300)
            assert done.returncode == want, done.stderr
            texts += [done.stdout, done.stderr]
        # The wrong key: an authentication error whose text names neither key.
        bad = subprocess.run(base + ["generate", str(DEMO), "--prompt", "x", "--provider", "runway", "--base-url",
                                     emu.base_url, "--out", str(work / "x.mp4"), "--yes"],
                             env={**env, "RUNWAYML_API_SECRET": OTHER}, cwd=work, capture_output=True, text=True,
                             timeout=120)
        assert bad.returncode == 1 and ("401" in bad.stderr or "key" in bad.stderr.lower()), bad.stderr
        texts += [bad.stdout, bad.stderr]
        # Exceptions in Python, tracebacks included.
        for key in (CANARY, OTHER):
            # Both clients' reprs and attributes, as a debugger or a printed vars() shows them: the
            # key is a Secret in there, whose repr never shows it.
            async_client = AsyncRunwayClient("runway", base_url=emu.base_url, api_key=key)
            texts += [repr(async_client), str(vars(async_client))]
            asyncio.run(async_client.aclose())
            with RunwayClient("runway", base_url=emu.base_url, api_key=key) as client:
                texts += [repr(client), str(vars(client))]
                with pytest.raises(InputError) as err:
                    client.create(GenerationRequest(str(DEMO), "x", seed=-5))
                texts.append("".join(traceback.format_exception(err.value)))
                if key == OTHER:
                    with pytest.raises(AuthenticationError) as err:
                        client.organization()
                    texts.append("".join(traceback.format_exception(err.value)))
        created = emu.stats["tasks_total"]
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "x.bin").write_bytes(b"\0prefix" + CANARY.encode() + b"suffix")
    assert _scan(planted, [CANARY]) != []  # the scan finds a key where there is one
    hits = _scan(work, [CANARY, OTHER]) + [f"output/exception text {i}" for i, t in enumerate(texts)
                                          if CANARY in t or OTHER in t]
    assert log.stat().st_size > 10_000  # the debug log really recorded the traffic
    records = [line.split(" ", 2)[:2] for line in log.read_text(errors="replace").splitlines() if " " in line]
    loggers = {name for name, _level in records}
    # Records of the libraries that carry the key (httpx and its transport at DEBUG) and of MLflow were
    # really captured in the file that was searched: covered, not just switched on.
    assert {"httpx", "httpcore.http11", "httpcore.connection"} <= loggers, sorted(loggers)
    assert ["httpcore.http11", "DEBUG"] in records
    assert ["mlflow.tracking.v2v_check", "DEBUG"] in records  # MLflow's own DEBUG records land here too
    assert created >= 5  # four sweep cells and one single generation really ran
    assert hits == []
    files = sum(1 for p in work.rglob("*") if p.is_file())
    report("secrets", {"tasks_created": created, "files_scanned": files, "texts_scanned": len(texts),
                       "debug_log_bytes": log.stat().st_size, "occurrences": 0})
