"""temporal_consistency: mean SSIM of consecutive output frames; _rel divides by the source's own.

temporal_consistency is in [-1, 1], higher is steadier. temporal_consistency_rel is 1.0 when the
output is as steady as the source, so natural motion in the source is not counted against it;
below 1 the output changes more between frames than the source does, above 1 less (a frozen or
smoothed-over output). Its direction is a target: best at 1, read as the distance to 1.
"""

from __future__ import annotations

from ..media.sampling import AlignedFrames
from ._ssim import cached_ssim, prepare_source_ssim
from .base import Metric, MetricResult, mean, register

__all__ = ["METRIC", "METRIC_REL", "PARAMS", "PARAMS_REL", "compute", "compute_rel"]

PARAMS = {"pairs": "consecutive output frames", "sigma": 1.5, "data_range": 255, "colour": "rgb"}
PARAMS_REL = {**PARAMS, "relative_to": "source's own temporal_consistency"}


def compute(frames: AlignedFrames) -> MetricResult:
    series = list(cached_ssim(frames, "out_out"))
    return MetricResult(mean(series), series, dict(PARAMS))


def compute_rel(frames: AlignedFrames) -> MetricResult:
    out = cached_ssim(frames, "out_out")
    src = cached_ssim(frames, "src_src")
    series = [o / s if s > 1e-6 else float("nan") for o, s in zip(out, src, strict=True)]
    source_tc = mean(src)
    value = mean(out) / source_tc if source_tc > 1e-6 else float("nan")
    return MetricResult(value, series, dict(PARAMS_REL))


METRIC = register(Metric("temporal_consistency", "SSIM(output_t, output_t+1), averaged", -1.0, 1.0, compute, PARAMS,
                         shared_work=("ssim.out_out",), direction="higher"))
METRIC_REL = register(Metric("temporal_consistency_rel", "temporal_consistency(output) / temporal_consistency(source)",
                             0.0, 1.0, compute_rel, PARAMS_REL,
                             shared_work=("ssim.out_out", "ssim.src_src"), prepare_source=prepare_source_ssim,
                             # 1.0 is as steady as the source, and best: above 1 the output is steadier than
                             # its source (a frozen output is), which is losing the source's motion, not a gain.
                             bounds=(0.0, float("inf")), headline=False, direction="target"))
