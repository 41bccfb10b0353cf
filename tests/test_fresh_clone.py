"""A fresh clone, the README's main job run in it as a user types it: `git status` stays clean
(the store, its lock folder beside it, the state folder and the outputs are all ignored)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

CLI = str(Path(sys.executable).with_name("v2v-lab"))


def test_the_main_job_leaves_a_fresh_clone_clean_for_git(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
    done = subprocess.run([CLI, "sweep", "experiments/quickstart.yaml", "--no-progress"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (clone / "mlflow.db").is_file() and (clone / "mlflow.db.v2v-locks").is_dir() and (clone / ".v2v-lab").is_dir()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
