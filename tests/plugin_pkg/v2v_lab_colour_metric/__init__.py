"""prompt_colour: the share of the output's vivid pixels whose hue is the colour the prompt names.

A crude, offline stand-in for a learned text-alignment score, shipped as a plugin (entry point
group `v2v_lab.metrics`) to show the contract: it reads the prompt (AlignedFrames.prompt), has a
range and a direction, and states its params. NaN when the prompt names no colour.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from v2v_lab import AlignedFrames, Metric, MetricResult

# OpenCV hue (0..179) at the centre of each named colour.
HUES = {"red": 0, "orange": 15, "yellow": 30, "green": 60, "cyan": 90, "blue": 120, "purple": 140, "magenta": 150}
TOLERANCE = 12  # hue units either side (24 degrees)
PARAMS = {"hues": "opencv hsv, +-12 around the named colour", "vivid": "s>=80 and v>=60", "frames": "output"}


def named_colour(prompt: str | None) -> str | None:
    words = re.findall(r"[a-z]+", (prompt or "").lower())
    return next((w for w in words if w in HUES), None)


def share(frame: np.ndarray, hue: int) -> float:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    vivid = (hsv[..., 1] >= 80) & (hsv[..., 2] >= 60)
    if not vivid.any():
        return 0.0
    d = np.abs(hsv[..., 0].astype(np.int16) - hue)
    near = np.minimum(d, 180 - d) <= TOLERANCE
    return float((near & vivid).sum() / vivid.size)


def compute(frames: AlignedFrames) -> MetricResult:
    colour = named_colour(frames.prompt)
    if colour is None:
        return MetricResult(float("nan"), [float("nan")] * len(frames.out_a), dict(PARAMS))
    series = [share(f, HUES[colour]) for f in frames.out_a]
    return MetricResult(float(np.mean(series)), series, dict(PARAMS))


METRIC = Metric("prompt_colour", "share of vivid output pixels in the colour the prompt names", 0.0, 1.0,
                compute, PARAMS)
