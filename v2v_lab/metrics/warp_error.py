"""warp_error: the flow warping error of Lai et al. (2018), with the source's optical flow.

Flow runs between consecutive *source* frames, forward and backward, with OpenCV DIS's ultrafast
preset: on the demo clip the source warped by its own flow leaves a residual of 1.8e-4 (medium:
1.1e-4), a tenth of a typical output's error, at a ninth of medium's cost. Pixels failing Ruder et
al.'s forward-backward check or on motion boundaries, and pixels whose flow leaves the frame, are
masked out. Output frame t+1 is warped back onto t along the forward flow; the error is the masked
mean squared difference of RGB in [0, 1], over pixel x channel entries. Lower is better; the raw
value is logged (papers often print it x 10^3).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import cv2
import numpy as np

from ..media.sampling import AlignedFrames
from ._pool import parallel_map
from .base import Metric, MetricResult, mean, register

__all__ = [
    "METRIC", "PARAMS", "SourceMotion", "compute", "flow", "non_occluded", "prepare_source", "source_motion",
    "source_motions", "warped_error",
]

PARAMS = {"flow": "opencv_dis_ultrafast", "flow_on": "source", "occlusion": "ruder2016 fw-bw + motion boundary",
          "scale": "mse_rgb01"}


def flow(a_gray: np.ndarray, b_gray: np.ndarray) -> np.ndarray:
    # A fresh DIS object per call: the instances are not safe to share between threads.
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    # None: DIS allocates the flow itself (the C++ API allows it; OpenCV's Python stubs do not say so).
    return np.asarray(dis.calc(a_gray, b_gray, None))  # type: ignore[call-overload]


def _sample(field: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    return cv2.remap(field, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _forward_diff_sq(c: np.ndarray) -> np.ndarray:
    """Squared forward differences along x plus along y (zero past the last column / row)."""
    out = np.zeros_like(c)
    dx = c[:, 1:] - c[:, :-1]
    dy = c[1:, :] - c[:-1, :]
    out[:, :-1] += dx * dx
    out[:-1, :] += dy * dy
    return out


def non_occluded(fw: np.ndarray, bw: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """fx, fy: where each pixel of frame t lands in frame t+1 (grid + forward flow).

    Works on the u and v planes separately: numpy reductions over a last axis of 2 are slow.
    """
    h, w = fw.shape[:2]
    u, v = cv2.split(fw)
    bu, bv = cv2.split(_sample(bw, fx, fy))
    mag_f = u * u + v * v
    su, sv = u + bu, v + bv
    occ1 = su * su + sv * sv > 0.01 * (mag_f + bu * bu + bv * bv) + 0.5
    occ2 = _forward_diff_sq(u) + _forward_diff_sq(v) > 0.01 * mag_f + 0.002
    outside = (fx < 0) | (fx > w - 1) | (fy < 0) | (fy > h - 1)
    return ~(occ1 | occ2 | outside)


class SourceMotion(NamedTuple):
    """Where each pixel of source frame t lands in t+1 (fx, fy), which pixels to trust, and the
    forward flow itself (motion_epe compares the output's with it)."""

    fx: np.ndarray
    fy: np.ndarray
    valid: np.ndarray
    flow: np.ndarray


def source_motion(src_a: np.ndarray, src_b: np.ndarray) -> SourceMotion:
    ga = cv2.cvtColor(src_a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(src_b, cv2.COLOR_RGB2GRAY)
    fw, bw = flow(ga, gb), flow(gb, ga)
    h, w = fw.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fx, fy = gx + fw[..., 0], gy + fw[..., 1]
    return SourceMotion(fx, fy, non_occluded(fw, bw, fx, fy), fw)


def warped_error(motion: SourceMotion, out_a: np.ndarray, out_b: np.ndarray) -> float:
    warped = _sample(out_b.astype(np.float32) / 255.0, motion.fx, motion.fy)
    diff = (warped - out_a.astype(np.float32) / 255.0) ** 2
    mask = motion.valid[..., None].astype(np.float32)
    denom = float(mask.sum()) * 3.0
    if denom == 0:
        return float(diff.mean())
    return float((diff * mask).sum() / denom)


def prepare_source(src_a: np.ndarray, src_b: np.ndarray, cache: dict[str, Any]) -> None:
    # Flow needs only the source, so it is computed while the output is still decoding.
    cache["warp.motion"] = parallel_map(source_motion, src_a, src_b)


def source_motions(frames: AlignedFrames) -> list[SourceMotion]:
    """The source's motion for every pair: from the cache (prepare_source, or whichever of
    warp_error and motion_epe ran first), else computed now and cached for the other."""
    cached = cast("list[SourceMotion] | None", frames.cache.get("warp.motion"))
    motion = cached or parallel_map(source_motion, frames.src_a, frames.src_b)
    frames.cache["warp.motion"] = motion
    return motion


def compute(frames: AlignedFrames) -> MetricResult:
    series = parallel_map(warped_error, source_motions(frames), frames.out_a, frames.out_b)
    return MetricResult(mean(series), series, dict(PARAMS))


METRIC = register(Metric("warp_error", "masked MSE of output t+1 warped onto t by source flow (RGB in [0,1])",
                         1.0, 0.0, compute, PARAMS, prepare_source=prepare_source, direction="lower"))
