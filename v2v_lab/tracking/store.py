"""Which MLflow store: MLFLOW_TRACKING_URI, else MLflow's own local default (./mlflow.db); whether it
can be written; where its lock files live; and opening it safely when two processes create it at once."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from .._env import env_text
from .._extras import require
from .._files import can_write_in
from .._net import mask_credentials
from ..errors import InputError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "artifact_location", "check_store", "client", "local_store_path", "lock_dir", "project_dir", "store_name",
    "tracking_uri", "ui_command",
]

_OPENED: set[str] = set()
# The store URLs SQLAlchemy (2.1 and later) opens with psycopg 3.
_POSTGRESQL_PSYCOPG = ("postgresql", "postgres", "postgresql+psycopg")
_QUIET_RUN_LINKS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # MLflow's switch, see _quiet_run_links


def is_server(uri: str) -> bool:
    """The store is a tracking server (`mlflow server`), reached over http(s)."""
    return urlsplit(uri).scheme in ("http", "https")


def tracking_uri(uri: str | None = None) -> str:
    given = uri or env_text("MLFLOW_TRACKING_URI")
    if given:
        return given
    # MLflow itself (seconds of imports) only where it has the answer: which store and its locks are
    # known without it, so a sweep can hold its experiment while MLflow loads beside its first tasks.
    import mlflow

    return mlflow.get_tracking_uri()


def _uri_field(uri: str | None) -> str:
    return "tracking_uri" if uri else "MLFLOW_TRACKING_URI"


def local_store_path(uri: str) -> Path | None:
    """The file (SQLite) or folder (file store) behind a local store; None for a server."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else ""
        return Path(path) if path and path != ":memory:" else None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return Path(uri)
    return None


def store_name(uri: str) -> str:
    """The store as a person should read it in a message: a local store by its absolute path (a
    relative ./mlflow.db says nothing about which folder was looked in), a server without its password."""
    path = local_store_path(uri)
    if path is not None and not path.is_absolute() and urlsplit(uri).scheme == "sqlite":
        return f"sqlite:///{path.resolve()}"
    return mask_credentials(uri)


# What marks the folder a user runs v2v-lab in: the default store and the state folder sit there.
PROJECT_MARKERS = ("mlflow.db", ".v2v-lab")


def project_dir(start: Path | None = None) -> Path:
    """The folder the user's sweeps ran in, for a page or notebook that runs elsewhere (Voila runs a
    page in the notebook's own folder, notebooks/pages): the nearest folder, from `start` (the
    working directory) up, holding the default store or the state folder; else the folder the
    server was started from ($PWD, which a kernel inherits); else `start`. Nothing is created."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    launched = env_text("PWD")
    if launched and Path(launched).is_dir():
        return Path(launched)
    return here


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go on a local SQLite store: beside the database file,
    not in the working directory's ./mlruns (MLflow's default), so a store is one folder that can be
    moved or deleted whole. None (MLflow decides) for servers and file stores."""
    path = local_store_path(uri)
    if path is None or urlsplit(uri).scheme != "sqlite":
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)[:80] or "experiment"
    return str(path.resolve().parent / "mlruns" / safe)


def check_store(uri: str | None = None, *, write: bool = True) -> str:
    """Refuse, before anything is paid for (or read), a store that cannot be written (write=True)
    or does not answer: a SQLite file on a read-only disk took MLflow 105 s to give up, a server
    where nothing listens kept it retrying for minutes, a file store is a 39-line traceback on
    MLflow 3. Returns the resolved URI."""
    resolved = tracking_uri(uri)
    field = _uri_field(uri)
    path = local_store_path(resolved)
    if path is not None:
        is_sqlite = urlsplit(resolved).scheme == "sqlite"
        if write:
            _check_writable(resolved, field, path if not is_sqlite else path.parent, path)
        if not is_sqlite and not _file_stores_allowed():
            raise InputError(field, resolved, "a database store such as sqlite:///mlflow.db, or a tracking "
                             "server: this MLflow refuses file stores (MLFLOW_ALLOW_FILE_STORE=true opens one)")
        return resolved
    parts = urlsplit(resolved)
    if parts.scheme in ("http", "https"):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "localhost", port), timeout=5):
                pass
        except OSError as exc:
            raise InputError(field, resolved, f"a tracking server that answers (nothing answered at "
                             f"{parts.hostname}:{port}: {exc.strerror or type(exc).__name__})") from None
    return resolved


