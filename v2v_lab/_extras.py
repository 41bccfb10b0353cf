"""The optional parts of v2v-lab and the one way a feature asks for one: `pip install v2v-lab` is
sweeps, scoring, MLflow and the dashboards; `[team]` adds PostgreSQL (the ledger, a PostgreSQL
tracking store), `[dask]` rescoring on Dask. A feature imports its extra's module where it is used,
through require(), so `import v2v_lab` and every `--help` work without any extra, and a missing
one is one line naming the extra to install, never a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import V2VError

__all__ = ["EXTRAS", "MissingExtraError", "require"]

# extra -> what it adds (pyproject.toml's [project.optional-dependencies] installs it; the README
# lists the same).
EXTRAS: dict[str, str] = {
    "team": "PostgreSQL: the team ledger (V2V_LAB_LEDGER_URL) and a PostgreSQL tracking store",
    "dask": "rescoring on Dask (a local cluster or a lab's scheduler)",
}


class MissingExtraError(V2VError, ImportError):
    """A feature whose extra is not installed. An ImportError too, so code that already guards an
    import keeps working; the CLI prints its one line (exit 1)."""

    code = "MISSING_EXTRA"

    def __init__(self, what: str, extra: str):
        self.what, self.extra = what, extra
        super().__init__(f"{what} needs the [{extra}] extra: pip install 'v2v-lab[{extra}]'")


def require(module: str, extra: str, what: str) -> ModuleType:
    """The module `module`, imported; when it cannot be (the extra is not installed), a
    MissingExtraError saying that `what` needs `extra`. The cause stays chained for a debugger."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}: one of {', '.join(sorted(EXTRAS))}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(what, extra) from exc
