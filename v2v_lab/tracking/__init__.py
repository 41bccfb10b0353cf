"""The one place that knows MLflow: how a sweep is written, how runs are read back and compared.
Its public names load on first use (_lazy.py): a module under it (the store's locks, the record
names) is imported without MLflow and pandas coming along."""

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
    from .comparison import bootstrap_ci, compare, compare_frame
    from .reader import list_experiments, load_artifact, load_runs, load_series
    from .store import tracking_uri, ui_command
    from .writer import SweepWriter

__all__ = ["SweepWriter", "bootstrap_ci", "compare", "compare_frame", "list_experiments", "load_artifact",
           "load_runs", "load_series", "tracking_uri", "ui_command"]

__getattr__, __dir__ = lazy(__name__, {
    "bootstrap_ci": (".comparison", "bootstrap_ci"),
    "compare": (".comparison", "compare"),
    "compare_frame": (".comparison", "compare_frame"),
    "list_experiments": (".reader", "list_experiments"),
    "load_artifact": (".reader", "load_artifact"),
    "load_runs": (".reader", "load_runs"),
    "load_series": (".reader", "load_series"),
    "tracking_uri": (".store", "tracking_uri"),
    "ui_command": (".store", "ui_command"),
    "SweepWriter": (".writer", "SweepWriter"),
}, globals())