def _check_writable(resolved: str, field: str, folder: Path, path: Path) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # a folder to be made: its nearest existing parent must be writable
    if not probe.is_dir() or not can_write_in(probe):
        raise InputError(field, resolved, f"a store in a writable folder ({probe} cannot be written)")
    if path.is_file() and not os.access(path, os.W_OK):
        raise InputError(field, resolved, f"a store file that can be written ({path} is read-only)")


def _file_stores_allowed() -> bool:
    """MLflow 3 refuses a file store (./mlruns) unless MLFLOW_ALLOW_FILE_STORE is set; earlier
    versions take one."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:
        return True
    return bool(MLFLOW_ALLOW_FILE_STORE.get())


def lock_dir(uri: str) -> Path | None:
    """Where lock files for a local store live: beside it, so every process writing to that store
    (whatever its state folder) meets the same locks. None for a server store (its lease is in
    the store itself: lease.py). Beside the store's real path (symlinks resolved, the SQLite
    file's or the file store's own folder): one store reached by two names is one store."""
    path = local_store_path(uri)
    if path is None:
        return None
    path = path.resolve()
    return path.parent / f"{path.name}.v2v-locks"


@contextlib.contextmanager
def _store_init_lock(uri: str) -> Iterator[None]:
    folder = lock_dir(uri)
    if folder is None or fcntl is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "store-init.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def client(uri: str | None = None) -> MlflowClient:
    """An MlflowClient whose store exists, every call of which rides through a part of the store
    that is away for a while and then says in one line which part it is (outage.py). Creating (or
    migrating) a SQLite store is serialised across processes: two sweeps starting at once on a new
    store raced in MLflow's schema migration and left it unusable for good ("table
    _alembic_tmp_experiments already exists")."""
    from mlflow.tracking import MlflowClient

    from .blank_store import copy_blank_store
    from .outage import bound_mlflow_http, patient

    resolved = tracking_uri(uri)
    _quiet_run_links()
    scheme = urlsplit(resolved).scheme
    if scheme in _POSTGRESQL_PSYCOPG:  # MLflow opens it with psycopg, installed by the [team] extra
        require("psycopg", "team", "a PostgreSQL tracking store (MLFLOW_TRACKING_URI)")
    if scheme in ("http", "https"):
        bound_mlflow_http()
    if resolved in _OPENED or scheme != "sqlite":
        return cast(MlflowClient, _Patient(patient(resolved, MlflowClient, tracking_uri=resolved), resolved))
    with _store_init_lock(resolved):
        path = local_store_path(resolved)
        if path is not None and not path.exists():
            copy_blank_store(path)  # else (or if that fails) MLflow creates and migrates the schema here
        mlflow_client = patient(resolved, MlflowClient, tracking_uri=resolved)
        patient(resolved, mlflow_client.search_experiments, max_results=1)
    _OPENED.add(resolved)
    return cast(MlflowClient, _Patient(mlflow_client, resolved))


class _Patient:
    """An MlflowClient's methods, each called through outage.patient."""

    def __init__(self, mlflow_client: MlflowClient, uri: str):
        from .outage import patient  # MLflow's exceptions: loaded with the client, not with this module

        self._client = mlflow_client
        self._uri = uri
        self._patient = patient

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return functools.partial(self._patient, self._uri, attr)


def _quiet_run_links() -> None:
    """MLflow prints "View run NAME at: URL" and "View experiment at: URL" on stdout each time a run
    ends on a server store (TrackingServiceClient._log_url, from set_terminated), the URL being the
    tracking URI as typed: a password in it was printed twice per cell. v2v-lab says where its runs
    are itself, with the password masked; MLflow's own switch turns those lines off (read at each
    run's end; named as a string: MLflow releases before mid-2025 have no switch, nor the import)."""
    os.environ[_QUIET_RUN_LINKS] = "true"


def ui_command(uri: str | None = None) -> str:
    """How to open the store's UI, as printed (a password in the URI masked)."""
    uri = mask_credentials(tracking_uri(uri))
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}   (or: v2v-lab ui)"
