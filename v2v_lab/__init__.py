"""v2v-lab: sweeps, scores and dashboards for hosted video-to-video models, with an offline emulator.

The public API is what this module exports (`__all__`, the README's "Python API" table); every
module under it, underscored or not, is internal and may change in any release.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
    from .api import (
        AsyncRunwayClient,
        GenerationRequest,
        RunwayClient,
        Task,
        TaskStatus,
        load_catalog,
    )
    from .dashboard import CompareView, RateView, RunBrowser, SweepMonitor
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
    from .metrics import AlignedFrames, Metric, MetricResult, ScoreReport, score
    from .rating import QUESTIONS, load_ratings, metric_agreement, rank, ranking_settled, rater_agreement
    from .rescoring import RescoreResult, rescore
    from .sweeps import SweepSpec, load_spec, plan_sweep, run_sweep
    from .sweeps.power import power
    from .tracking import load_artifact, load_runs
    from .tracking.comparison import compare

__version__ = "0.1.0"

__all__ = [
    "APIError", "AsyncRunwayClient", "AuthenticationError", "BudgetError", "CompareView", "CreateOutcomeUnknownError",
    "Emulator", "FaultConfig", "GenerationRequest", "InputError", "METRICS", "MediaError", "RescoreResult", "RunBrowser",
    "RunwayClient", "ScoreReport", "SweepMonitor", "SweepSpec", "Task", "TaskFailedError", "TaskStatus", "V2VError",
    "WaitTimeoutError", "compare", "load_artifact", "load_catalog", "load_runs", "load_spec", "plan_sweep",
    "rescore", "run_sweep", "score", "RateView", "QUESTIONS", "load_ratings", "rank", "rater_agreement",
    "metric_agreement", "Metric", "MetricResult", "AlignedFrames", "ranking_settled", "power",
]


__getattr__, __dir__ = lazy(__name__, {
    'AsyncRunwayClient': ('.api', 'AsyncRunwayClient'),
    'GenerationRequest': ('.api', 'GenerationRequest'),
    'RunwayClient': ('.api', 'RunwayClient'),
    'Task': ('.api', 'Task'),
    'TaskStatus': ('.api', 'TaskStatus'),
    'load_catalog': ('.api', 'load_catalog'),
    'Emulator': ('.emulator', 'Emulator'),
    'FaultConfig': ('.emulator', 'FaultConfig'),
    'APIError': ('.errors', 'APIError'),
    'AuthenticationError': ('.errors', 'AuthenticationError'),
    'BudgetError': ('.errors', 'BudgetError'),
    'CreateOutcomeUnknownError': ('.errors', 'CreateOutcomeUnknownError'),
    'InputError': ('.errors', 'InputError'),
    'MediaError': ('.errors', 'MediaError'),
    'TaskFailedError': ('.errors', 'TaskFailedError'),
    'V2VError': ('.errors', 'V2VError'),
    'WaitTimeoutError': ('.errors', 'WaitTimeoutError'),
    'METRICS': ('.metrics', 'REGISTRY'),
    'ScoreReport': ('.metrics', 'ScoreReport'),
    'score': ('.metrics', 'score'),
    'Metric': ('.metrics', 'Metric'),
    'MetricResult': ('.metrics', 'MetricResult'),
    'AlignedFrames': ('.metrics', 'AlignedFrames'),
    'QUESTIONS': ('.rating', 'QUESTIONS'),
    'load_ratings': ('.rating', 'load_ratings'),
    'metric_agreement': ('.rating', 'metric_agreement'),
    'rank': ('.rating', 'rank'),
    'ranking_settled': ('.rating', 'ranking_settled'),
    'rater_agreement': ('.rating', 'rater_agreement'),
    'RescoreResult': ('.rescoring', 'RescoreResult'),
    'rescore': ('.rescoring', 'rescore'),
    'SweepSpec': ('.sweeps', 'SweepSpec'),
    'load_spec': ('.sweeps', 'load_spec'),
    'plan_sweep': ('.sweeps', 'plan_sweep'),
    'run_sweep': ('.sweeps', 'run_sweep'),
    'power': ('.sweeps.power', 'power'),
    'compare': ('.tracking.comparison', 'compare'),
    'load_artifact': ('.tracking', 'load_artifact'),
    'load_runs': ('.tracking', 'load_runs'),
    'RunBrowser': ('.dashboard', 'RunBrowser'),
    'CompareView': ('.dashboard', 'CompareView'),
    'SweepMonitor': ('.dashboard', 'SweepMonitor'),
    'RateView': ('.dashboard', 'RateView'),
}, globals())
