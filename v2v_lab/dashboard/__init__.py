"""ipywidgets views over tracking's read side, on a widget-free view-model."""

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
    from .browser import RunBrowser
    from .compare_view import CompareView
    from .monitor import SweepMonitor
    from .rate_view import RateView
    from .viewmodel import RunFilter, RunsViewModel

__all__ = ["CompareView", "RateView", "RunBrowser", "RunFilter", "RunsViewModel", "SweepMonitor"]

__getattr__, __dir__ = lazy(__name__, {
    'RunBrowser': ('.browser', 'RunBrowser'),
    'CompareView': ('.compare_view', 'CompareView'),
    'SweepMonitor': ('.monitor', 'SweepMonitor'),
    'RateView': ('.rate_view', 'RateView'),
    'RunFilter': ('.viewmodel', 'RunFilter'),
    'RunsViewModel': ('.viewmodel', 'RunsViewModel'),
}, globals())
