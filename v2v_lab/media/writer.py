"""Write frames as H.264, yuv420p mp4 (what browsers play), streaming frame by frame."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np

__all__ = ["write_mp4"]


def write_mp4(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 23,
    preset: str = "veryfast",
) -> int:
    """Encode RGB uint8 frames; returns the frame count. Dimensions must be even."""
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with av.open(os.fspath(path), mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            if stream is None:
                h, w = frame.shape[:2]
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
            # from_ndarray may wrap the array's memory without copying, and x264 holds frames in its
            # lookahead: converting to yuv420p here gives the encoder a frame libav owns.
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
            vf.pts = count  # explicit timestamps: libav must not guess them
            vf.time_base = 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count
