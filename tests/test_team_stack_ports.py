"""`make team-up` never adopts a service it did not start. Two stacks on one machine (two checkouts,
two CI jobs) once shared PostgreSQL's default port: the second stack took the first one's server
for its own, and lost it when the first stopped. A port another program answers on is either
replaced (a fresh folder, default port) or refused in one line (a port the user or stack.json set)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

STACK = [sys.executable, str(ROOT / "tools" / "team_stack.py")]


@pytest.fixture
def stranger() -> Iterator[int]:
    """A program listening on a loopback port: not PostgreSQL, not this stack's."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _up(folder: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("V2V_LAB_TEAM")}
    return subprocess.run([*STACK, "up"], env={**clean, "V2V_LAB_TEAM_DIR": str(folder), **env},
                          capture_output=True, text=True, timeout=60)


def test_a_saved_stack_whose_port_another_program_holds_is_refused_in_one_line(stranger, tmp_path):
    (tmp_path / "stack.json").write_text(json.dumps({"pg": stranger, "s3": 1, "mlflow": 2}))
    done = _up(tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"team-up: port {stranger} (pg) is taken by another program, not this stack's; free it, or use a fresh "
        "V2V_LAB_TEAM_DIR with V2V_LAB_TEAM_PG_PORT set to a free port")
    assert not (tmp_path / "postgres").exists()  # nothing was started or created


def test_a_port_the_user_set_that_another_program_holds_is_refused_in_one_line(stranger, tmp_path):
    done = _up(tmp_path, V2V_LAB_TEAM_PG_PORT=str(stranger))
    assert done.returncode == 1
    assert done.stderr.strip() == f"team-up: V2V_LAB_TEAM_PG_PORT={stranger} is taken by another program; choose a free port"
    assert not (tmp_path / "stack.json").exists() and not (tmp_path / "postgres").exists()


def test_a_fresh_folder_takes_free_ports_where_the_defaults_are_held(stranger, tmp_path, monkeypatch):
    """The ports a fresh folder takes (asked of the stack's own module, nothing started): with every
    default held by a stranger, none of them is chosen."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("team_stack", ROOT / "tools" / "team_stack.py")
    team_stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(team_stack)
    for variable in team_stack.PORT_VARIABLES.values():  # CI sets them for its own stack
        monkeypatch.delenv(variable, raising=False)
    team_stack.DEFAULT_PORTS = {"pg": stranger, "s3": stranger, "mlflow": stranger}
    chosen = team_stack.ports(tmp_path)
    assert set(chosen) == {"pg", "s3", "mlflow"} and stranger not in chosen.values()
    assert not team_stack._answers(chosen["pg"])
