"""The metric suite: one module per metric, a registry, and score()."""

# Imported in the suite's order: it is the registry's order, so the order of every table.
from . import ssim_source, temporal_consistency, warp_error, flicker  # noqa: F401, I001  (they register)
from .base import REGISTRY, Metric, MetricResult, metric_names
from .score import ScoreReport, score

DEFAULT_METRICS = metric_names()

__all__ = ["DEFAULT_METRICS", "REGISTRY", "Metric", "MetricResult", "ScoreReport", "metric_names", "score"]
