"""structure: appearance-invariant structure retention, from where the edges are, not their colour.

Per time-aligned pair: the colour gradient energy of each frame (Sobel on each RGB channel after
a sigma-0.5 Gaussian, the sum of squares over x, y and channels), then the Pearson correlation of
the source's map with the output's over the frame, floored at 0; the mean over the sampled pairs.
Range [0, 1], higher keeps more of the source's structure. Correlation is blind to a gain or
offset of the maps, so a colour grade, a hue rotation or a change of contrast leave it at 1; what
moves it is edges appearing, vanishing, moving or losing their sharpness.

Version 2. Version 1 (until issue 31) correlated the gradient magnitude (not squared) after a
sigma-1 Gaussian. On footage outside the repository it scored a blur and a stylisation alike
(0.592 and 0.593), and on the shipped clips a sigma-3 blur came within 0.06 of the stylisation.
Squaring weights a pixel by its edge strength, so the strong edges a stylisation keeps sharp
count most and a blur, which lowers and spreads them, loses more; the finer presmoothing sees the
sharpness a blur removes. bench/structure_candidates.py measured it against multi-scale
versions (which narrow the gap: the coarse levels forgive a blur), orientation agreement, a
band-pass and finer or coarser presmoothing; docs/metrics.md has the comparison. The version is
in the params, so a value of version 1 is never taken for one of version 2 (rescore's `.v<hash>`).

What the validity table shows: colour grade, hue rotation, grayscale and posterize score 0.97 to
1.00, the cartoon stylisation 0.78 to 0.88 (its flattened texture is lost structure); another
clip, a mirror image and shuffled tiles 0.00 to 0.04, a smooth warp of 5% about 0.06, heavy blur
0.24 to 0.28. It does not respond to brightness flicker (about 1.0). Jitter and temporal shuffle
lower it only because the output frame no longer lines up with the source frame of its time;
dropped and repeated frames less (0.86 to 0.94): temporal damage is for motion_epe and warp_error
to catch. Its price, being sharper: an output half a pixel off its source reads 0.89 to 0.94 on
the clips and stills measured (version 1: 0.96 to 0.98), a JPEG at quality 25 0.92 to 0.98.
"""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np

from ..media.sampling import AlignedFrames
from ._pool import parallel_map
from .base import Metric, MetricResult, mean, register

__all__ = ["METRIC", "PARAMS", "compute", "correlation", "gradient_energy", "prepare_source"]

PRESMOOTH_SIGMA = 0.5
PARAMS = {"version": 2, "feature": "colour gradient energy (sobel 3x3 per rgb channel, squared, summed)",
          "presmooth_sigma": PRESMOOTH_SIGMA, "comparison": "pearson correlation per frame, floored at 0",
          "pairs": "source_t vs output_t"}
_BORDER = 2  # Sobel and the blur see the frame's edge as a reflection: not structure


def gradient_energy(frame: np.ndarray) -> np.ndarray:
    """The squared colour gradient: gx^2 + gy^2 summed over the channels (no square root: squared,
    a pixel counts by its edge's strength, which is what tells a blur from a stylisation)."""
    # In place through OpenCV: numpy's temporaries and its strided channel sum cost a third more.
    x = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), PRESMOOTH_SIGMA)
    gx = cv2.Sobel(x, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(x, cv2.CV_32F, 0, 1)
    energy: np.ndarray = cv2.multiply(gx, gx)
    energy = cv2.add(energy, cv2.multiply(gy, gy), dst=energy)
    if energy.ndim == 3:
        energy = cv2.transform(energy, np.ones((1, energy.shape[2]), np.float32))  # sum over channels
    return energy[_BORDER:-_BORDER, _BORDER:-_BORDER]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps, floored at 0 (OpenCV's means accumulate in float64)."""
    mean_a, std_a = (float(v[0][0]) for v in cv2.meanStdDev(a))
    mean_b, std_b = (float(v[0][0]) for v in cv2.meanStdDev(b))
    if std_a == 0 or std_b == 0:
        return 0.0  # a flat frame has no structure to keep or to match: 0, not a division by zero
    cov = float(cv2.mean(cv2.multiply(a, b))[0]) - mean_a * mean_b
    return max(0.0, min(1.0, cov / (std_a * std_b)))


def prepare_source(src_a: np.ndarray, src_b: np.ndarray, cache: dict[str, Any]) -> None:
    cache["structure.source"] = parallel_map(gradient_energy, src_a)


def compute(frames: AlignedFrames) -> MetricResult:
    source = cast("list[np.ndarray] | None", frames.cache.get("structure.source"))
    source = source or parallel_map(gradient_energy, frames.src_a)
    series = parallel_map(lambda s, o: correlation(s, gradient_energy(o)), source, frames.out_a)
    return MetricResult(mean(series), series, dict(PARAMS))


METRIC = register(Metric("structure", "correlation of source and output colour gradient energy, 0..1",
                         0.0, 1.0, compute, PARAMS, prepare_source=prepare_source, direction="higher"))
