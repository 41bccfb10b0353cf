"""warp_error: the flow warping error of Lai et al. (2018), with the source's optical flow.

Flow (OpenCV DIS, medium preset) is computed between consecutive *source* frames, forward and
backward. Pixels failing Ruder et al.'s forward-backward check or on motion boundaries, and pixels
whose flow leaves the frame, are masked out. Output frame t+1 is warped back onto t along the
forward flow; the error is the masked mean squared difference of RGB in [0, 1], over pixel x
channel entries. Lower is better; the raw value is logged (papers often print it x 10^3).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..media.sampling import AlignedFrames
from ._ssim import parallel_map
from .base import Metric, MetricResult, mean, register

PARAMS = {"flow": "opencv_dis_medium", "flow_on": "source", "occlusion": "ruder2016 fw-bw + motion boundary",
          "scale": "mse_rgb01"}


def _flow(a_gray: np.ndarray, b_gray: np.ndarray) -> np.ndarray:
    # A fresh DIS object per call: the instances are not safe to share between threads.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a_gray, b_gray, None)


def _sample(field: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    return cv2.remap(field, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def non_occluded(fw: np.ndarray, bw: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """fx, fy: where each pixel of frame t lands in frame t+1 (grid + forward flow)."""
    h, w = fw.shape[:2]
    bw_w = _sample(bw, fx, fy)
    sum_sq = ((fw + bw_w) ** 2).sum(-1)
    occ1 = sum_sq > 0.01 * ((fw**2).sum(-1) + (bw_w**2).sum(-1)) + 0.5
    du_x = np.zeros_like(fw[..., 0])
    du_y = np.zeros_like(du_x)
    dv_x = np.zeros_like(du_x)
    dv_y = np.zeros_like(du_x)
    du_x[:, :-1] = fw[:, 1:, 0] - fw[:, :-1, 0]
    dv_x[:, :-1] = fw[:, 1:, 1] - fw[:, :-1, 1]
    du_y[:-1, :] = fw[1:, :, 0] - fw[:-1, :, 0]
    dv_y[:-1, :] = fw[1:, :, 1] - fw[:-1, :, 1]
    occ2 = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * (fw**2).sum(-1) + 0.002
    outside = (fx < 0) | (fx > w - 1) | (fy < 0) | (fy > h - 1)
    return ~(occ1 | occ2 | outside)


def pair_error(src_a, src_b, out_a, out_b) -> float:
    ga = cv2.cvtColor(src_a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(src_b, cv2.COLOR_RGB2GRAY)
    fw, bw = _flow(ga, gb), _flow(gb, ga)
    h, w = fw.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fx, fy = gx + fw[..., 0], gy + fw[..., 1]
    noc = non_occluded(fw, bw, fx, fy)
    warped = _sample(out_b.astype(np.float32) / 255.0, fx, fy)
    diff = (warped - out_a.astype(np.float32) / 255.0) ** 2
    mask = noc[..., None].astype(np.float32)
    denom = float(mask.sum()) * 3.0
    if denom == 0:
        return float(diff.mean())
    return float((diff * mask).sum() / denom)


def compute(frames: AlignedFrames) -> MetricResult:
    series = parallel_map(pair_error, frames.src_a, frames.src_b, frames.out_a, frames.out_b)
    return MetricResult(mean(series), series, dict(PARAMS))


METRIC = register(Metric("warp_error", "masked MSE of output t+1 warped onto t by source flow (RGB in [0,1])",
                         1.0, 0.0, compute, PARAMS))
