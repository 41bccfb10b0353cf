"""The package's shape (issue 30, point 5): `pip install v2v-lab` is the core; PostgreSQL is the
[team] extra and Dask the [dask] one. Without an extra, `import v2v_lab`, every public name and
every `--help` still work, and the feature that needs it says so in one line naming the extra,
through the doors users meet it at (the console script, the Python API). The extras are made
missing as on a machine without them: a module of that name, first on the path, that is not there
(it raises ModuleNotFoundError on import, as Python does for a package not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ._helpers import write_spec
from .conftest import ROOT

CLI = str(Path(sys.executable).with_name("v2v-lab"))
TEAM_LINE = "error: the team ledger (V2V_LAB_LEDGER_URL) needs the [team] extra: pip install 'v2v-lab[team]'"
STORE_LINE = ("error: a PostgreSQL tracking store (MLFLOW_TRACKING_URI) needs the [team] extra: "
              "pip install 'v2v-lab[team]'")
DASK_LINE = "error: rescoring (on Dask) needs the [dask] extra: pip install 'v2v-lab[dask]'"
EXTRA_MODULES = ("psycopg", "psycopg2", "dask", "distributed")


@pytest.fixture
def without_extras(tmp_path) -> dict[str, str]:
    """An environment whose Python finds none of the extras' modules, with this checkout's v2v_lab."""
    shadow = tmp_path / "not-installed"
    shadow.mkdir()
    for name in EXTRA_MODULES:
        (shadow / f"{name}.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(ROOT)])
    env["V2V_LAB_HOME"] = str(tmp_path / "state")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_import_every_public_name_and_every_help_work_without_the_extras(without_extras, tmp_path):
    code = ("import sys, v2v_lab\n"
            "for name in v2v_lab.__all__:\n"
            "    assert getattr(v2v_lab, name) is not None, name\n"
            f"loaded = [m for m in {EXTRA_MODULES!r} if sys.modules.get(m) is not None]\n"
            "assert not loaded, loaded\n"
            "from v2v_lab.cli import COMMANDS\n"
            "print(' '.join(COMMANDS))\n")
    done = _run([sys.executable, "-c", code], without_extras, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    commands = done.stdout.split()
    assert {"sweep", "rescore", "runs"} <= set(commands)
    for argv in ([CLI, "--help"], *([CLI, command, "--help"] for command in commands)):
        shown = _run(argv, without_extras, tmp_path)
        assert shown.returncode == 0 and "usage:" in shown.stdout, (argv, shown.stderr[-1500:])


@pytest.mark.slow
def test_a_sweep_on_a_ledger_without_the_team_extra_is_one_line(without_extras, tmp_path, small_clip):
    spec = write_spec(tmp_path, {"experiment": "no_team", "provider": "local", "videos": [small_clip],
                                 "models": ["gen4_aleph"], "prompts": ["noir"], "seeds": [1],
                                 "ratios": ["1280:720"]})
    env = {**without_extras, "V2V_LAB_LEDGER_URL": "postgresql://v2v@127.0.0.1:9/v2v_ledger"}
    for flags in (["--dry-run"], ["--yes", "--no-progress"]):
        done = _run([CLI, "sweep", str(spec), *flags], env, tmp_path)
        assert (done.returncode, done.stderr.strip()) == (1, TEAM_LINE), (flags, done.stdout[-800:], done.stderr[-2000:])
    assert not (tmp_path / "mlflow.db").exists()  # said before the store was touched


def test_a_postgresql_tracking_store_without_the_team_extra_is_one_line(without_extras, tmp_path):
    env = {**without_extras, "MLFLOW_TRACKING_URI": "postgresql://v2v@127.0.0.1:9/mlflow"}
    done = _run([CLI, "runs"], env, tmp_path)
    assert (done.returncode, done.stderr.strip()) == (1, STORE_LINE), done.stderr[-2000:]


def test_rescore_without_the_dask_extra_is_one_line(without_extras, tmp_path):
    done = _run([CLI, "rescore", "quickstart", "--workers", "2"], without_extras, tmp_path)
    assert (done.returncode, done.stderr.strip()) == (1, DASK_LINE), done.stderr[-2000:]
    assert not (tmp_path / "mlflow.db").exists()
    # The Python door: an ImportError (and a V2VError) carrying the same line.
    code = ("import v2v_lab\n"
            "try:\n    v2v_lab.rescore('quickstart')\n"
            "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    done = _run([sys.executable, "-c", code], without_extras, tmp_path)
    assert done.stdout.strip() == "MissingExtraError " + DASK_LINE.removeprefix("error: "), done.stderr[-2000:]


def test_require_names_the_extra_and_keeps_the_cause(monkeypatch):
    from v2v_lab._extras import MissingExtraError, require
    from v2v_lab.errors import V2VError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # what Python does for a module it must not import
    with pytest.raises(MissingExtraError) as caught:
        require("psycopg", "team", "the team ledger")
    assert str(caught.value) == "the team ledger needs the [team] extra: pip install 'v2v-lab[team]'"
    assert isinstance(caught.value, V2VError) and isinstance(caught.value.__cause__, ImportError)
    assert require("json", "team", "anything").dumps([]) == "[]"
    with pytest.raises(ValueError, match="unknown extra 'teams'"):
        require("json", "teams", "anything")


def test_the_wheel_ships_py_typed_and_keeps_postgresql_and_dask_in_their_extras(tmp_path):
    """The wheel as pip builds it from this checkout (copied, so no build/ is left here)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "v2v_lab", source / "v2v_lab", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("v2v_lab-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"v2v_lab/py.typed", "v2v_lab/api/models.yaml", "v2v_lab/dashboard/rate_view.js"} <= names
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    core = {r.split(";")[0].split(">")[0].split("[")[0].strip().lower() for r in requires if "extra ==" not in r}
    assert {"httpx", "mlflow", "decord", "scikit-image", "ipywidgets"} <= core
    assert not core & {"psycopg", "psycopg2", "dask", "distributed"}, core

    def extra(name: str) -> set[str]:
        return {r.split(";")[0].strip() for r in requires if f'extra == "{name}"' in r}

    assert any(r.startswith("psycopg") for r in extra("team"))
    assert any(r.startswith("dask[distributed]") for r in extra("dask"))
    assert "v2v-lab[dask,team]" in extra("dev") or "v2v-lab[team,dask]" in extra("dev")
