"""Posters and contact sheets: PNGs that keep runs browsable where a video preview misbehaves."""

from __future__ import annotations

import os

import cv2
import numpy as np

from .geometry import fit_short_side
from .probe import probe_video
from .reader import open_video

__all__ = ["contact_sheet", "write_contact_sheet", "write_poster"]


def _write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path}")
    # A new file, renamed over the old: a poster hard-linked into an earlier run's artifacts (a
    # local store keeps one copy on disk) is never rewritten in place.
    part = f"{os.fspath(path)}.part"
    with open(part, "wb") as fh:
        fh.write(buf.tobytes())
    os.replace(part, path)


def write_poster(video: str | os.PathLike[str], dest: str | os.PathLike[str], short_side: int = 360) -> None:
    """The middle frame of the clip."""
    info = probe_video(video, "output")
    size = fit_short_side(info.width, info.height, short_side)
    frame = open_video(video, size, info=info).get_frames([info.frame_count // 2])[0]
    _write_png(dest, frame)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """The text in white on black at the top left, sized to the image: a sheet of six columns is
    shown about 1,000 px wide, so a label must be about a tenth of its cell's height to be read."""
    out = img.copy()
    scale = max(0.45, out.shape[0] / 160)
    thickness = max(1, round(scale * 1.5))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(3, height // 3)
    cv2.rectangle(out, (0, 0), (min(out.shape[1], width + 2 * pad), height + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(out, text, (pad, pad + height), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return out


def contact_sheet(source_frames: np.ndarray, output_frames: np.ndarray, times_s: list[float],
                  columns: int = 6) -> np.ndarray:
    """Source frames in the top row, the output's at the same instants below, labelled with times."""
    n = len(output_frames)
    picks = sorted({int(round(i * (n - 1) / max(1, columns - 1))) for i in range(min(columns, n))})
    h, w = output_frames.shape[1:3]
    scale = min(1.0, 240 / h)
    tw, th = max(2, int(w * scale)), max(2, int(h * scale))

    def cell(img: np.ndarray, text: str) -> np.ndarray:
        return _label(cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA), text)

    top = np.hstack([cell(source_frames[i], f"source {times_s[i]:.2f}s") for i in picks])
    bottom = np.hstack([cell(output_frames[i], f"output {times_s[i]:.2f}s") for i in picks])
    gap = np.full((4, top.shape[1], 3), 255, np.uint8)
    return np.vstack([top, gap, bottom])


def write_contact_sheet(dest: str | os.PathLike[str], source_frames: np.ndarray, output_frames: np.ndarray,
                        times_s: list[float], columns: int = 6) -> None:
    _write_png(dest, contact_sheet(source_frames, output_frames, times_s, columns))
