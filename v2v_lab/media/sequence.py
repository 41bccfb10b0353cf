"""A .zip of PNG frames (Runway's `png_sequence` output) read as a video: the one place that knows it.

A zip carries frames but no frame rate, so the rate is the caller's to give: the model's catalog
`output_fps` where the caller knows the model (a sweep, rescore), else DEFAULT_FPS, the rate every
catalogued model renders at. Frames play in the order of their names, numbers compared as numbers
(frame_9.png before frame_10.png), whatever order the zip lists them in.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import cv2
import numpy as np

from ..errors import MediaError

__all__ = ["DEFAULT_FPS", "SEQUENCE_CODEC", "FrameZip", "is_frame_zip", "open_frame_zip", "read_zip_frames"]

DEFAULT_FPS = 24.0
SEQUENCE_CODEC = "png_sequence"  # VideoInfo.codec of a frame zip: how the readers recognise one
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FrameZip:
    """What a frame zip holds: its PNG members in play order and the first frame's size."""

    members: tuple[str, ...]
    width: int
    height: int
    pix_fmt: str  # e.g. rgb24, rgba64: the first frame's channels and depth, as FFmpeg would name it
    bit_depth: int  # 8 or 16


def is_frame_zip(path: str) -> bool:
    """Whether the file is a zip archive (by its bytes, not its name: an output saved as .mp4 that is
    really a zip is read as one). An empty zip counts: it is then refused with its own reason."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def _play_order(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def open_frame_zip(path: str, field: str = "output") -> FrameZip:
    """Index the zip and decode its first frame, or MediaError saying why it is not a frame sequence."""
    try:
        with zipfile.ZipFile(path) as archive:
            files = [i.filename for i in archive.infolist() if not i.is_dir()]
            # macOS archivers add __MACOSX/._frame.png resource forks: not frames.
            pngs = [n for n in files if n.lower().endswith(".png") and not PurePosixPath(n).name.startswith("._")]
            if not pngs:
                held = f"{len(files)} other files" if files else "nothing"
                raise MediaError(field, path, f"a .zip of PNG frames (this zip holds {held})")
            pngs.sort(key=_play_order)
            first = _decode(archive, pngs[0], path, field)
    except zipfile.BadZipFile as exc:
        raise MediaError(field, path, f"a readable .zip of PNG frames ({exc})") from None
    depth = "64" if first.dtype == np.uint16 else ""
    pix_fmt = {1: "gray", 3: "rgb", 4: "rgba"}[1 if first.ndim == 2 else first.shape[2]]
    pix_fmt += depth or ("24" if pix_fmt == "rgb" else "")
    return FrameZip(tuple(pngs), first.shape[1], first.shape[0], pix_fmt, 16 if depth else 8)


def _decode(archive: zipfile.ZipFile, member: str, path: str, field: str) -> np.ndarray:
    data = archive.read(member)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data.startswith(_PNG_MAGIC) else None
    if img is None:
        raise MediaError(field, path, f"a .zip of PNG frames whose frames decode ({member} does not)")
    return img


def _rgb8(img: np.ndarray) -> np.ndarray:
    """Any PNG (gray, RGB, RGBA; 8 or 16 bits) as RGB uint8, like every other reader's frames.
    Alpha is dropped, not composited: the other readers drop a ProRes 4444's alpha the same way."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # the high byte: 16-bit PNGs are full range
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def read_zip_frames(path: str, members: tuple[str, ...], indices: list[int], size: tuple[int, int] | None,
                    field: str = "output") -> np.ndarray:
    """The frames at `indices` (clamped to the sequence), RGB uint8, at `size` (width, height).
    Each wanted member is inflated once, however often it is asked for."""
    last = len(members) - 1
    clamped = [min(max(0, int(i)), last) for i in indices]
    got: dict[int, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for i in sorted(set(clamped)):
                frame = _rgb8(_decode(archive, members[i], path, field))
                if size and (frame.shape[1], frame.shape[0]) != size:
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                got[i] = frame
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise MediaError(field, path, f"a readable .zip of PNG frames ({type(exc).__name__})") from None
    return np.stack([got[i] for i in clamped])
