"""ipywidgets views over tracking's read side, on a widget-free view-model."""

from .browser import RunBrowser
from .compare_view import CompareView
from .monitor import SweepMonitor
from .rate_view import RateView
from .viewmodel import RunFilter, RunsViewModel

__all__ = ["CompareView", "RateView", "RunBrowser", "RunFilter", "RunsViewModel", "SweepMonitor"]
