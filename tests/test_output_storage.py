"""An output is kept once on disk: beside a local store, the run's artifact and the state folder's
kept output are one file (a hard link), so a study does not take twice its size; a rerun with
--force writes new files and leaves the earlier run's artifacts as they were."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
import yaml

from v2v_lab.cli import main

from .conftest import DEMO


def _artifact_files(experiment: str) -> dict[str, Path]:
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.`v2v.kind` = 'cell'")
    return {r["run_id"]: Path(r["artifact_uri"].removeprefix("file://")) for _, r in runs.iterrows()}


def test_an_output_is_one_file_on_disk_and_a_forced_rerun_leaves_earlier_artifacts_alone(mlflow_store, tmp_path,
                                                                                       capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"experiment": "once", "videos": [str(DEMO)], "prompts": ["neon", "ink"],
                                    "emulator": {"render_scale": 0.1}, "scoring": {"frames": 4, "size": 64}}))
    assert main(["sweep", str(spec), "--no-progress"]) == 0
    kept = sorted((tmp_path / "state" / "outputs").rglob("output.mp4"))
    first = _artifact_files("once")
    assert len(kept) == 2 and len(first) == 2
    logged = [folder / "output.mp4" for folder in first.values()]
    assert {p.stat().st_ino for p in kept} == {p.stat().st_ino for p in logged}  # the same two files
    assert all(p.stat().st_nlink == 2 for p in kept)
    posters = [folder / "poster.png" for folder in first.values()]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logged + posters}

    assert main(["sweep", str(spec), "--no-progress", "--force"]) == 0
    capsys.readouterr()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logged + posters} == before
    second = {rid: folder for rid, folder in _artifact_files("once").items() if rid not in first}
    assert len(second) == 2
    assert {(f / "output.mp4").stat().st_ino for f in second.values()} == {p.stat().st_ino for p in kept}
