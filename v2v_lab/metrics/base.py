"""What a metric is (name, range, direction, defining parameters) and the registry of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..media.sampling import AlignedFrames

__all__ = [
    "REGISTRY", "Metric", "MetricResult", "check_metric_names", "mean", "metric_names", "metric_of",
    "register",
]


@dataclass(frozen=True)
class MetricResult:
    value: float
    series: list[float]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    worst: float
    best: float
    compute: Callable[[AlignedFrames], MetricResult]
    params: dict[str, Any] = field(default_factory=dict)
    # Kinds of SSIM pair the metric reads (see _ssim.PAIR_KINDS), so score() computes them in one pass.
    ssim_pairs: tuple[str, ...] = ()
    # Work that needs only the source frames, run while the output is still decoding; fills the cache.
    prepare_source: Callable[[np.ndarray, np.ndarray, dict[str, Any]], None] | None = None
    # The values it can take, low to high, when that is not simply worst..best (a ratio can pass 1).
    bounds: tuple[float, float] | None = None
    # Shown by default in tables, dashboards and the CLI (a variant of another metric is not).
    headline: bool = True

    @property
    def value_range(self) -> tuple[float, float]:
        return self.bounds or (min(self.worst, self.best), max(self.worst, self.best))

    def describe(self) -> str:
        """Range and direction as a person reads them: "range 0..1, higher is better"."""
        lo, hi = self.value_range
        return f"range {lo:g}..{hi:g}, {self.direction} is better".replace("inf", "∞")

    @property
    def higher_is_better(self) -> bool:
        return self.best > self.worst

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


REGISTRY: dict[str, Metric] = {}


def metric_of(key: str) -> Metric | None:
    """The registered metric a logged key holds: its own name, or a version of it measured another
    way (rescore's `structure.size128.frames16`, `.v<hash>`); None for any other key."""
    return REGISTRY.get(key.split(".", 1)[0]) if isinstance(key, str) else None


def metric_names(headline_only: bool = False) -> tuple[str, ...]:
    """Registered metrics in registration order (the suite's order): the one list every table,
    dashboard and default reads, so a new metric shows up everywhere by registering."""
    return tuple(name for name, m in REGISTRY.items() if m.headline or not headline_only)


def check_metric_names(names: Iterable[str], field: str = "metrics") -> None:
    """Refuse an unregistered metric name, naming the field and the names there are (plugins included)."""
    for name in names:
        if name not in REGISTRY:
            raise InputError(field, name, f"metric names from: {', '.join(sorted(REGISTRY))}")


def register(metric: Metric) -> Metric:
    REGISTRY[metric.name] = metric
    return metric


def mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
