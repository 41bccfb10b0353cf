"""SSIM with Wang et al.'s settings, computed with OpenCV's Gaussian filter.

Same maths as skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1): an 11-tap Gaussian (truncate 3.5),
reflect borders, the 5-pixel border cropped before the mean, channels averaged, in float64
(float32 drifts to ~1e-6 through the variance cancellation). OpenCV's filter releases the GIL, so
frame pairs are scored on parallel threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

_K1, _K2, _SIGMA, _WIN = 0.01, 0.03, 1.5, 11
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="v2v-metrics")


def _blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (_WIN, _WIN), _SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    ux, uy = _blur(x), _blur(y)
    vx = _blur(x * x) - ux * ux
    vy = _blur(y * y) - uy * uy
    vxy = _blur(x * y) - ux * uy
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (_WIN - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean(dtype=np.float64))


def ssim_pairs(a: np.ndarray, b: np.ndarray) -> list[float]:
    """SSIM of a[i] against b[i] for every i, on the metrics thread pool."""
    return list(_POOL.map(ssim, a, b))


def parallel_map(fn, *iterables) -> list:
    return list(_POOL.map(fn, *iterables))
