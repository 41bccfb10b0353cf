"""Every environment variable v2v-lab reads, in one table, and the typed readers that check a value
where it is read: a bad one is an InputError naming the variable and what it may be (exit 2 from
the CLI), never a traceback or a value taken silently. The README's table lists the same names."""

from __future__ import annotations

import math
from dataclasses import dataclass
from os import environ
from urllib.parse import urlsplit

from .errors import InputError

__all__ = ["VARIABLES", "EnvVar", "child_environment", "env_count", "env_seconds", "env_text", "env_url"]


@dataclass(frozen=True)
class EnvVar:
    name: str
    what: str
    kind: str = "text"  # "text" | "seconds" (a positive finite number) | "count" (a whole number >= 1) | "url"
    default: float | None = None  # for "seconds" and "count"
    secret: bool = False  # never shown in a message (a key, or a URL that may carry a password)


VARIABLES: dict[str, EnvVar] = {v.name: v for v in (
    EnvVar("RUNWAYML_API_SECRET", "Runway's API key (the official SDK's variable)", secret=True),
    EnvVar("COMETAPI_API_KEY", "CometAPI's API key", secret=True),
    EnvVar("MLFLOW_TRACKING_URI", "the MLflow store (MLflow's own variable); default ./mlflow.db", secret=True),
    EnvVar("V2V_LAB_BASE_URL", "the endpoint to talk to instead of the provider's own (a key goes there)"),
    EnvVar("V2V_LAB_EMULATOR_KEY", "the key a keyed emulator (`v2v-lab emulator --key K`) wants", secret=True),
    EnvVar("V2V_LAB_HOME", "the state folder (journal, locks, drawn seeds); default ./.v2v-lab"),
    EnvVar("V2V_LAB_LEDGER_URL", "the team ledger, a PostgreSQL URL shared by every process", secret=True),
    EnvVar("V2V_LAB_LEASE_S", "seconds a ledger claim, or a sweep's lease on a tracking server, lasts unless renewed", "seconds", 30.0),
    EnvVar("V2V_LAB_LEDGER_RETRY_S", "seconds a lost ledger connection is retried before giving up", "seconds", 60.0),
    EnvVar("V2V_LAB_MAX_CELLS", "the most cells a plan may have (counted before it is built)", "count", 100_000),
    EnvVar("V2V_LAB_CATALOG", "a model catalog file merged over the built-in one"),
    EnvVar("XDG_CACHE_HOME", "the user's cache folder (default ~/.cache): v2v-lab/ there keeps a blank MLflow "
           "store that new local stores are copied from"),
    EnvVar("V2V_LAB_MLFLOW_UI", "the MLflow UI's address, for the run browser's links", "url"),
    EnvVar("PWD", "the folder the shell started the command (or a Voila server) in; set by the shell: pages "
           "look there for the store when no folder above them holds one"),
    EnvVar("V2V_LAB_FAILPOINTS", "tests only: kill the process at named moments (name=N,...)"),
    EnvVar("V2V_LAB_FAILPOINT_LOG", "tests only: a file each failpoint names itself in before the kill"),
)}


def _raw(name: str) -> str | None:
    """The value as set; unset and empty are the same (an `export X=` means "not set")."""
    if name not in VARIABLES:  # every variable read is declared above (and in the README)
        raise KeyError(f"{name} is not declared in v2v_lab/_env.py")
    return environ.get(name) or None


def _refuse(var: EnvVar, value: str, allowed: str) -> InputError:
    return InputError(var.name, "(not shown)" if var.secret else value, allowed)


def env_text(name: str) -> str | None:
    """The variable's text, or None when it is unset or empty."""
    return _raw(name)


def env_seconds(name: str) -> float:
    """A duration: a positive finite number of seconds, or the variable's default when unset."""
    var = VARIABLES[name]
    assert var.kind == "seconds" and var.default is not None, name
    raw = _raw(name)
    if raw is None:
        return var.default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _refuse(var, raw, f"a positive number of seconds, such as {var.default:g} (the default when unset)")
    return value


def env_count(name: str) -> int:
    """A count: a whole number, 1 or more, or the variable's default when unset."""
    var = VARIABLES[name]
    assert var.kind == "count" and var.default is not None, name
    raw = _raw(name)
    if raw is None:
        return int(var.default)
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise _refuse(var, raw, f"a whole number, 1 or more, such as {int(var.default)} (the default when unset)")
    return value


def env_url(name: str) -> str | None:
    """An http(s) address, or None when the variable is unset."""
    var = VARIABLES[name]
    raw = _raw(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(var, raw, "an http(s) URL such as http://127.0.0.1:5000")
    return raw


def child_environment(**switches: str) -> dict[str, str]:
    """The environment a child process (MLflow's UI) inherits, with another program's own switches
    set on top (MLFLOW_SERVER_ENABLE_JOB_EXECUTION...): passing it on is not reading it."""
    return {**environ, **switches}
