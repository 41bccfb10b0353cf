"""A copy of any output that a browser plays: H.264, 8-bit 4:2:0, in an .mp4 (what the dashboards show).

Browsers play H.264 mp4 everywhere; ProRes, 10-bit HEVC and a .zip of PNG frames they do not (or
only some, on some machines). So a dashboard shows such an output through a preview encoded once
beside it, and an output that is already playable as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from .geometry import fit_short_side
from .probe import probe_video
from .reader import iter_frames
from .writer import write_mp4

__all__ = ["PREVIEW_SHORT_SIDE", "browser_playable"]

PREVIEW_SHORT_SIDE = 480  # the dashboards show outputs at most 520 px wide
_PLAYABLE_FORMATS = frozenset({"yuv420p", "yuvj420p"})


def browser_playable(path: str | os.PathLike[str], *, sequence_fps: float | None = None,
                     short_side: int = PREVIEW_SHORT_SIDE) -> Path:
    """`path` itself if browsers play it, else its preview (`<name>.preview.mp4` beside it, made once
    and remade when the output changes). Raises MediaError for a file that is not a video.
    The preview has no sound: an output's audio track is heard only where its own file plays."""
    p = Path(path)
    info = probe_video(p, "output", sequence_fps=sequence_fps)
    if info.codec == "h264" and info.pix_fmt in _PLAYABLE_FORMATS and p.suffix.lower() == ".mp4":
        return p
    dest = p.with_name(f"{p.name}.preview.mp4")
    if dest.exists() and dest.stat().st_mtime_ns >= p.stat().st_mtime_ns:
        return dest
    size = fit_short_side(info.width, info.height, short_side)
    part = dest.with_name(f"{dest.name}.part")  # a preview cut short never passes for a whole one
    write_mp4(part, iter_frames(p, size), info.fps)
    os.replace(part, dest)
    return dest
