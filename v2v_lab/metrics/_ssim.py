"""SSIM with Wang et al.'s settings, computed with OpenCV's Gaussian filter.

Same maths as skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1): an 11-tap Gaussian (truncate 3.5),
reflect borders, the 5-pixel border cropped before the mean, channels averaged, in float64
(float32 drifts to ~1e-6 through the variance cancellation).

Why it is split into per-frame moments and a per-pair step: the suite compares every sampled frame
with two or three others (source vs output, output t vs t+1, source t vs t+1). A frame's mean and
variance maps are computed once and reused by every pair it is in; only the cross term is per pair.
The arithmetic runs in place through OpenCV, because numpy's float64 temporaries cost more than the
filtering itself. OpenCV releases the GIL, so frames are processed on the metrics' shared threads (_pool.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np

from ._pool import parallel_map
from .base import SHARED_WANTED

_K1, _K2, _SIGMA, _WIN = 0.01, 0.03, 1.5, 11
_PAD = (_WIN - 1) // 2


class Moments(NamedTuple):
    """A frame in float64 with its local (Gaussian-weighted) mean and variance maps."""

    x: np.ndarray
    mean: np.ndarray
    var: np.ndarray


class _Workspace(threading.local):
    """Per-thread float64 buffers, reused from call to call.

    Why: every SSIM step makes full-frame float64 arrays (2.8 MB at 456x256x3); allocating them
    fresh costs a page fault per 4 KiB, which measured at more than the filtering itself.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, like: np.ndarray) -> np.ndarray:
        buf = self.buffers.get(name)
        if buf is None or buf.shape != like.shape:
            buf = self.buffers[name] = np.empty(like.shape, np.float64)
        return buf


_WORK = _Workspace()


def _blur(img: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    return cv2.GaussianBlur(img, (_WIN, _WIN), _SIGMA, dst=dst, borderType=cv2.BORDER_REFLECT)


def moments(frame: np.ndarray, slot: str = "a") -> Moments:
    """Moments of a uint8 frame, in this thread's buffers named by `slot`: valid until the next
    call with the same slot on the same thread."""
    x = _WORK.get(f"{slot}.x", frame)
    x[...] = frame
    tmp = cv2.multiply(x, x, dst=_WORK.get("tmp", frame))
    var = _blur(tmp, _WORK.get(f"{slot}.var", frame))
    mu = _blur(x, _WORK.get(f"{slot}.mean", frame))
    var -= cv2.multiply(mu, mu, dst=tmp)
    return Moments(x, mu, var)


def ssim_moments(a: Moments, b: Moments, data_range: float = 255.0) -> float:
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    tmp = _WORK.get("tmp", a.x)
    cov: np.ndarray = _blur(cv2.multiply(a.x, b.x, dst=tmp), _WORK.get("cov", a.x))
    num: np.ndarray = cv2.multiply(a.mean, b.mean, dst=_WORK.get("num", a.x))
    cov -= num
    # num = (2 mu_a mu_b + c1) * (2 cov + c2)
    num *= 2.0
    num += c1
    cov *= 2.0
    cov += c2
    num *= cov
    # den = (mu_a^2 + mu_b^2 + c1) * (var_a + var_b + c2)
    den: np.ndarray = cv2.multiply(a.mean, a.mean, dst=_WORK.get("den", a.x))
    den += cv2.multiply(b.mean, b.mean, dst=tmp)
    den += c1
    var_sum: np.ndarray = cv2.add(a.var, b.var, dst=tmp)
    var_sum += c2
    den *= var_sum
    num /= den
    return float(num[_PAD:-_PAD, _PAD:-_PAD].mean(dtype=np.float64))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of two RGB (or grey) uint8 frames."""
    return ssim_moments(moments(a, "a"), moments(b, "b"), data_range)


# Which frames each kind of SSIM pair compares, by AlignedFrames attribute.
PAIR_KINDS: dict[str, tuple[str, str]] = {
    "src_out": ("src_a", "out_a"),  # structure retention
    "out_out": ("out_a", "out_b"),  # output stability
    "src_src": ("src_a", "src_b"),  # the source's own stability
}


def ssim_by_kind(arrays: dict[str, np.ndarray], kinds: Sequence[str]) -> dict[str, list[float]]:
    """SSIM series for several pair kinds in one pass over the sample index.

    Each index is one job: its frames' moments are computed once, shared by every kind that uses
    them, and dropped when the job ends, so memory stays at a few frames per thread.
    """
    if not kinds:
        return {}
    n = len(next(iter(arrays.values())))

    def one(i: int) -> dict[str, float]:
        # Channel by channel: the same mean as over all channels at once (skimage averages the
        # channels' SSIMs, each over the same pixels), with working arrays a third the size,
        # which stay in cache. Measured 15% faster on 456x256 frames.
        frame = arrays[next(iter(arrays))][i]
        planes = frame.shape[2] if frame.ndim == 3 else 1
        totals = dict.fromkeys(kinds, 0.0)
        for c in range(planes):
            cached: dict[str, Moments] = {}

            def mom(name: str, c: int = c, cached: dict[str, Moments] = cached) -> Moments:
                if name not in cached:
                    img = arrays[name][i]
                    cached[name] = moments(img[..., c] if img.ndim == 3 else img, name)
                return cached[name]

            for k in kinds:
                totals[k] += ssim_moments(mom(PAIR_KINDS[k][0]), mom(PAIR_KINDS[k][1]))
        return {k: v / planes for k, v in totals.items()}

    rows = parallel_map(one, range(n))
    return {k: [row[k] for row in rows] for k in kinds}


def cached_ssim(frames: Any, kind: str) -> list[float]:
    """The SSIM series of one pair kind on AlignedFrames, computing together every kind the
    requested metrics declared (Metric.shared_work, gathered in frames.cache[SHARED_WANTED]) that is
    not cached yet."""
    cache = frames.cache
    if f"ssim.{kind}" not in cache:
        wanted = {kind} | {work.removeprefix("ssim.") for work in cache.get(SHARED_WANTED, ())}
        todo = [k for k in PAIR_KINDS if k in wanted and f"ssim.{k}" not in cache]
        arrays = {name: getattr(frames, name) for k in todo for name in PAIR_KINDS[k]}
        for k, series in ssim_by_kind(arrays, todo).items():
            cache[f"ssim.{k}"] = series
    return cache[f"ssim.{kind}"]


def prepare_source_ssim(src_a: np.ndarray, src_b: np.ndarray, cache: dict[str, Any]) -> None:
    cache["ssim.src_src"] = ssim_by_kind({"src_a": src_a, "src_b": src_b}, ["src_src"])["src_src"]
