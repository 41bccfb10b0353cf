"""The emulator's video engine: source clip + prompt + seed + ratio (+ reference) -> an H.264 mp4.

Geometry policy (written down because scores depend on it): the source is centre-cropped to the
output aspect, then scaled to the output size. The output size is the ratio's pixels (or the
source's, capped at 1280 on the long side, when there is no ratio), times `render_scale`.
Time policy: output frame j shows the source frame on screen at j / output_fps; only the first
`max_output_seconds` of the source are used (gen4_aleph: 5 s, as the real model is reported to).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..media.geometry import center_crop_box, even, parse_ratio
from ..media.probe import VideoInfo, probe_video, read_image_rgb
from ..media.reader import iter_frames
from ..media.writer import write_mp4
from .looks import LOOKS, draw_params, palette_transfer, pick_look, reference_stats, stable_hash

__all__ = [
    "CHARACTERS", "ModelCharacter", "RenderJob", "RenderResult", "character_for", "clear_decoded_sources",
    "output_size", "render", "render_frames",
]


@dataclass(frozen=True)
class ModelCharacter:
    """How an emulated model departs from a clean restyle: lower structure, more flicker."""

    look_strength: float   # blend of the look over the source (higher keeps less of the source)
    blur_sigma: float      # loss of fine structure
    jitter_px: float       # per-frame spatial wobble (hurts temporal consistency and warp error)
    flicker: float         # per-frame brightness jitter, as a fraction


CHARACTERS: dict[str, ModelCharacter] = {
    "aleph2": ModelCharacter(0.80, 0.0, 0.0, 0.004),
    "gen4_aleph": ModelCharacter(0.90, 0.8, 0.6, 0.012),
    "gen3a_turbo": ModelCharacter(1.00, 1.8, 2.0, 0.05),
}


def character_for(model: str) -> ModelCharacter:
    if model in CHARACTERS:
        return CHARACTERS[model]
    # A model added through a user catalog gets a stable, middling character of its own.
    rng = np.random.default_rng(stable_hash("character", model))
    return ModelCharacter(float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.3, 1.5)),
                          float(rng.uniform(0.2, 1.5)), float(rng.uniform(0.005, 0.04)))


@dataclass(frozen=True)
class RenderJob:
    source: str
    model: str
    prompt: str
    seed: int
    ratio: str | None
    output_fps: float
    max_output_seconds: float
    out_path: str
    reference: str | None = None
    render_scale: float = 1.0


@dataclass(frozen=True)
class RenderResult:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    look: str


def output_size(info: VideoInfo, ratio: str | None, render_scale: float) -> tuple[int, int]:
    w: float
    h: float
    if ratio and _pixels(ratio):
        w, h = parse_ratio(ratio)
        if max(w, h) <= 32:  # an aspect ("16:9"), not a size: the input's long side at that shape
            side = min(1280, max(info.width, info.height))
            w, h = (side, side * h / w) if w >= h else (side * w / h, side)
    else:  # none, or a named one ("adaptive", "auto_720p"): the output follows the input
        s = min(1.0, 1280 / max(info.width, info.height))
        w, h = info.width * s, info.height * s
    return even(w * render_scale), even(h * render_scale)


def _pixels(ratio: str) -> bool:
    w, sep, h = ratio.partition(":")
    return bool(sep) and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0


def _source_frames(info: VideoInfo, out_w: int, out_h: int) -> tuple[Iterator[np.ndarray], Callable]:
    """Decode the source scaled so that its centred crop is exactly out_w x out_h."""
    x, y, cw, ch = center_crop_box(info.width, info.height, out_w / out_h)
    scale = out_w / cw
    dec_w, dec_h = even(info.width * scale), even(info.height * scale)
    dec_w, dec_h = max(dec_w, out_w), max(dec_h, out_h)
    ox, oy = (dec_w - out_w) // 2, (dec_h - out_h) // 2

    def crop(frame: np.ndarray) -> np.ndarray:
        return frame[oy : oy + out_h, ox : ox + out_w]

    return _DECODED.frames(info, (dec_w, dec_h)), crop


class _DecodedSources:
    """Decoded source clips at render size, kept for the next task on the same input.

    Why: a sweep renders the same source dozens of times, and at small render scales decoding the
    full-size source is most of a render's cost. Inputs are stored content-addressed, so the path,
    mtime and size identify the bytes. Bounded by total bytes; a clip too big to keep is streamed.
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], list[np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._decoding: dict[tuple[Any, ...], threading.Lock] = {}

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def frames(self, info: VideoInfo, size: tuple[int, int]) -> Iterator[np.ndarray]:
        need = info.frame_count * size[0] * size[1] * 3
        if need > self.max_bytes // 2:
            return iter_frames(info.path, size)
        st = os.stat(info.path)
        key = (os.path.realpath(info.path), st.st_mtime_ns, st.st_size, size)
        with self._lock:
            gate = self._decoding.setdefault(key, threading.Lock())
        with gate:  # one decode per key; concurrent renders of the same source wait for it
            with self._lock:
                got = self._items.get(key)
                if got is not None:
                    self._items.move_to_end(key)
                    return iter(got)
            try:
                decoded = list(iter_frames(info.path, size))
                for frame in decoded:
                    frame.flags.writeable = False  # shared by every later render of this source
                with self._lock:
                    self._items[key] = decoded
                    self._bytes += sum(f.nbytes for f in decoded)
                    while self._bytes > self.max_bytes and len(self._items) > 1:
                        _, old = self._items.popitem(last=False)
                        self._bytes -= sum(f.nbytes for f in old)
            finally:  # a failed decode must not leave its gate behind
                with self._lock:
                    self._decoding.pop(key, None)
            return iter(decoded)


_DECODED = _DecodedSources()


def clear_decoded_sources() -> None:
    """Forget the decoded sources kept between renders (benchmarks time a cold render with it)."""
    _DECODED.clear()


def render(job: RenderJob, on_progress: Callable[[float], None] | None = None) -> RenderResult:
    """Transform and encode. The frames are a pure function of the job (see render_frames)."""
    info = probe_video(job.source, "videoUri")
    out_w, out_h = output_size(info, job.ratio, job.render_scale)
    Path(job.out_path).parent.mkdir(parents=True, exist_ok=True)
    count = write_mp4(job.out_path, render_frames(job, on_progress, info), job.output_fps)
    return RenderResult(job.out_path, out_w, out_h, job.output_fps, count, count / job.output_fps,
                        pick_look(job.prompt))


def render_frames(job: RenderJob, on_progress: Callable[[float], None] | None = None,
                  info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """The output frames, streamed: identical for identical jobs."""
    info = info or probe_video(job.source, "videoUri")
    out_w, out_h = output_size(info, job.ratio, job.render_scale)
    duration = min(info.duration_s, job.max_output_seconds)
    n_out = max(1, int(round(duration * job.output_fps)))
    look = pick_look(job.prompt)
    params = draw_params(look, job.prompt, job.seed)
    look_fn = LOOKS[look]
    char = character_for(job.model)
    ref = reference_stats(read_image_rgb(job.reference)) if job.reference else None
    frames_in, crop = _source_frames(info, out_w, out_h)

    def generate() -> Iterator[np.ndarray]:
        src_index = -1
        current: np.ndarray | None = None
        for j in range(n_out):
            t = j / job.output_fps
            want = min(info.frame_count - 1, int(t * info.fps + 1e-6))
            while src_index < want:
                try:
                    current = crop(next(frames_in))
                except StopIteration:
                    break
                src_index += 1
            assert current is not None
            yield _style_frame(current, t, j, params, look_fn, char, ref, job.seed)
            if on_progress and (j % 8 == 0 or j == n_out - 1):
                on_progress((j + 1) / n_out)

    return generate()


def _style_frame(src, t, j, params, look_fn, char: ModelCharacter, ref, seed: int) -> np.ndarray:
    styled = look_fn(src, params, t)
    if char.look_strength < 1.0:
        styled = cv2.addWeighted(styled, char.look_strength, src, 1.0 - char.look_strength, 0)
    if ref is not None:
        styled = palette_transfer(styled, ref[0], ref[1], 0.6)
    if char.blur_sigma > 0:
        styled = cv2.GaussianBlur(styled, (0, 0), char.blur_sigma)
    # Per-frame randomness is a pure function of (seed, frame index): the same inputs give the same frames.
    rng = np.random.default_rng(stable_hash("frame", seed, j))
    if char.jitter_px > 0:
        dx, dy = rng.normal(0, char.jitter_px, 2)
        m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        styled = cv2.warpAffine(styled, m, (styled.shape[1], styled.shape[0]), borderMode=cv2.BORDER_REFLECT)
    if char.flicker > 0:
        gain = 1.0 + float(rng.normal(0, char.flicker))
        styled = cv2.convertScaleAbs(styled, alpha=gain, beta=0)
    return styled
