"""Packages whose public names load on first use (PEP 562): `import v2v_lab` (and every command,
which imports it first) costs what it uses, not MLflow, pandas and httpx up front."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy"]


def lazy(package: str, names: dict[str, tuple[str, str]], namespace: dict[str, Any]
         ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's __getattr__ and __dir__. names: public name -> (module relative to the package,
    its attribute there). The first use imports the module and keeps the value in the package."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = names[name]
        value = getattr(importlib.import_module(module, package), attr)
        namespace[name] = value  # the next use is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
