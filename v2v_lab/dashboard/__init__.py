"""ipywidgets views over tracking's read side, on a widget-free view-model."""

from .browser import RunBrowser
from .compare_view import CompareView
from .monitor import SweepMonitor
from .viewmodel import RunFilter, RunsViewModel

__all__ = ["CompareView", "RunBrowser", "RunFilter", "RunsViewModel", "SweepMonitor"]
