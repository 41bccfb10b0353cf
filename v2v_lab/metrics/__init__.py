"""The metric suite: one module per metric, a registry, and score()."""

from . import flicker, ssim_source, temporal_consistency, warp_error  # noqa: F401  (they register)
from .base import REGISTRY, Metric, MetricResult
from .score import DEFAULT_METRICS, ScoreReport, score

__all__ = ["DEFAULT_METRICS", "REGISTRY", "Metric", "MetricResult", "ScoreReport", "score"]
