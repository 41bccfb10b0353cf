"""score(): sample aligned frames once, run the chosen metrics, report values, series, params, timings.

Each metric's code runs guarded (_guard.py): one that raises, returns something that is not a
MetricResult or overruns its time limit is reported in `errors` under its name, and the others
are reported as usual."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..media.sampling import AlignedFrames, sample_aligned
from ..scoring_config import DEFAULT_SCORING
from ._guard import DEFAULT_TIME_LIMIT_S, MetricFailed, check_time_limit, run_guarded
from ._pool import inline_here
from .base import REGISTRY, SHARED_WANTED, Metric, MetricResult, check_metric_names, metric_names

__all__ = ["ScoreReport", "sampling_key", "score"]


@dataclass
class ScoreReport:
    values: dict[str, float]
    series: dict[str, list[float]]
    params: dict[str, Any]
    timings: dict[str, float]
    times_s: list[float] = field(default_factory=list)
    # Metrics that gave no value, and why (raised, a wrong result, past the time limit).
    errors: dict[str, str] = field(default_factory=dict)
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
    frames: int = DEFAULT_SCORING.frames,
    size: int = DEFAULT_SCORING.size,
    *,
    crop: str = DEFAULT_SCORING.crop,
    backend: str = "auto",
    prompt: str | None = None,
    metric_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    sequence_fps: float | None = None,
) -> ScoreReport:
    """Score an output against its source. Frames are sampled once and shared by every metric.
    prompt: what the output was asked to show, for metrics that read it (AlignedFrames.prompt).
    metric_time_limit_s: how long each metric's code may run on one output before it is abandoned
    and reported in `errors` (a plugin that hangs never hangs the caller).
    sequence_fps: the frame rate of an output that is a .zip of PNG frames (the model's catalog
    `output_fps`); default media.sequence.DEFAULT_FPS. Outputs that are not videos raise MediaError.
    frames, size and crop: ScoringConfig's defaults and ranges (sample_aligned refuses a value outside
    them with InputError, before any decode, as the spec and the CLI refuse it)."""
    names = list(metrics or metric_names())  # every registered metric unless asked for fewer
    check_metric_names(names)
    limit = check_time_limit(metric_time_limit_s)
    t0 = time.perf_counter()
    chosen = [REGISTRY[n] for n in names]
    prep_t: dict[str, float] = {}
    errors: dict[str, str] = {}
    aligned = sample_aligned(source, output, frames=frames, size=size, crop=crop, backend=backend,
                             on_source=_preparer(chosen, limit, errors, prep_t),
                             on_source_key=",".join(m.name for m in chosen if m.prepare_source),
                             sequence_fps=sequence_fps)
    aligned.prompt = prompt
    aligned.cache[SHARED_WANTED] = {work for metric in chosen for work in metric.shared_work}
    # sample_s includes the source-side preparation that overlapped the output's decode.
    timings = {"sample_s": time.perf_counter() - t0, **prep_t}
    values: dict[str, float] = {}
    series: dict[str, list[float]] = {}
    # What the caller asked for, in one value: rescore compares it to tell two versions apart.
    params: dict[str, Any] = {**aligned.params, "sampling": sampling_key(frames, size, crop)}
    for metric in chosen:
        if metric.name in errors:
            continue
        t = time.perf_counter()
        try:
            value, per_frame, own = _checked(run_guarded(metric.name, _computes(metric, aligned), limit),
                                             len(aligned.times_s))
        except MetricFailed as exc:
            errors[metric.name] = str(exc)
            continue
        finally:
            timings[f"{metric.name}_s"] = time.perf_counter() - t
        values[metric.name] = value
        series[metric.name] = per_frame
        params.update({f"{metric.name}.{key}": v for key, v in own.items()})
    timings["total_s"] = time.perf_counter() - t0
    return ScoreReport(values, series, params, timings, aligned.times_s, errors, aligned)


def _preparer(chosen: list[Metric], limit: float, errors: dict[str, str],
              prep_t: dict[str, float]) -> Callable[[Any, Any, dict[str, Any]], None]:
    """The source-side work of the chosen metrics, run on the source's decode thread beside the
    output's decode; a metric whose preparation fails is reported in errors and not computed."""
    def prepare_source(src_a: Any, src_b: Any, cache: dict[str, Any]) -> None:
        done: set[Any] = set()
        for metric in chosen:
            # Metrics that share source-side work (warp_error and motion_epe: the source's flow)
            # declare the same function: it runs once.
            if metric.prepare_source is None or metric.prepare_source in done:
                continue
            done.add(metric.prepare_source)
            t = time.perf_counter()
            try:
                run_guarded(metric.name, _inline(metric.prepare_source, src_a, src_b, cache), limit)
            except MetricFailed as exc:
                errors.update({m.name: f"preparing the source: {exc}" for m in chosen
                               if m.prepare_source is metric.prepare_source})
            prep_t[f"{metric.name}_prep_s"] = time.perf_counter() - t
    return prepare_source


def _inline(prepare: Any, src_a: Any, src_b: Any, cache: dict[str, Any]) -> Any:
    def run() -> None:
        # Beside the output's decode: inline, not on the shared threads.
        with inline_here():
            prepare(src_a, src_b, cache)
    return run


def _computes(metric: Metric, aligned: AlignedFrames) -> Any:
    return lambda: metric.compute(aligned)


def _checked(result: Any, n_frames: int) -> tuple[float, list[float], dict[str, Any]]:
    """A metric's answer as a report holds it, or MetricFailed saying what was wrong with it."""
    if not isinstance(result, MetricResult):
        raise MetricFailed(f"returned {_kind(result)}, not a MetricResult")
    try:
        value = float(result.value)
        per_frame = [float(v) for v in result.series]
    except (TypeError, ValueError):
        raise MetricFailed(f"returned a MetricResult whose value or series is not numbers "
                           f"(value {_kind(result.value)})") from None
    if len(per_frame) != n_frames:
        raise MetricFailed(f"returned a series of {len(per_frame)} values for {n_frames} frames")
    if not isinstance(result.params, dict):
        raise MetricFailed(f"returned params as {_kind(result.params)}, not a dict")
    return value, per_frame, result.params


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
