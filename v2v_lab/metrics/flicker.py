"""flicker: VBench's temporal flickering score, (255 - mean |F_t - F_t+1|) / 255 on consecutive output frames.

Range [0, 1], higher is less flicker; 1.0 for a frozen frame. VBench applies it to static clips
only: on a moving source it also counts real motion, so compare outputs of the same source.
"""

from __future__ import annotations

import numpy as np

from ..media.sampling import AlignedFrames
from .base import Metric, MetricResult, mean, register

__all__ = ["METRIC", "PARAMS", "compute"]

PARAMS = {"formula": "vbench temporal_flickering", "pairs": "consecutive output frames", "scale": "0-255"}


def compute(frames: AlignedFrames) -> MetricResult:
    series = []
    for a, b in zip(frames.out_a, frames.out_b, strict=True):
        mae = float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())
        series.append((255.0 - mae) / 255.0)
    return MetricResult(mean(series), series, dict(PARAMS))


METRIC = register(Metric("flicker", "(255 - mean abs diff of consecutive output frames) / 255",
                         0.0, 1.0, compute, PARAMS, direction="higher"))
