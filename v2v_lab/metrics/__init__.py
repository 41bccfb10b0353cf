"""The metric suite: one module per metric, a registry, and score(). Plugins (the entry point
group `v2v_lab.metrics`) register after the built-in metrics, on first import."""

# Imported in the suite's order: it is the registry's order, so the order of every table (they register).
from . import ssim_source, structure, temporal_consistency, warp_error, motion_epe, flicker, piqe  # noqa: F401, I001
from ..media.sampling import AlignedFrames
from .base import REGISTRY, Metric, MetricResult, metric_names
from .score import ScoreReport, score
from .plugins import ENTRY_POINT_GROUP, load_plugins

BUILTIN_METRICS = metric_names()
PLUGIN_METRICS = tuple(load_plugins())
# Every metric, plugins included, is computed unless a command or spec names fewer: together they
# cost about the decode of both clips (bench/score.py).
DEFAULT_METRICS = metric_names()

__all__ = ["BUILTIN_METRICS", "DEFAULT_METRICS", "ENTRY_POINT_GROUP", "PLUGIN_METRICS", "REGISTRY", "AlignedFrames",
           "Metric", "MetricResult", "ScoreReport", "metric_names", "score"]
