"""The one place that knows MLflow: how a sweep is written, how runs are read back and compared.
Its public names load on first use (_lazy.py): a module under it (the store's locks, the record
names) is imported without MLflow and pandas coming along."""

import sys
import types
from typing import TYPE_CHECKING, Any

from .._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
    from .compare import bootstrap_ci, compare, compare_frame
    from .reader import list_experiments, load_artifact, load_runs, load_series
    from .store import tracking_uri, ui_command
    from .writer import SweepWriter

__all__ = ["SweepWriter", "bootstrap_ci", "compare", "compare_frame", "list_experiments", "load_artifact",
           "load_runs", "load_series", "tracking_uri", "ui_command"]

__getattr__, __dir__ = lazy(__name__, {
    "bootstrap_ci": (".compare", "bootstrap_ci"),
    "compare_frame": (".compare", "compare_frame"),
    "list_experiments": (".reader", "list_experiments"),
    "load_artifact": (".reader", "load_artifact"),
    "load_runs": (".reader", "load_runs"),
    "load_series": (".reader", "load_series"),
    "tracking_uri": (".store", "tracking_uri"),
    "ui_command": (".store", "ui_command"),
    "SweepWriter": (".writer", "SweepWriter"),
}, globals())


class _Tracking(types.ModuleType):
    """`tracking.compare` is the function, as when this package imported it up front, though a
    submodule of the same name exists: importing that submodule names it on the package (Python's
    import system does), and this setter keeps the name for the function instead."""

    @property
    def compare(self) -> Any:
        from .compare import compare

        return compare

    @compare.setter
    def compare(self, value: Any) -> None:
        pass  # the submodule, named here by the import system: reached through sys.modules


sys.modules[__name__].__class__ = _Tracking
