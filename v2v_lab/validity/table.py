"""The validity table: every metric scored on every controlled edit of real clips.

Each clip is brought to the scoring size once (the source as the scorer would see it), each edit
is applied to those frames, written as an MP4 like a generated output would be, and scored against
the unedited clip through score(): the same path as a sweep's cell, decode included.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..errors import InputError
from ..media.geometry import fit_short_side
from ..media.reader import iter_frames
from ..media.writer import write_mp4
from ..metrics import REGISTRY, score
from ..scoring_config import DEFAULT_SCORING
from .edits import EDITS, Edit

__all__ = ["SHIPPED_CLIPS", "load_clip", "validity_table"]

_MEDIA = Path(__file__).resolve().parents[2] / "experiments" / "media"
# The project's own footage: an animated short and a real street shot.
SHIPPED_CLIPS: tuple[str, ...] = (str(_MEDIA / "bigbuckbunny.mp4"), str(_MEDIA / "street.mp4"))


def load_clip(path: str | os.PathLike[str], size: int = DEFAULT_SCORING.size, max_frames: int = 72) -> np.ndarray:
    """The clip's first frames with the short side at `size` (T x H x W x 3, RGB uint8)."""
    frames = []
    for frame in iter_frames(path):
        h, w = frame.shape[:2]
        aw, ah = fit_short_side(w, h, size)
        frames.append(cv2.resize(frame, (aw, ah), interpolation=cv2.INTER_AREA))
        if len(frames) == max_frames:
            break
    return np.stack(frames)


def _like(other: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Another clip brought to this clip's size and length (resized, looped)."""
    h, w = clip.shape[1:3]
    idx = np.arange(len(clip)) % len(other)
    return np.stack([cv2.resize(other[i], (w, h), interpolation=cv2.INTER_AREA) for i in idx])


def validity_table(
    clips: Sequence[str] = SHIPPED_CLIPS,
    metrics: Sequence[str] | None = None,
    edits: Sequence[Edit] = EDITS,
    *,
    frames: int = DEFAULT_SCORING.frames,
    size: int = DEFAULT_SCORING.size,
    workdir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """One row per (clip, edit): the edit's family and every chosen metric's value.

    `clips` needs at least two: each clip's "another clip" edit is the next clip in the list.
    """
    if len(clips) < 2:
        raise InputError("clips", list(clips), "at least two clips (each one's 'another clip' is the next)")
    names = list(metrics or REGISTRY)
    loaded = [load_clip(c, size) for c in clips]
    rows = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i, (path, clip) in enumerate(zip(clips, loaded, strict=True)):
            other = _like(loaded[(i + 1) % len(loaded)], clip)
            stem = Path(path).stem
            source = Path(tmp) / f"{stem}.mp4"
            # Near-lossless, so the table shows the edits, not the encoder.
            write_mp4(source, iter(clip), 25, crf=8, preset="ultrafast")
            for edit in edits:
                out = Path(tmp) / f"{stem}.{edit.name}.mp4"
                write_mp4(out, iter(edit.fn(clip, other)), 25, crf=8, preset="ultrafast")
                report = score(source, out, names, frames=frames, size=size)
                rows.append({"clip": stem, "edit": edit.name, "family": edit.family, **report.values})
    return pd.DataFrame(rows)
