"""ssim_source: structure retention, mean SSIM between each output frame and the source frame at the same time.

Range [-1, 1], higher is closer to the source. SSIM rewards not editing: read it as "how much of
the source's structure survived", next to a measure of the edit, never alone.
"""

from __future__ import annotations

from ..media.sampling import AlignedFrames
from ._ssim import cached_ssim
from .base import Metric, MetricResult, mean, register

__all__ = ["METRIC", "PARAMS", "compute"]

PARAMS = {"window": "gaussian", "sigma": 1.5, "use_sample_covariance": False, "data_range": 255,
          "colour": "rgb"}


def compute(frames: AlignedFrames) -> MetricResult:
    series = list(cached_ssim(frames, "src_out"))
    return MetricResult(mean(series), series, dict(PARAMS))


METRIC = register(Metric("ssim_source", "SSIM(source_t, output_t), averaged over sampled frames",
                         -1.0, 1.0, compute, PARAMS, shared_work=("ssim.src_out",), direction="higher"))
