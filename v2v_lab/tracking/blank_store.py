"""A new SQLite store made by copying a blank one rather than by MLflow's schema migration.

MLflow makes a new SQLite store by creating its first schema and then running every migration since
(about fifty with MLflow 3): 2.5-3.5 s on a laptop core, paid by the first sweep in every new project
folder, by every notebook on a new store and by every test that starts clean. The result of those
migrations is the same for every store of one MLflow version, so the first store made under that
version is kept as a template (in the user's cache folder, named by the version) and every later
new store is a copy of it: a file copy of about 0.5 MB.

What differs between two fresh stores is the Default experiment's row: its creation time and its
artifact location, which MLflow resolves against the working directory of the process that made the
store. Both are set on the copy as MLflow would have set them, so a copied store cannot be told from
one MLflow made. Anything unexpected (no cache folder that can be written, a template that does
not open) falls back to MLflow's own creation: the copy is only ever a shortcut.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import mlflow

from .._env import env_text

__all__ = ["copy_blank_store"]

_DEFAULT_EXPERIMENT_ID = 0


def _cache_dir() -> Path:
    base = env_text("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "v2v-lab"


def _template_path() -> Path:
    return _cache_dir() / f"blank-mlflow-{mlflow.__version__}.db"


def _make_template(template: Path) -> None:
    """Let MLflow create and migrate a store in a temporary file, then move it into place at once
    (two processes doing this together each move a whole store; the last one stays)."""
    from mlflow.tracking import MlflowClient

    template.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=".blank-", suffix=".db", dir=template.parent)
    os.close(fd)
    os.unlink(scratch)  # MLflow must find no file, as for any new store
    try:
        MlflowClient(tracking_uri=f"sqlite:///{scratch}").search_experiments(max_results=1)
        os.replace(scratch, template)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _default_artifact_location() -> str:
    """Where MLflow puts the Default experiment's artifacts for a store made by this process: its
    default artifact root (./mlruns, resolved against the working directory) and the id."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    root = resolve_uri_if_local(DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    return str(append_to_uri_path(root, str(_DEFAULT_EXPERIMENT_ID)))


def _as_if_made_here(store: Path) -> None:
    now_ms = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                   "WHERE experiment_id = ?", (_default_artifact_location(), now_ms, now_ms, _DEFAULT_EXPERIMENT_ID))


def copy_blank_store(store: Path) -> bool:
    """Make the SQLite store `store` (which must not exist yet) as a copy of this MLflow version's
    blank store, made once. False when that could not be done: MLflow then creates it as usual.
    The caller holds the store-creation lock."""
    part = store.with_name(store.name + ".part")
    try:
        template = _template_path()
        if not template.is_file():
            _make_template(template)
        shutil.copyfile(template, part)
        _as_if_made_here(part)
        os.replace(part, store)
        return True
    except Exception:  # noqa: BLE001 - a shortcut only: any failure leaves the store to MLflow
        with contextlib.suppress(OSError):
            os.unlink(part)
        return False
