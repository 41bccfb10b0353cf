"""Aspect, crop and size arithmetic shared by the emulator, the scorer and the posters."""

from __future__ import annotations

__all__ = ["center_crop_box", "even", "fit_short_side", "parse_ratio"]


def parse_ratio(ratio: str) -> tuple[int, int]:
    """'1280:720' -> (1280, 720)."""
    w, _, h = ratio.partition(":")
    return int(w), int(h)


def even(n: float) -> int:
    """H.264 with yuv420p needs even dimensions."""
    return max(2, int(round(n / 2.0)) * 2)


def center_crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest centred box of the given aspect (w/h) inside width x height."""
    if width / height > aspect:
        w = max(1, int(round(height * aspect)))
        return (width - w) // 2, 0, w, height
    h = max(1, int(round(width / aspect)))
    return 0, (height - h) // 2, width, h


def fit_short_side(width: int, height: int, short: int) -> tuple[int, int]:
    """Size with the short side = `short`, aspect kept, both even; never upscales."""
    scale = min(1.0, short / min(width, height))
    return even(width * scale), even(height * scale)
