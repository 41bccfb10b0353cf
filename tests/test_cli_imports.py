"""Commands import only what they use: help, and `score`, never load MLflow, pydantic or the
array stack they do not need (issue 33: `v2v-lab --help` took 1.4 s importing all of them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# What --help must not load: the tracking store, the spec and catalog models, the array and media
# stack, the HTTP client, tables.
HEAVY = ("mlflow", "pydantic", "yaml", "numpy", "cv2", "decord", "av", "pandas", "httpx", "sqlalchemy", "scipy",
         "skimage")
# What `score` must not load: everything above except the array and media stack it scores with.
NOT_FOR_SCORE = ("mlflow", "pydantic", "yaml", "pandas", "httpx", "sqlalchemy")

RUN_MAIN = """
import json, sys
from v2v_lab.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
    done = subprocess.run([sys.executable, "-c", RUN_MAIN, *argv], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["loaded"])


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"]])
def test_help_imports_none_of_the_heavy_libraries(argv):
    code, loaded = _loaded(*argv)
    assert code == 0
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_score_imports_neither_mlflow_nor_pydantic(small_clip):
    code, loaded = _loaded("score", small_clip, small_clip, "--frames", "2", "--size", "64")
    assert code == 0
    assert {"numpy", "cv2"} <= loaded  # it did score
    assert not loaded & set(NOT_FOR_SCORE), sorted(loaded & set(NOT_FOR_SCORE))
