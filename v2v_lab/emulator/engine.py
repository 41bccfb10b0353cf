"""The emulator's video engine: source clip + prompt + seed + a model's fields -> the model's deliverable.

What each field renders (so sweeps over it have something to measure): the output's length from
`duration` (ModelSpec.expected_output_seconds decides it, in the state); its size and framing from
`ratio`, `resolution`, `target_aspect_ratio` and `draft` (framing.py); each keyframe's palette near
its time; an AAC track when `audio` is true (sound.py); the container and codec from
`output_format` and `prores_profile` (media/writer.py). Each model has a character of its own.
Time policy: output frame j shows the source frame on screen at j / output_fps; an output longer
than its input plays the input again from the start.
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

from ..media.probe import VideoInfo, probe_video, read_image_rgb
from ..media.reader import iter_frames
from ..media.writer import FORMATS, prores_format, write_png_zip, write_video
from .framing import Framing, SourceCursor, plan_framing
from .looks import LOOKS, draw_params, palette_transfer, pick_look, reference_stats, stable_hash
from .sound import soundtrack

__all__ = [
    "CHARACTERS", "Keyframe", "ModelCharacter", "RenderJob", "RenderResult", "character_for",
    "clear_decoded_sources", "output_size", "render", "render_frames",
]


@dataclass(frozen=True)
class ModelCharacter:
    """How an emulated model departs from a clean restyle: lower structure, more flicker."""

    look_strength: float   # blend of the look over the source (higher keeps less of the source)
    blur_sigma: float      # loss of fine structure
    jitter_px: float       # per-frame spatial wobble (hurts temporal consistency and warp error)
    flicker: float         # per-frame brightness jitter, as a fraction


# One per catalog model, each a plausible reading of what users report of it, and each distinct, so
# a comparison between models finds a difference in structure, stability or flicker:
CHARACTERS: dict[str, ModelCharacter] = {
    # Runway: aleph2 keeps structure best and is steady; the retired two are softer and shakier.
    "aleph2": ModelCharacter(0.80, 0.0, 0.0, 0.004),
    "gen4_aleph": ModelCharacter(0.90, 0.8, 0.6, 0.012),
    "gen3a_turbo": ModelCharacter(1.00, 1.8, 2.0, 0.05),
    # Seedance: a full restyle; the cheaper variants trade detail and stability for speed.
    "seedance2": ModelCharacter(0.95, 0.4, 0.25, 0.008),
    "seedance2_fast": ModelCharacter(0.97, 0.9, 0.7, 0.018),
    "seedance2_mini": ModelCharacter(0.98, 1.3, 1.1, 0.03),
    "seedance2_5": ModelCharacter(0.92, 0.2, 0.15, 0.006),
    # Hailuo: strong look, soft, with a visible brightness pump.
    "hailuo3": ModelCharacter(0.96, 0.7, 0.35, 0.025),
    # Gemini Omni: an instruction edit keeps much of the source, but wobbles a little frame to frame.
    "gemini_omni_flash": ModelCharacter(0.70, 0.3, 0.8, 0.01),
    "gemini_omni_flash_1.1": ModelCharacter(0.74, 0.2, 0.45, 0.007),
    # Kling: standard < pro < 4k in detail; all fairly steady.
    "klingO3_standard": ModelCharacter(0.88, 1.0, 0.5, 0.015),
    "klingO3_pro": ModelCharacter(0.88, 0.5, 0.3, 0.009),
    "klingO3_4k": ModelCharacter(0.88, 0.1, 0.3, 0.007),
    "kling_4": ModelCharacter(0.85, 0.25, 0.1, 0.006),
}


def character_for(model: str) -> ModelCharacter:
    if model in CHARACTERS:
        return CHARACTERS[model]
    # A model added through a user catalog gets a stable, middling character of its own.
    rng = np.random.default_rng(stable_hash("character", model))
    return ModelCharacter(float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.3, 1.5)),
                          float(rng.uniform(0.2, 1.5)), float(rng.uniform(0.005, 0.04)))


@dataclass(frozen=True)
class Keyframe:
    """An image whose palette the output takes from start_s to end_s (one instant without a range)."""

    path: str
    start_s: float
    end_s: float


# How far (seconds) a keyframe's palette reaches beyond its time, fading out linearly.
KEYFRAME_REACH_S = 0.75


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
    output_seconds: float | None = None   # the length to render; None: the input's, up to the maximum
    resolution: str | None = None
    target_aspect: str | None = None
    draft: bool = False
    keyframes: tuple[Keyframe, ...] = ()
    audio: bool = False
    output_format: str = "mp4"            # mp4 | mov | prores | png_sequence | sdr_rec709_10bit
    prores_profile: str = "4444"


@dataclass(frozen=True)
class RenderResult:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    look: str


def _framing(job: RenderJob, info: VideoInfo) -> Framing:
    return plan_framing(info, job.ratio, job.render_scale, resolution=job.resolution,
                        target_aspect=job.target_aspect, draft=job.draft)


def output_size(info: VideoInfo, ratio: str | None, render_scale: float) -> tuple[int, int]:
    """The output size for a ratio alone (see framing.py for every field that shapes it)."""
    f = plan_framing(info, ratio, render_scale)
    return f.width, f.height


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
    """Transform and encode in the job's output format. The frames are a pure function of the job
    (see render_frames), and so is the sound."""
    info = probe_video(job.source, "videoUri")
    framing = _framing(job, info)
    Path(job.out_path).parent.mkdir(parents=True, exist_ok=True)
    frames = render_frames(job, on_progress, info)
    if job.output_format == "png_sequence":
        count = write_png_zip(job.out_path, frames, job.output_fps)
    else:
        fmt = prores_format(job.prores_profile) if job.output_format == "prores" else FORMATS[job.output_format]
        audio = soundtrack(job.prompt, job.seed, _seconds(job, info)) if job.audio else None
        count = write_video(job.out_path, frames, job.output_fps, fmt, audio)
    return RenderResult(job.out_path, framing.width, framing.height, job.output_fps, count, count / job.output_fps,
                        pick_look(job.prompt))


def _seconds(job: RenderJob, info: VideoInfo) -> float:
    if job.output_seconds is not None:
        return job.output_seconds
    return min(info.duration_s, job.max_output_seconds)


def _keyframe_stats(job: RenderJob) -> list[tuple[Keyframe, tuple[np.ndarray, np.ndarray]]]:
    return [(kf, reference_stats(read_image_rgb(kf.path))) for kf in job.keyframes]


def _keyframe_pull(keyframes: list[tuple[Keyframe, Any]], t: float) -> tuple[float, Any]:
    """The strongest keyframe's weight at time t (1 within its span, fading to 0 over the reach) and its stats."""
    best: tuple[float, Any] = (0.0, None)
    for kf, stats in keyframes:
        gap = max(kf.start_s - t, 0.0, t - kf.end_s)
        weight = max(0.0, 1.0 - gap / KEYFRAME_REACH_S)
        if weight > best[0]:
            best = (weight, stats)
    return best


def render_frames(job: RenderJob, on_progress: Callable[[float], None] | None = None,
                  info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """The output frames, streamed: identical for identical jobs."""
    info = info or probe_video(job.source, "videoUri")
    n_out = max(1, int(round(_seconds(job, info) * job.output_fps)))
    look = pick_look(job.prompt)
    params = draw_params(look, job.prompt, job.seed)
    look_fn = LOOKS[look]
    char = character_for(job.model)
    ref = reference_stats(read_image_rgb(job.reference)) if job.reference else None
    keyframes = _keyframe_stats(job)
    cursor = SourceCursor(info, _framing(job, info), _DECODED.frames)

    def generate() -> Iterator[np.ndarray]:
        for j in range(n_out):
            t = j / job.output_fps
            styled = _style_frame(cursor.at(t), t, j, params, look_fn, char, ref, job.seed)
            weight, stats = _keyframe_pull(keyframes, t)
            if weight > 0:
                styled = palette_transfer(styled, stats[0], stats[1], 0.9 * weight)
            yield styled
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
