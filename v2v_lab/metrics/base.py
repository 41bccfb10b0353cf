"""What a metric is (name, direction, bounds, unit, defining parameters) and the registry of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from ..errors import InputError
from ..media.sampling import AlignedFrames

__all__ = [
    "DIRECTIONS", "SHARED_WANTED", "REGISTRY", "Direction", "Metric", "MetricResult", "check_metric_names", "mean", "metric_names",
    "metric_of", "register",
]

# The AlignedFrames.cache entry naming the shared work the chosen metrics declared (Metric.shared_work).
SHARED_WANTED = "shared.wanted"


@dataclass(frozen=True)
class MetricResult:
    value: float
    series: list[float]
    params: dict[str, Any] = field(default_factory=dict)


Direction = Literal["higher", "lower", "target"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)


@dataclass(frozen=True)
class Metric:
    """A metric's contract, which every consumer (agreement with raters, sorting, compare's verdict,
    charts' axis titles, the validity table) reads instead of guessing from the numbers:

    - direction: "higher" or "lower" is better, or "target": the best value is `best` and the
      distance to it is what counts (temporal_consistency_rel: 1 is as steady as the source; an
      output steadier than its source, a frozen one, is above 1 and no better for it). None
      derives it from worst and best, as for plugins written before the contract: they keep loading.
    - worst, best: the ends of the scale as a person reads it; for a target metric `best` is the target.
    - bounds: the values it can take, low to high, when that is not simply worst..best.
    - unit: what a value is counted in, "" for a score with none ("px", "dB").

    goodness() is the one way to read a value in its direction; every comparison goes through it.
    """

    name: str
    description: str
    worst: float
    best: float
    compute: Callable[[AlignedFrames], MetricResult]
    params: dict[str, Any] = field(default_factory=dict)
    # Work it shares with other metrics, by name ("ssim.out_out": see _ssim.PAIR_KINDS): score() tells
    # the metrics everything the chosen ones share (frames.cache[SHARED_WANTED]), so the module that
    # does that work computes all of it in one pass; what the names mean stays inside that module.
    shared_work: tuple[str, ...] = ()
    # Work that needs only the source frames, run while the output is still decoding; fills the cache.
    prepare_source: Callable[[np.ndarray, np.ndarray, dict[str, Any]], None] | None = None
    # The values it can take, low to high, when that is not simply worst..best (a ratio can pass 1).
    bounds: tuple[float, float] | None = None
    # Shown by default in tables, dashboards and the CLI (a variant of another metric is not).
    headline: bool = True
    direction: Direction | None = None  # type: ignore[assignment]  # always set after __post_init__
    unit: str = ""

    def __post_init__(self) -> None:
        derived = "higher" if self.best > self.worst else "lower"
        direction = self.direction or derived
        if direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction {direction!r}, expected one of {', '.join(DIRECTIONS)}")
        if direction != "target" and direction != derived:
            raise ValueError(f"metric {self.name!r}: direction {direction!r} but worst {self.worst:g} and best "
                             f"{self.best:g} say {derived!r}")
        lo, hi = self.value_range
        if not lo <= self.best <= hi or not lo <= self.worst <= hi:
            raise ValueError(f"metric {self.name!r}: worst {self.worst:g} and best {self.best:g} must lie within "
                             f"its bounds {lo:g}..{hi:g}")
        if direction == "target" and not math.isfinite(self.best):
            raise ValueError(f"metric {self.name!r}: a target metric's best (its target) must be finite")
        object.__setattr__(self, "direction", direction)

    @property
    def value_range(self) -> tuple[float, float]:
        return self.bounds or (min(self.worst, self.best), max(self.worst, self.best))

    @property
    def target(self) -> float | None:
        """The value a target metric is best at (its `best`); None for a higher or lower one."""
        return self.best if self.direction == "target" else None

    def goodness(self, value: Any) -> Any:
        """The value read in the metric's direction, larger is better: the value itself (higher),
        its negative (lower), minus its distance to the target (target). Works on a float, a numpy
        array or a pandas Series alike; NaN stays NaN. Compare, sort and rank by this, never by
        the raw value: it is the only place the direction is applied."""
        if self.direction == "higher":
            return value
        if self.direction == "lower":
            return -value
        return -abs(value - self.best)

    def better(self, a: float, b: float) -> bool:
        """Whether value a is strictly better than value b (two values at one distance from a
        target are equally good)."""
        return bool(self.goodness(a) > self.goodness(b))

    def best_text(self) -> str:
        """Which way is better, as a person reads it: "higher is better", "best at 1"."""
        return f"best at {self.best:g}" if self.direction == "target" else f"{self.direction} is better"

    def direction_mark(self) -> str:
        """Which way is better in a column or chart title: "↑", "↓", or "(best at 1)" for a target."""
        return {"higher": "↑", "lower": "↓"}.get(str(self.direction), f"({self.best_text()})")

    def describe(self) -> str:
        """Range, unit and direction as a person reads them: "range 0..∞ px, lower is better"."""
        lo, hi = self.value_range
        unit = f" {self.unit}" if self.unit else ""
        return f"range {lo:g}..{hi:g}{unit}, {self.best_text()}".replace("inf", "∞")

    @property
    def higher_is_better(self) -> bool:
        """Kept for code written before `direction` (plugins, notebooks): True only for "higher".
        A target metric is neither higher- nor lower-is-better: read goodness() instead."""
        return self.direction == "higher"


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
