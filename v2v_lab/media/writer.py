"""Write frames as video files, streaming frame by frame: H.264 mp4 (what browsers play), and the
other deliverables the endpoint's models return (ProRes .mov, 10-bit HEVC, QuickTime .mov, a .zip
of PNG frames), optionally with an AAC audio track."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

__all__ = ["FORMATS", "PRORES_PROFILES", "AudioTrack", "VideoFormat", "write_mp4", "write_png_zip", "write_video"]


@dataclass(frozen=True)
class VideoFormat:
    """One way of encoding frames: the container, the encoder and its pixel format and options."""

    container: str                 # libav's muxer name: mp4, mov
    codec: str                     # libav's encoder name
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    codec_tag: str | None = None


# By the name an output_format field uses. x265's own log lines go to stderr unless quietened; the
# rec709 tags are what "sdr_rec709_10bit" promises a grading tool.
FORMATS: dict[str, VideoFormat] = {
    "mp4": VideoFormat("mp4", "libx264", "yuv420p", {"crf": "23", "preset": "veryfast"}),
    "mov": VideoFormat("mov", "libx264", "yuv420p", {"crf": "23", "preset": "veryfast"}),
    "sdr_rec709_10bit": VideoFormat("mp4", "libx265", "yuv420p10le", {
        "crf": "24", "preset": "ultrafast",
        "x265-params": "log-level=error:colorprim=bt709:transfer=bt709:colormatrix=bt709"}, codec_tag="hvc1"),
    "prores": VideoFormat("mov", "prores_ks", "yuv444p10le", {"profile": "4"}),
}
# Runway's prores_profile values -> (prores_ks profile number, pixel format): the 4444 profiles
# carry full chroma, the 422 ones half.
PRORES_PROFILES: dict[str, tuple[str, str]] = {
    "422 Proxy": ("0", "yuv422p10le"), "422 LT": ("1", "yuv422p10le"), "422": ("2", "yuv422p10le"),
    "422 HQ": ("3", "yuv422p10le"), "4444": ("4", "yuv444p10le"), "4444 XQ": ("5", "yuv444p10le"),
}


@dataclass(frozen=True)
class AudioTrack:
    """A sound track made on demand: samples(start, count) -> float32 (channels, count) in [-1, 1].
    Pulled in step with the video, so a long output never holds its whole sound (or video) in memory."""

    samples: Callable[[int, int], np.ndarray]
    rate: int = 48_000
    layout: str = "stereo"


def prores_format(profile: str) -> VideoFormat:
    number, pix_fmt = PRORES_PROFILES[profile]
    return VideoFormat("mov", "prores_ks", pix_fmt, {"profile": number})


def write_mp4(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 23,
    preset: str = "veryfast",
) -> int:
    """Encode RGB uint8 frames as H.264 yuv420p; returns the frame count. Dimensions must be even."""
    fmt = VideoFormat("mp4", "libx264", "yuv420p", {"crf": str(crf), "preset": preset})
    return write_video(path, frames, fps, fmt)


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float, fmt: VideoFormat,
                audio: AudioTrack | None = None) -> int:
    """Encode RGB uint8 frames in `fmt`, with `audio` as an AAC track as long as the video; returns
    the frame count. Dimensions must be even."""
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with av.open(os.fspath(path), mode="w", format=fmt.container) as container:
        stream: av.VideoStream | None = None
        sound: _AudioMux | None = None
        for frame in frames:
            if stream is None:
                stream = _video_stream(container, fmt, rate, frame.shape[1], frame.shape[0])
                # Every stream is added before the first packet: the header is written then.
                sound = _AudioMux(container, audio) if audio is not None else None
            # from_ndarray may wrap the array's memory without copying, and encoders hold frames in
            # their lookahead: converting here gives the encoder a frame libav owns.
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format=fmt.pix_fmt)
            vf.pts = count  # explicit timestamps: libav must not guess them
            vf.time_base = 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
            if sound is not None:
                sound.up_to(count / rate)  # interleaved: the muxer never queues a whole track
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
        if sound is not None:
            sound.up_to(count / rate)
            sound.flush()
    return count


def _video_stream(container: av.container.OutputContainer, fmt: VideoFormat, rate: Fraction, w: int,
                  h: int) -> av.VideoStream:
    stream = container.add_stream(fmt.codec, rate=rate)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height = w, h
    stream.pix_fmt = fmt.pix_fmt
    stream.options = dict(fmt.options)
    if fmt.codec_tag:
        stream.codec_tag = fmt.codec_tag  # hvc1: the HEVC tag QuickTime and Safari play
    return stream


class _AudioMux:
    """Feeds an AudioTrack to an AAC encoder in the encoder's frame size, up to a given time."""

    def __init__(self, container: av.container.OutputContainer, track: AudioTrack):
        self.container = container
        self.track = track
        self.stream = container.add_stream("aac", rate=track.rate, layout=track.layout)
        self.stream.bit_rate = 128_000
        self.sent = 0  # samples handed to the encoder so far

    def up_to(self, seconds: Fraction) -> None:
        end = int(seconds * self.track.rate)
        step = self.stream.codec_context.frame_size or 1024
        while self.sent < end:
            n = min(step, end - self.sent)
            data = np.ascontiguousarray(self.track.samples(self.sent, n), dtype=np.float32)
            af = av.AudioFrame.from_ndarray(data, format="fltp", layout=self.track.layout)
            af.sample_rate = self.track.rate
            af.pts = self.sent
            af.time_base = Fraction(1, self.track.rate)
            for packet in self.stream.encode(af):
                self.container.mux(packet)
            self.sent += n

    def flush(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)


def write_png_zip(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float) -> int:
    """RGB uint8 frames as a .zip of numbered PNG files (frame_000000.png, ...); returns the count.
    Stored, not deflated: PNG is compressed already. fps is written in a note beside them, since a
    sequence of stills carries no time of its own."""
    import cv2  # imported here: only the emulator's png_sequence output needs it

    count = 0
    with zipfile.ZipFile(os.fspath(path), "w", compression=zipfile.ZIP_STORED) as zf:
        for frame in frames:
            ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                raise ValueError("PNG encoding failed")
            zf.writestr(f"frame_{count:06d}.png", png.tobytes())
            count += 1
        zf.writestr("sequence.txt", f"frames: {count}\nfps: {float(fps):g}\n")
    return count
