"""Metrics from other packages, through the entry point group `v2v_lab.metrics`.

A package declares, in its pyproject.toml:

    [project.entry-points."v2v_lab.metrics"]
    clip_text = "my_metrics.clip_text:METRIC"

The entry point names a `Metric` (or a function returning one, or a list of them). Once the
package is installed, its metrics are registered like the built-in ones, after them, so `score`,
sweeps (`scoring: {metrics: [...]}`), `rescore`, the dashboards and the validity bench all see
them. A plugin that fails to load, or that would replace a metric already registered, is skipped
with a warning naming it: a broken plugin never stops the built-in metrics from working.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from .base import REGISTRY, Metric, register

__all__ = ["ENTRY_POINT_GROUP", "load_plugins"]

ENTRY_POINT_GROUP = "v2v_lab.metrics"
log = logging.getLogger(__name__)


def _metrics_of(obj: Any) -> list[Metric]:
    if isinstance(obj, Metric):
        return [obj]
    if callable(obj):
        return _metrics_of(obj())
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        found = [m for item in obj for m in _metrics_of(item)]
        if found:
            return found
    raise TypeError(f"expected a v2v_lab.metrics.Metric, a list of them or a function returning one, got {obj!r}")


def load_plugins() -> list[str]:
    """Register every installed plugin's metrics; returns the names registered."""
    added: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            metrics = _metrics_of(ep.load())
        except Exception as exc:  # noqa: BLE001 - any plugin error is the plugin's, reported and skipped
            log.warning("v2v_lab.metrics plugin %r (%s) not loaded: %s", ep.name, ep.value, exc)
            continue
        for metric in metrics:
            if metric.name in REGISTRY:
                log.warning("v2v_lab.metrics plugin %r not loaded: metric name %r is already registered",
                            ep.name, metric.name)
                continue
            register(metric)
            added.append(metric.name)
    return added
