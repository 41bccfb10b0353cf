"""A new SQLite store is a copy of a blank one made once per MLflow version (tracking/blank_store.py),
and cannot be told from a store MLflow made itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import pytest

from v2v_lab.tracking import blank_store
from v2v_lab.tracking.store import client


def _schema(db: Path) -> tuple[list[tuple], str, list[tuple]]:
    """Tables and indexes with their columns and constraints (as a set: MLflow's own migrations write
    a table's constraints in an order that changes from run to run), the migration, the experiments."""
    with sqlite3.connect(db) as con:
        tables = sorted((name, sorted(part.strip() for part in (sql or "").split(", \n")))
                        for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index')"))
        version = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        default = con.execute("SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments").fetchall()
    return tables, version, default


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_a_new_store_is_a_copy_that_matches_what_mlflow_makes(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(cache)  # the template is made from another folder than the store's
    assert blank_store.copy_blank_store(cache / "elsewhere.db")
    monkeypatch.chdir(tmp_path)
    made_by_mlflow = tmp_path / "mlflow_made.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{made_by_mlflow}").search_experiments()

    copied = tmp_path / "copied.db"
    assert blank_store.copy_blank_store(copied)
    assert (cache / "v2v-lab" / f"blank-mlflow-{mlflow.__version__}.db").is_file()
    assert _schema(copied) == _schema(made_by_mlflow)  # same tables, migration and Default experiment row
    assert not copied.with_name("copied.db.part").exists()

    # and it is a store MLflow uses as its own
    store = client(f"sqlite:///{copied}")
    run = store.create_run(store.create_experiment("e"))
    store.log_metric(run.info.run_id, "m", 1.5)
    assert store.get_run(run.info.run_id).data.metrics == {"m": 1.5}


def test_a_second_store_reuses_the_template_and_a_cache_that_cannot_be_written_falls_back(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(tmp_path)
    assert blank_store.copy_blank_store(tmp_path / "one.db")
    template = cache / "v2v-lab" / f"blank-mlflow-{mlflow.__version__}.db"
    made = template.stat().st_mtime_ns
    assert blank_store.copy_blank_store(tmp_path / "two.db")
    assert template.stat().st_mtime_ns == made  # copied, not migrated again

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert not blank_store.copy_blank_store(tmp_path / "three.db")
    assert not (tmp_path / "three.db").exists() and not (tmp_path / "three.db.part").exists()
    store = client(f"sqlite:///{tmp_path / 'three.db'}")  # MLflow makes it itself
    assert [e.name for e in store.search_experiments()] == ["Default"]
