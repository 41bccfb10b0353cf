"""The one place that knows MLflow: how a sweep is written, how runs are read back and compared."""

from .compare import bootstrap_ci, compare, compare_frame
from .reader import list_experiments, load_artifact, load_runs, load_series
from .store import tracking_uri, ui_command
from .writer import SweepWriter

__all__ = ["SweepWriter", "bootstrap_ci", "compare", "compare_frame", "list_experiments", "load_artifact",
           "load_runs", "load_series", "tracking_uri", "ui_command"]
