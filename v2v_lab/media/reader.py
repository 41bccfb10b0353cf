"""Frame readers: decord first (scales while decoding), PyAV as the fallback. Frames are RGB uint8.

Which decoder reads a file is decided from its probe, before anything is decoded, so a file is
decoded once. decord reads 8-bit pictures and ProRes (422 and 4444, 10 and 12 bits: PyAV's frames
to within 1 level, and faster, since intra-only frames let it seek instead of decoding every frame
before the one wanted: 32 frames of a 720p clip in 2.5 s against 3.8 s). Other pictures deeper
than 8 bits (10-bit HEVC, yuv420p10le) go to PyAV: decord decodes them about 2.5x slower than
PyAV (1.2 s against 0.5 s) and converts them differently (up to 21 levels off libswscale). Every
reader brings 10-bit pictures to 8-bit RGB. A .zip of PNG frames is read by sequence.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

import av
import numpy as np

from ..errors import MediaError
from .probe import VideoInfo, probe_video
from .sequence import SEQUENCE_CODEC, open_frame_zip, read_zip_frames

__all__ = ["DecordReader", "FrameReader", "PyAVReader", "ZipFramesReader", "decord_reads", "iter_frames",
           "open_video"]


try:  # decord has no wheels for macOS on Apple silicon; PyAV covers it there.
    import decord

    decord.bridge.set_bridge("native")
except ImportError:  # pragma: no cover - depends on platform
    decord = None


class FrameReader(Protocol):
    info: VideoInfo
    backend: str

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...


class DecordReader:
    backend = "decord"

    def __init__(self, info: VideoInfo, width: int | None, height: int | None, threads: int = 1):
        self.info = info
        self._size, self._threads = (width, height), threads
        kwargs = {"width": width, "height": height} if width and height else {}
        # threads=0 lets FFmpeg pick (all cores); 1 when another decode runs beside this one.
        self._vr = decord.VideoReader(info.path, ctx=decord.cpu(0), num_threads=threads, **kwargs)
        # Clamp to what really decodes: decord's get_batch can hang past the real end.
        self._last = min(len(self._vr), info.frame_count) - 1

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        clamped = [min(max(0, int(i)), self._last) for i in indices]
        unique = sorted(set(clamped))
        try:
            batch = self._vr.get_batch(unique).asnumpy()
        except Exception:  # noqa: BLE001 - decord's native DECORDError: a file it opened but cannot decode
            # The only second decode there is: PyAV reads it (or says why nobody can), and the
            # report's `decoder` says which one did.
            self.backend = "pyav"
            return PyAVReader(self.info, *self._size, self._threads).get_frames(indices)
        pos = {idx: k for k, idx in enumerate(unique)}
        return batch[[pos[i] for i in clamped]]


class PyAVReader:
    """Sequential decode that keeps only the wanted frames, scaled by libswscale while converting."""

    backend = "pyav"

    def __init__(self, info: VideoInfo, width: int | None, height: int | None, threads: int = 1):
        self.info = info
        self._size = (width, height) if width and height else None
        # One decoding thread when another decode runs beside this one; frame threads otherwise.
        self._thread_type = "SLICE" if threads == 1 else "AUTO"

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        last = self.info.frame_count - 1
        rotation = self.info.rotation
        clamped = [min(max(0, int(i)), last) for i in indices]
        wanted = set(clamped)
        stop = max(wanted)
        got: dict[int, np.ndarray] = {}
        with av.open(self.info.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = self._thread_type
            for k, frame in enumerate(container.decode(stream)):
                if k in wanted:
                    got[k] = _displayed(frame, self._size, rotation)
                if k >= stop:
                    break
        if not got:
            raise MediaError("video", self.info.path, "a video whose frames decode")
        fallback = got[max(got)]
        return np.stack([got.get(i, fallback) for i in clamped])


class ZipFramesReader:
    """The frames of a .zip of PNGs (sequence.py), scaled with OpenCV after decoding."""

    backend = "png"

    def __init__(self, info: VideoInfo, width: int | None, height: int | None, field: str = "output"):
        self.info = info
        self._size = (width, height) if width and height else None
        self._field = field
        self._members = open_frame_zip(info.path, field).members

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return read_zip_frames(self.info.path, self._members, list(indices), self._size, self._field)


def decord_reads(info: VideoInfo) -> bool:
    """Whether decord is the decoder for this file (see the module's docstring): 8-bit pictures, and ProRes."""
    return info.codec != SEQUENCE_CODEC and (info.bit_depth <= 8 or info.codec == "prores")


def _owned(frame: av.VideoFrame) -> np.ndarray:
    """to_ndarray can return a view of the frame's buffer, which the decoder recycles: copy it out."""
    return np.array(frame.to_ndarray(format="rgb24"), copy=True)


def _displayed(frame: av.VideoFrame, size: tuple[int, int] | None, rotation: int) -> np.ndarray:
    """The frame as a player shows it: scaled to `size` (displayed width, height) and turned by the
    track's rotation (degrees counterclockwise, FFmpeg's convention), as decord does on its own."""
    turns = (rotation // 90) % 4
    if size:
        w, h = size if turns % 2 == 0 else (size[1], size[0])
        frame = frame.reformat(width=w, height=h)
    pixels = _owned(frame)
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def open_video(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    *,
    backend: str = "auto",
    info: VideoInfo | None = None,
    field: str = "video",
    threads: int = 1,
) -> FrameReader:
    """A reader that returns frames at `size` (width, height), scaled during decode.

    backend: "auto" (decord where it reads the file right, see decord_reads; PyAV otherwise, or if
    decord is missing or fails on the file), "decord" or "pyav". A .zip of PNG frames is always read
    by ZipFramesReader. threads: decoder threads for decord (0 = FFmpeg's choice).
    """
    info = info or probe_video(path, field)
    width, height = (size if size else (None, None))
    if backend not in ("auto", "decord", "pyav"):
        raise MediaError("backend", backend, "auto, decord or pyav")
    if info.codec == SEQUENCE_CODEC:
        return ZipFramesReader(info, width, height, field)
    if backend == "auto" and not decord_reads(info):
        backend = "pyav"
    if info.rotation and backend == "auto":
        # One rule for every reader: frames as displayed. decord turns rotated tracks itself but
        # misreports their buffers (a size mismatch, seen on 0.6.0); PyAV turns them here.
        backend = "pyav"
    if backend in ("auto", "decord") and decord is not None:
        try:
            return DecordReader(info, width, height, threads)
        except Exception:  # decord raises its own DECORDError types from native code
            if backend == "decord":
                raise MediaError(field, str(path), "a video decord can open") from None
    elif backend == "decord":
        raise MediaError("backend", "decord", "pyav (decord is not installed)")
    return PyAVReader(info, width, height, threads)


def iter_frames(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Every frame in order, streamed (PyAV; a frame zip's one by one); for transforms that need the whole clip."""
    info = probe_video(path)
    if info.codec == SEQUENCE_CODEC:
        reader = ZipFramesReader(info, *(size or (None, None)))
        for k in range(info.frame_count):
            yield reader.get_frames([k])[0]
        return
    rotation = info.rotation
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield _displayed(frame, size, rotation)
