"""v2v-lab: sweeps, scores and dashboards for hosted video-to-video models, with an offline emulator."""

from .api import (
    AsyncRunwayClient,
    GenerationRequest,
    RunwayClient,
    Task,
    TaskStatus,
    load_catalog,
)
from .emulator import Emulator, FaultConfig
from .errors import (
    APIError,
    AuthenticationError,
    BudgetError,
    CreateOutcomeUnknownError,
    InputError,
    MediaError,
    TaskFailedError,
    V2VError,
    WaitTimeoutError,
)
from .metrics import REGISTRY as METRICS
from .metrics import ScoreReport, score
from .rating import QUESTIONS, load_ratings, metric_agreement, rank, rater_agreement
from .rescoring import RescoreResult, rescore
from .sweeps import SweepSpec, load_spec, plan_sweep, run_sweep
from .tracking import compare, load_artifact, load_runs

__version__ = "0.1.0"

__all__ = [
    "APIError", "AsyncRunwayClient", "AuthenticationError", "BudgetError", "CompareView", "CreateOutcomeUnknownError",
    "Emulator", "FaultConfig", "GenerationRequest", "InputError", "METRICS", "MediaError", "RescoreResult", "RunBrowser",
    "RunwayClient", "ScoreReport", "SweepMonitor", "SweepSpec", "Task", "TaskFailedError", "TaskStatus", "V2VError",
    "WaitTimeoutError", "compare", "load_artifact", "load_catalog", "load_runs", "load_spec", "plan_sweep",
    "rescore", "run_sweep", "score", "RateView", "QUESTIONS", "load_ratings", "rank", "rater_agreement",
    "metric_agreement",
]


def __getattr__(name: str) -> object:
    # Dashboards pull in ipywidgets; import them only when asked for.
    if name in ("RunBrowser", "CompareView", "SweepMonitor", "RateView"):
        from . import dashboard

        return getattr(dashboard, name)
    raise AttributeError(name)
