"""Where an emulated output's pixels come from: its size (ratio, resolution, target aspect, draft) and
how the source is fitted to it (centre crop, or letterboxed and outpainted), at each output time.

Size policy (scores depend on it, so it is written down):
- a ratio that is a size ("1280:720"): that size;
- a ratio that is an aspect ("16:9", hailuo3): that aspect at the resolution's short side (768p:
  768, 2k: 1440), else at the input's long side capped at 1280;
- a named ratio ("auto_720p", kling_4) or "adaptive": the input's aspect at that short side;
- aleph2's target_aspect_ratio: that aspect at the input's long side (capped at 1280), the whole
  source letterboxed inside and the bands filled by a blurred extension of it (the outpainting);
- no ratio: the input's size, capped at 1280 on the long side;
- a draft: the same aspect at 480p. Then times render_scale, both sides even.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..media.geometry import center_crop_box, even, parse_ratio
from ..media.probe import VideoInfo

__all__ = ["DRAFT_SHORT_SIDE", "LONG_SIDE_CAP", "NAMED_SHORT_SIDE", "RESOLUTION_SHORT_SIDE", "Framing",
           "SourceCursor", "plan_framing"]

LONG_SIDE_CAP = 1280
DRAFT_SHORT_SIDE = 480
# hailuo3's resolution values (the deprecated capitals too) and kling_4's named ratios, as short sides.
RESOLUTION_SHORT_SIDE = {"768p": 768, "768P": 768, "2k": 1440, "2K": 1440}
NAMED_SHORT_SIDE = {"auto_720p": 720, "auto_1080p": 1080}


@dataclass(frozen=True)
class Framing:
    width: int
    height: int
    fit: str = "crop"   # crop: fill the frame, cutting the source's overflow; pad: letterbox + outpaint


def _size_ratio(ratio: str | None) -> tuple[int, int] | None:
    w, sep, h = (ratio or "").partition(":")
    if sep and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
        return int(w), int(h)
    return None


def _at_short_side(aspect: float, short: float) -> tuple[float, float]:
    return (short * aspect, short) if aspect >= 1 else (short, short / aspect)


def _at_long_side(aspect: float, long: float) -> tuple[float, float]:
    return (long, long / aspect) if aspect >= 1 else (long * aspect, long)


def plan_framing(info: VideoInfo, ratio: str | None, render_scale: float, *, resolution: str | None = None,
                 target_aspect: str | None = None, draft: bool = False) -> Framing:
    """The output's size and fit (see the module's docstring)."""
    source_aspect = info.width / info.height
    capped_long = min(LONG_SIDE_CAP, max(info.width, info.height))
    fit = "crop"
    pixels = _size_ratio(ratio)
    w: float
    h: float
    if pixels and max(pixels) > 32:
        w, h = pixels
    else:
        aspect = pixels[0] / pixels[1] if pixels else source_aspect
        if target_aspect and not pixels:
            tw, th = parse_ratio(target_aspect)
            aspect, fit = tw / th, "pad"
        short = RESOLUTION_SHORT_SIDE.get(resolution or "") or NAMED_SHORT_SIDE.get(ratio or "")
        w, h = _at_short_side(aspect, short) if short else _at_long_side(aspect, capped_long)
    if draft:
        w, h = _at_short_side(w / h, DRAFT_SHORT_SIDE)
    return Framing(even(w * render_scale), even(h * render_scale), fit)


def _outpainted(fitted: np.ndarray, width: int, height: int) -> np.ndarray:
    """The source letterboxed in the middle of width x height; the bands hold a heavily blurred,
    stretched copy of it, as an outpainting model's plausible (and structure-free) continuation."""
    tiny = cv2.resize(fitted, (max(2, width // 16), max(2, height // 16)), interpolation=cv2.INTER_AREA)
    canvas = cv2.resize(cv2.GaussianBlur(tiny, (0, 0), 1.5), (width, height), interpolation=cv2.INTER_LINEAR)
    fh, fw = fitted.shape[:2]
    y, x = (height - fh) // 2, (width - fw) // 2
    canvas[y : y + fh, x : x + fw] = fitted
    return canvas


class SourceCursor:
    """The source frame on screen at output time t, fitted to the output's framing. Frames are
    read forward; past the source's end the source plays again from its start (a cut), which is
    how an output asked to be longer than its input gets its pictures."""

    def __init__(self, info: VideoInfo, framing: Framing,
                 frames: Callable[[VideoInfo, tuple[int, int]], Iterator[np.ndarray]]):
        self.info = info
        self.framing = framing
        self._open = frames
        self._decode_size, self._fit = self._plan()
        self._frames: Iterator[np.ndarray] = iter(())
        self._index = -1
        self._current: np.ndarray | None = None

    def _plan(self) -> tuple[tuple[int, int], Callable[[np.ndarray], np.ndarray]]:
        info, out_w, out_h = self.info, self.framing.width, self.framing.height
        if self.framing.fit == "pad":
            s = min(out_w / info.width, out_h / info.height)
            dec_w, dec_h = min(out_w, even(info.width * s)), min(out_h, even(info.height * s))
            return (dec_w, dec_h), lambda frame: _outpainted(frame, out_w, out_h)
        # crop: decode scaled so that the centred crop is exactly out_w x out_h
        x, y, cw, ch = center_crop_box(info.width, info.height, out_w / out_h)
        scale = out_w / cw
        dec_w, dec_h = max(even(info.width * scale), out_w), max(even(info.height * scale), out_h)
        ox, oy = (dec_w - out_w) // 2, (dec_h - out_h) // 2
        return (dec_w, dec_h), lambda frame: frame[oy : oy + out_h, ox : ox + out_w]

    def at(self, t: float) -> np.ndarray:
        info = self.info
        want = int((t % max(info.duration_s, 1e-6)) * info.fps + 1e-6)
        want = min(info.frame_count - 1, want)
        if want < self._index:  # looped: start the source again
            self._frames, self._index = iter(()), -1
        if self._index < 0:
            self._frames = self._open(info, self._decode_size)
        while self._index < want:
            try:
                self._current = self._fit(next(self._frames))
            except StopIteration:
                break  # a source shorter than its header says: hold its last frame
            self._index += 1
        assert self._current is not None, "the source has no frames"
        return self._current
