"""A part of the tracking store that is away or full: how long it is waited for, and the one line
that says which part it is.

Every MLflow call v2v-lab makes goes through `patient` (store.client() wraps the MlflowClient): a
tracking server that does not answer, or answers 5xx because its database or object store is away,
is tried again until the store has been away for the retry window, V2V_LAB_LEDGER_RETRY_S (the
ledger's: one window for every part of the store, 60 s by default), counted from the first failure
of the outage, so the calls made after it (a run marked failed, the parent marked KILLED) do not
each wait it again. Then a StoreError names the part: "the tracking server at URL", "the store's
database", "the store's disk". A full disk is said at once: waiting does not free space.

MLflow's own HTTP retries (7 tries over about 4 minutes, 120 s per request, by default) are
bounded here unless the user set them, so one call never outlasts the window by minutes.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mlflow.exceptions import MlflowException

from .._env import env_seconds
from .._sync import pause, stopping
from ..errors import V2VError
from .store import is_server

__all__ = ["RETRY_ENV", "StoreError", "bound_mlflow_http", "patient", "retry_window_s", "store_error"]

T = TypeVar("T")
RETRY_ENV = "V2V_LAB_LEDGER_RETRY_S"
_PAUSE_S = 1.0  # between two tries of a call
# MLflow's HTTP client, per call: 2 quick retries (0 s, then 2 s apart) and 20 s per request.
_MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# An OperationalError that says the database is away (not a bug or a broken schema).
_DB_AWAY = ("could not connect", "connection refused", "connection failed", "server closed the connection",
            "terminating connection", "connection reset", "database is locked", "can't connect",
            "lost connection", "unable to open database")
# What requests and urllib3 raise when a server does not answer (by name: no import of either here).
_HTTP_AWAY = {"ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "NewConnectionError", "MaxRetryError",
              "RetryError", "ProtocolError", "RemoteDisconnected", "ConnectionRefusedError"}
_AWAY: dict[str, float] = {}  # store URI -> monotonic time its current outage began
_AWAY_LOCK = threading.Lock()


class StoreError(V2VError):
    """A part of the tracking store is away (past the retry window) or its disk is full. Its
    message is one line naming the part; nothing paid for is lost (the journal keeps it)."""

    code = "STORE_UNAVAILABLE"

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient  # worth trying again within the window


def retry_window_s() -> float:
    """How long a part of the store may be away before a sweep gives up: V2V_LAB_LEDGER_RETRY_S."""
    return env_seconds(RETRY_ENV)


def bound_mlflow_http() -> None:
    for name, value in _MLFLOW_HTTP.items():
        os.environ.setdefault(name, value)


def patient(uri: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs), tried again while the part of the store it needs is away, up to the
    retry window; a StoreError once the window has passed (or at once for a full disk)."""
    while True:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            err = store_error(exc, uri)
            if err is None:
                raise
            if not err.transient or stopping() or _away_for(uri) >= retry_window_s():
                raise err from None
            pause(_PAUSE_S)
            continue
        with _AWAY_LOCK:
            _AWAY.pop(uri, None)
        return result


def _away_for(uri: str) -> float:
    now = time.monotonic()
    with _AWAY_LOCK:
        return now - _AWAY.setdefault(uri, now)


def store_error(exc: BaseException, uri: str) -> StoreError | None:
    """The exception as the one line a user reads, when it says a part of the store is away or
    full; None for any other error (a bug, a refusal: raised as it is)."""
    chain = list(_chain(exc))
    full = next((e for e in chain if _disk_full(e)), None)
    if full is not None:
        where = getattr(full, "filename", None) or _store_path(uri)
        return StoreError(f"the store's disk is full ({where}): every output paid for is kept; free some space "
                          "and run the same command to finish", transient=False)
    if is_server(uri) and any("error code 404 != 200" in str(e) for e in chain):
        return StoreError(f"the tracking server at {_shown(uri)} answers, but not as an MLflow tracking server "
                          "(404 on its API): check MLFLOW_TRACKING_URI", transient=False)
    away = _away(chain, uri)
    if away is None:
        return None
    what, detail = away
    return StoreError(f"{what} for {retry_window_s():g} s ({detail}{RETRY_ENV}); every output paid for is kept: "
                      "run the same command when it is back", transient=True)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    text = str(exc)
    return "database or disk is full" in text or "No space left on device" in text


def _away(chain: list[BaseException], uri: str) -> tuple[str, str] | None:
    """(which part did what, a detail) when the chain says a part of the store is away; else None."""
    names = {type(e).__name__ for e in chain}
    if is_server(uri):
        server = f"the tracking server at {_shown(uri)}"
        status = next((e.get_http_status_code() for e in chain if isinstance(e, MlflowException)
                       and type(e).__name__ == "RestException"), None)
        if status is not None and status >= 500:
            return f"{server} answered {status}", "its database or object store may be away; "
        if names & _HTTP_AWAY:
            return f"{server} did not answer", ""
        return None
    # SQLAlchemy under a database store: only the errors that say the database is not there.
    first = next((_first_line(e) for e in chain if type(e).__name__ == "OperationalError"), "")
    if any(word in first.lower() for word in _DB_AWAY):
        return f"the store's database at {_shown(uri)} did not answer", f"{first[:200]}; "
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _store_path(uri: str) -> str:
    from .store import local_store_path

    path = local_store_path(uri)
    return str(path) if path is not None else _shown(uri)


def _shown(uri: str) -> str:
    """The URI without a password, for messages."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri
