"""score(): sample aligned frames once, run the chosen metrics, report values, series, params, timings."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

from ..media.sampling import AlignedFrames, sample_aligned
from ._ssim import inline_here
from .base import REGISTRY, check_metric_names, metric_names

__all__ = ["ScoreReport", "sampling_key", "score"]


@dataclass
class ScoreReport:
    values: dict[str, float]
    series: dict[str, list[float]]
    params: dict[str, Any]
    timings: dict[str, float]
    times_s: list[float] = field(default_factory=list)
    # The sampled frames, for contact sheets; not part of the report's data.
    frames: AlignedFrames | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "frames"}

    def to_json(self, **kw: Any) -> str:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return json.dumps(clean(self.to_dict()), **kw)


def sampling_key(frames: int, size: int, crop: str) -> str:
    """How frames were sampled, as requested: "frames=16,size=256,crop=center"."""
    return f"frames={frames},size={size},crop={crop}"


def score(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    metrics: list[str] | tuple[str, ...] | None = None,
    frames: int = 16,
    size: int = 256,
    *,
    crop: str = "center",
    backend: str = "auto",
    prompt: str | None = None,
) -> ScoreReport:
    """Score an output against its source. Frames are sampled once and shared by every metric.
    prompt: what the output was asked to show, for metrics that read it (AlignedFrames.prompt)."""
    names = list(metrics or metric_names())  # every registered metric unless asked for fewer
    check_metric_names(names)
    t0 = time.perf_counter()
    chosen = [REGISTRY[n] for n in names]
    prep_t: dict[str, float] = {}

    def prepare_source(src_a: Any, src_b: Any, cache: dict[str, Any]) -> None:
        # On the source's decode thread, beside the output's decode: inline, not on the pool.
        with inline_here():
            done: set[Any] = set()
            for metric in chosen:
                # Metrics that share source-side work (warp_error and motion_epe: the source's flow)
                # declare the same function: it runs once.
                if metric.prepare_source is not None and metric.prepare_source not in done:
                    done.add(metric.prepare_source)
                    t = time.perf_counter()
                    metric.prepare_source(src_a, src_b, cache)
                    prep_t[f"{metric.name}_prep_s"] = time.perf_counter() - t

    aligned = sample_aligned(source, output, frames=frames, size=size, crop=crop, backend=backend,
                             on_source=prepare_source,
                             on_source_key=",".join(m.name for m in chosen if m.prepare_source))
    aligned.prompt = prompt
    aligned.cache["ssim.wanted"] = {kind for metric in chosen for kind in metric.ssim_pairs}
    # sample_s includes the source-side preparation that overlapped the output's decode.
    timings = {"sample_s": time.perf_counter() - t0, **prep_t}
    values: dict[str, float] = {}
    series: dict[str, list[float]] = {}
    # What the caller asked for, in one value: rescore compares it to tell two versions apart.
    params: dict[str, Any] = {**aligned.params, "sampling": sampling_key(frames, size, crop)}
    for name in names:
        t = time.perf_counter()
        result = REGISTRY[name].compute(aligned)
        timings[f"{name}_s"] = time.perf_counter() - t
        values[name] = result.value
        series[name] = result.series
        for key, value in result.params.items():
            params[f"{name}.{key}"] = value
    timings["total_s"] = time.perf_counter() - t0
    return ScoreReport(values, series, params, timings, aligned.times_s, aligned)
