"""Time-aligned frame pairs from a source and an output that may differ in fps, length, size and aspect.

Policy, written down because every score depends on it:
- Time: N pair times are spread uniformly over the span both clips cover. Each pair is two
  consecutive frames of the output (k, k+1); from the source we take the frames on screen at those
  same two instants (frame shown at t = floor(t * fps)). Metrics on consecutive frames therefore
  see one output frame step, never a subsampled gap.
- Space: the output is decoded with its short side = `size` (never upscaled). The source is
  centre-cropped to the output's aspect (crop="center") or squeezed whole into it (crop="stretch"),
  and brought to exactly the output's analysis size. Decoders scale while decoding.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..scoring_config import CROP_POLICIES, DEFAULT_SCORING, ScoringConfig
from .geometry import center_crop_box, even, fit_short_side
from .probe import VideoInfo, probe_video
from .reader import open_video

__all__ = [
    "CROP_POLICIES", "AlignedFrames", "check_sampling", "clear_source_cache", "pair_times", "sample_aligned",
    "shown_at",
]



@dataclass
class AlignedFrames:
    """Pairs of consecutive frames, RGB uint8, all at one analysis size (h, w)."""

    src_a: np.ndarray
    src_b: np.ndarray
    out_a: np.ndarray
    out_b: np.ndarray
    times_s: list[float]
    source: VideoInfo
    output: VideoInfo
    params: dict[str, object] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict, repr=False)
    # The text the output was generated from, when the caller knows it: for metrics of prompt
    # adherence (a plugin with CLIP weights, say). The built-in metrics do not read it.
    prompt: str | None = None


def pair_times(source: VideoInfo, output: VideoInfo, frames: int) -> tuple[list[int], list[float]]:
    """Output frame indices k (each used with k+1) and their show times, spread over the shared span."""
    span = min(source.duration_s, output.duration_s)
    step = 1.0 / output.fps
    last_k = max(0, min(output.frame_count - 2, int((span - step) * output.fps + 1e-6)))
    ks = sorted({min(last_k, int(((i + 0.5) / frames) * (last_k + 1))) for i in range(frames)})
    return ks, [k / output.fps for k in ks]


def shown_at(info: VideoInfo, t: float) -> int:
    return min(info.frame_count - 1, max(0, int(t * info.fps + 1e-6)))


def _source_decode_size(src: VideoInfo, aw: int, ah: int, crop: str) -> tuple[int, int]:
    if crop == "stretch":
        return aw, ah
    _, _, cw, ch = center_crop_box(src.width, src.height, aw / ah)
    scale = aw / cw
    return max(aw, even(src.width * scale)), max(ah, even(src.height * scale))


def _fit(frames: np.ndarray, aw: int, ah: int, crop: str) -> np.ndarray:
    h, w = frames.shape[1:3]
    if crop == "center" and (w, h) != (aw, ah):
        x, y, cw, ch = center_crop_box(w, h, aw / ah)
        frames = frames[:, y : y + ch, x : x + cw]
    if frames.shape[1:3] != (ah, aw):
        frames = np.stack([cv2.resize(f, (aw, ah), interpolation=cv2.INTER_AREA) for f in frames])
    return frames


class _SourceCache:
    """A few recently sampled sources, with what on_source computed from them (LRU, thread-safe)."""

    def __init__(self, entries: int = 4):
        self.entries = entries
        self._items: OrderedDict[tuple[Any, ...], tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[np.ndarray, dict[str, Any]] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[Any, ...], item: tuple[np.ndarray, dict[str, Any]]) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_SOURCE_CACHE = _SourceCache()


def clear_source_cache() -> None:
    """Forget sampled sources (for benchmarks that time a cold score)."""
    _SOURCE_CACHE.clear()


def _source_key(info: VideoInfo, idx: list[int], aw: int, ah: int, crop: str, backend: str,
                extra: str) -> tuple[Any, ...]:
    # The file's identity includes mtime and size, so an edited source is never served stale.
    st = os.stat(info.path)
    return (os.path.realpath(info.path), st.st_mtime_ns, st.st_size, tuple(idx), aw, ah, crop, backend, extra)


def check_sampling(frames: int, size: int, crop: str) -> ScoringConfig:
    """Refuse sampling settings outside ScoringConfig's ranges, naming the field (before any decode,
    or any job): the same ranges, in the same words, as the spec and the CLI."""
    return ScoringConfig(frames, size, crop)


def sample_aligned(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    frames: int = DEFAULT_SCORING.frames,
    size: int = DEFAULT_SCORING.size,
    crop: str = DEFAULT_SCORING.crop,
    backend: str = "auto",
    on_source: Callable[[np.ndarray, np.ndarray, dict[str, Any]], None] | None = None,
    on_source_key: str = "",
    sequence_fps: float | None = None,
) -> AlignedFrames:
    """Sample aligned frame pairs.

    `on_source(src_a, src_b, cache)` runs as soon as the source's frames are ready, while the
    output is still decoding, so work that needs only the source (its optical flow, its own
    frame-to-frame SSIM) overlaps the other decode; it fills `cache`. `on_source_key` names what
    it computes: the source's frames and that work are kept (a few entries, keyed by the source
    file's identity and the sampling) and reused when the next output of the same source is
    scored with the same timing and size, as every cell of a sweep on one source is.

    sequence_fps: the frame rate of an output that is a .zip of PNG frames (the model's
    `output_fps`; see sequence.py), which carries none of its own. Real videos keep theirs.
    """
    check_sampling(frames, size, crop)
    src_info = probe_video(source, "source")
    out_info = probe_video(output, "output", sequence_fps=sequence_fps)
    if out_info.frame_count < 2 or src_info.frame_count < 1:
        raise InputError("output", str(output), "a clip of at least 2 frames")
    aw, ah = fit_short_side(out_info.width, out_info.height, size)
    ks, times = pair_times(src_info, out_info, frames)
    out_idx = [k for k in ks] + [k + 1 for k in ks]
    t_b = [(k + 1) / out_info.fps for k in ks]
    src_idx = [shown_at(src_info, t) for t in times] + [shown_at(src_info, t) for t in t_b]

    n = len(ks)
    key = _source_key(src_info, src_idx, aw, ah, crop, backend, on_source_key)
    cached = _SOURCE_CACHE.get(key)
    # With the source cached, the output's decode is the only one running: give it every core.
    out_reader = open_video(output, (aw, ah), backend=backend, info=out_info, field="output",
                            threads=0 if cached else 1)
    cache: dict[str, Any] = dict(cached[1]) if cached else {}

    def source_side() -> np.ndarray:
        if cached is not None:
            return cached[0]
        src_reader = open_video(source, _source_decode_size(src_info, aw, ah, crop), backend=backend,
                                info=src_info, field="source")
        src = _fit(src_reader.get_frames(src_idx), aw, ah, crop)
        src.flags.writeable = False  # shared with later calls through the cache
        if on_source is not None:
            on_source(src[:n], src[n:], cache)
        _SOURCE_CACHE.put(key, (src, dict(cache)))
        return src

    # The two decodes are independent and release the GIL: run them side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        out_job = pool.submit(out_reader.get_frames, out_idx)
        src_job = pool.submit(source_side)
        out = _fit(out_job.result(), aw, ah, "stretch")
        src = src_job.result()
    params = {"frames": n, "analysis_size": f"{aw}x{ah}", "crop": crop, "decoder": out_reader.backend,
              "time_alignment": "output frame pairs, source frame shown at the same instant"}
    return AlignedFrames(src[:n], src[n:], out[:n], out[n:], times, src_info, out_info, params, cache)
