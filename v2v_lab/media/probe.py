"""What a video or image file is: size, length, frame rate, frame count. Raises MediaError on anything else."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..errors import MediaError
from .sequence import DEFAULT_FPS as SEQUENCE_DEFAULT_FPS
from .sequence import SEQUENCE_CODEC, is_frame_zip, open_frame_zip

__all__ = ["ImageInfo", "VideoInfo", "probe_image", "probe_video", "read_image_rgb"]


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    codec: str
    size_bytes: int
    # Degrees counterclockwise the track's display matrix turns it (FFmpeg's convention); width and
    # height above are the displayed ones, as every reader here returns the frames.
    rotation: int = 0
    # The decoded pixel format (yuv420p, yuv422p10le, rgb24 for a PNG sequence...): the readers pick
    # a decoder by it before decoding anything.
    pix_fmt: str = ""
    bit_depth: int = 8  # bits per sample of pix_fmt (10 for yuv420p10le, 16 for a 16-bit PNG sequence)

    @property
    def aspect(self) -> float:
        return self.width / self.height


def _check_file(path: str | os.PathLike[str], field: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(field, str(path), "an existing file")
    if not p.is_file():
        raise MediaError(field, str(path), "a regular file, not a directory")
    if p.stat().st_size == 0:
        raise MediaError(field, str(path), "a non-empty video file (this one has 0 bytes)")
    return p


def probe_video(path: str | os.PathLike[str], field: str = "video", *,
                sequence_fps: float | None = None) -> VideoInfo:
    """Open the container with PyAV, count the frames really present and decode the first one.

    Containers over-report frame counts on truncated files, and decord can hang reading past the
    real end (dmlc/decord #373), so the count is of the packets actually demuxed (cheap: no
    decode), and one frame is decoded to prove the stream is video we can read.

    Length is the largest of the container's duration, the stream's, the last frame's end and
    frames / declared fps: frames spread over 30 s in an mkv that declares 24 fps are 30 s of
    video to the endpoint (and to its bill), not 2.5 s. Rotation comes from the first frame's
    display matrix; width and height are the displayed ones.

    A .zip of PNG frames is a video too (sequence.py), at `sequence_fps` frames a second
    (default: sequence.DEFAULT_FPS); the rate is ignored for real videos, which carry their own.
    """
    p = _check_file(path, field)
    st = p.stat()
    return _probe_cached(str(p), st.st_mtime_ns, st.st_size, field, float(sequence_fps or SEQUENCE_DEFAULT_FPS))


@functools.lru_cache(maxsize=256)
def _probe_cached(path: str, mtime_ns: int, size: int, field: str, sequence_fps: float) -> VideoInfo:
    """Probes are memoised by path, mtime and size: a sweep probes one source for every cell, in
    the client, the emulator and the scorer. Failures raise, and raised calls are not cached."""
    if is_frame_zip(path):
        frames = open_frame_zip(path, field)
        count = len(frames.members)
        return VideoInfo(path, frames.width, frames.height, sequence_fps, count, count / sequence_fps,
                         SEQUENCE_CODEC, size, 0, frames.pix_fmt, frames.bit_depth)
    return _probe_container(path, size, field)


def _probe_container(path: str, size: int, field: str) -> VideoInfo:
    p = Path(path)
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise MediaError(field, str(path), "a file with a video stream (this one has none)")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            fmt = stream.codec_context.format
            pix_fmt, depth = (fmt.name, max(c.bits for c in fmt.components)) if fmt else ("", 8)
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            count, first, start_s, end_s = _scan_packets(container, stream)
            decoded = bool(first)
            rotation = int(round(first[0].rotation)) % 360 if first else 0
            spans = [end_s - (start_s or 0.0)]
            if stream.duration is not None and stream.time_base is not None:
                spans.append(float(stream.duration * stream.time_base))
            if container.duration is not None:
                spans.append(container.duration / av.time_base)
    except MediaError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise MediaError(field, str(path), f"a decodable video{_what_it_is(p, type(exc).__name__)}") from None
    if not decoded:
        count = 0
    if count == 0:
        raise MediaError(field, str(path), f"a video with at least one decodable frame{_what_it_is(p, '')}")
    if fps <= 0:
        fps = count / spans[0] if spans[0] > 0 else 25.0
    duration = max([count / fps, *(x for x in spans if x == x and 0 < x < 1e7)])
    if rotation % 180:
        width, height = height, width
    return VideoInfo(str(p), width, height, fps, count, duration, codec, size, rotation, pix_fmt, depth)


def _what_it_is(p: Path, error: str) -> str:
    """Why a file is not a video, as a person would say it: outputs that are not videos are most
    often an error page or a JSON error body saved under the output's name."""
    with open(p, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        kind = "an HTML page (an error page saved as the output?)"
    elif head.startswith((b"{", b"[")):
        kind = "JSON text (an error body saved as the output?)"
    elif head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        kind = "plain text"
    else:
        return f" (FFmpeg cannot read it as one: {error})" if error else ""
    return f" (this file is {kind})"


def _scan_packets(container: Any, stream: Any) -> tuple[int, list[Any], float | None, float]:
    """Every packet of the stream, read without decoding (but the first frame): how many there
    are, the first frame, and the span their timestamps cover (start, end in seconds)."""
    count = 0
    first: list[Any] = []
    start_s: float | None = None
    end_s = 0.0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        count += 1
        if packet.pts is not None and packet.time_base is not None:
            pts_s = float(packet.pts * packet.time_base)
            start_s = pts_s if start_s is None else min(start_s, pts_s)
            end_s = max(end_s, pts_s + float((packet.duration or 0) * packet.time_base))
        if not first:
            first = list(packet.decode())
    if count and not first:
        # Decoders with delay (B-frames, frame threads) hand the first frame over on flush.
        first = list(stream.codec_context.decode(None))
    return count, first, start_s, end_s


@dataclass(frozen=True)
class ImageInfo:
    path: str
    width: int
    height: int
    size_bytes: int


def probe_image(path: str | os.PathLike[str], field: str = "reference") -> ImageInfo:
    p = _check_file(path, field)
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(field, str(path), "a decodable image (PNG, JPEG or WebP)")
    return ImageInfo(str(p), img.shape[1], img.shape[0], p.stat().st_size)


def read_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError("reference", str(path), "a decodable image (PNG, JPEG or WebP)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
