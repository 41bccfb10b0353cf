"""Controlled edits of a clip, in three families, for the validity table.

Each edit takes the whole clip (T x H x W x 3, RGB uint8) and returns the edited clip, same shape
and length, so scoring sees exactly one change at a time:

- appearance: the look changes, the shot's structure and motion do not. A good video-to-video
  edit lives here; a structure score should stay near 1, a motion score near the identity's.
- structural: the shot's layout is damaged (another clip, mirrored, warped, shuffled, blurred).
- temporal: each frame is fine on its own, the sequence is not (flicker, jitter, dropped and
  repeated frames, shuffled order).

Random edits draw from a generator seeded by the edit's name, so the table is reproducible.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

__all__ = ["EDITS", "FAMILIES", "Edit", "Family", "apply_edit"]

Family = Literal["identity", "appearance", "structural", "temporal"]
FAMILIES: tuple[Family, ...] = ("identity", "appearance", "structural", "temporal")
Clip = np.ndarray


@dataclass(frozen=True)
class Edit:
    name: str
    family: Family
    description: str
    # (clip, another clip of the same shape) -> edited clip; `other` is used by "another clip" only.
    fn: Callable[[Clip, Clip], Clip]


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _per_frame(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Clip, Clip], Clip]:
    return lambda clip, other: np.stack([fn(f) for f in clip])


def _lut(table: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    lut = np.clip(table, 0, 255).astype(np.uint8)
    return lambda f: cv2.LUT(f, lut)


def colour_grade(frame: np.ndarray) -> np.ndarray:
    """A teal-and-orange grade: per-channel gamma and gain, as a colourist's curves would."""
    x = np.arange(256, dtype=np.float64) / 255.0
    curves = [255 * (0.08 + 0.95 * x ** 0.8), 255 * (0.02 + 0.9 * x ** 1.05), 255 * (0.12 + 0.75 * x ** 1.3)]
    lut = np.clip(np.stack(curves, axis=1), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(frame, lut)


def hue_rotation(frame: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 60) % 180  # OpenCV hue is 0..179: +60 is 120 degrees
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def grayscale(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def stylise(frame: np.ndarray) -> np.ndarray:
    """A cartoon look: repeated bilateral filtering (flat regions, kept edges), quantised colour."""
    x = frame
    for _ in range(3):
        x = cv2.bilateralFilter(x, 7, 40, 5)
    return (x // 48) * 48 + 24


def _another_clip(clip: Clip, other: Clip) -> Clip:
    return other


def _warp(clip: Clip, other: Clip) -> Clip:
    """A smooth static displacement of about 5% of the width, like a lens or a morph."""
    h, w = clip.shape[1:3]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    amp = 0.05 * w
    mx = gx + amp * np.sin(2 * np.pi * gy / h * 1.5 + 0.7)
    my = gy + amp * np.sin(2 * np.pi * gx / w * 1.2 + 1.9)
    return np.stack([cv2.remap(f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for f in clip])


def _shuffle_blocks(clip: Clip, other: Clip) -> Clip:
    """The frame cut into a 4 x 4 grid of tiles, the tiles permuted (the same way in every frame)."""
    t, h, w = clip.shape[:3]
    bh, bw = h // 4, w // 4
    order = _rng("shuffle_blocks").permutation(16)
    out = clip.copy()
    for dst, src in enumerate(order):
        dy, dx, sy, sx = (dst // 4) * bh, (dst % 4) * bw, (src // 4) * bh, (src % 4) * bw
        out[:, dy:dy + bh, dx:dx + bw] = clip[:, sy:sy + bh, sx:sx + bw]
    return out


def _heavy_blur(clip: Clip, other: Clip) -> Clip:
    sigma = clip.shape[1] / 40  # 6.4 px at 256 lines: detail gone, layout left
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in clip])


def _flicker(clip: Clip, other: Clip) -> Clip:
    gains = _rng("flicker").uniform(0.7, 1.3, len(clip))
    return np.stack([cv2.convertScaleAbs(f, alpha=float(g)) for f, g in zip(clip, gains, strict=True)])


def _jitter(clip: Clip, other: Clip) -> Clip:
    """Each frame shifted by up to 2.5% of its height: a shaky camera that the source did not have."""
    rng = _rng("jitter")
    amp = clip.shape[1] * 0.025
    out = []
    for f in clip:
        dx, dy = rng.uniform(-amp, amp, 2)
        m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        out.append(cv2.warpAffine(f, m, (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def _drop_repeat(clip: Clip, other: Clip) -> Clip:
    """Every other frame dropped and the one before shown twice: half the frame rate, same length."""
    return clip[(np.arange(len(clip)) // 2) * 2]


def _temporal_shuffle(clip: Clip, other: Clip) -> Clip:
    return clip[_rng("temporal_shuffle").permutation(len(clip))]


EDITS: tuple[Edit, ...] = (
    Edit("identity", "identity", "the source itself, re-encoded like every edit", lambda clip, other: clip),
    Edit("colour_grade", "appearance", "teal-and-orange grade: per-channel gamma and gain",
         _per_frame(colour_grade)),
    Edit("hue_rotation", "appearance", "hue turned by 120 degrees", _per_frame(hue_rotation)),
    Edit("grayscale", "appearance", "colour removed", _per_frame(grayscale)),
    Edit("posterize", "appearance", "3 bits per channel (8 levels)", _per_frame(_lut((np.arange(256) // 32) * 32 + 16))),
    Edit("stylise", "appearance", "cartoon: 3 bilateral filters, colour quantised to 6 levels",
         _per_frame(stylise)),
    Edit("another_clip", "structural", "a different clip of the same size and length", _another_clip),
    Edit("hflip", "structural", "mirrored left to right", lambda clip, other: clip[:, :, ::-1].copy()),
    Edit("warp", "structural", "smooth static geometric warp, amplitude 5% of the width", _warp),
    Edit("shuffle_blocks", "structural", "4 x 4 tiles permuted", _shuffle_blocks),
    Edit("heavy_blur", "structural", "Gaussian blur, sigma 1/40 of the height", _heavy_blur),
    Edit("flicker", "temporal", "per-frame brightness gain, uniform in 0.7..1.3", _flicker),
    Edit("jitter", "temporal", "per-frame shift up to 2.5% of the height", _jitter),
    Edit("drop_repeat", "temporal", "every other frame dropped, the previous one repeated", _drop_repeat),
    Edit("temporal_shuffle", "temporal", "frames in random order", _temporal_shuffle),
)


def apply_edit(edit: Edit | str, clip: Clip, other: Clip | None = None) -> Clip:
    chosen = edit if isinstance(edit, Edit) else {e.name: e for e in EDITS}[edit]
    return chosen.fn(clip, clip if other is None else other)
