"""How an output is sampled for scoring (frame pairs, analysis size, crop): the defaults and the
allowed ranges, in one place. The spec's `scoring:`, the CLI's --frames/--size/--crop, score(),
rescore() and check_sampling all read them here, so they take and refuse the same values.

Why size starts at 32 px (the short side) and not 16: below it each metric is left with a
sliver. SSIM crops a 5-pixel border after its 11-tap window (at 16 px, 6 rows remain), PIQE cuts
frames into 16 x 16 blocks (at 16 px, one row of them) and DIS's 8-pixel patches barely fit twice.
At 32 px every metric still sees more than one window of the frame, and 32 is what the spec and
the CLI have always allowed, so no documented value is refused. Frames start at 2 pairs for the
same reason the spec and CLI gave: one pair has no per-frame spread to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import InputError

__all__ = ["CROP_POLICIES", "DEFAULT_SCORING", "IntRange", "ScoringConfig"]

CROP_POLICIES = ("center", "stretch")


@dataclass(frozen=True)
class IntRange:
    """An inclusive range of whole numbers, said the same way by every place that refuses a value."""

    low: int
    high: int
    what: str

    @property
    def allowed(self) -> str:
        return f"a whole number from {self.low} to {self.high} ({self.what})"

    def holds(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def check(self, field: str, value: Any) -> int:
        if not self.holds(value):
            raise InputError(field, value, self.allowed)
        return int(value)


@dataclass(frozen=True)
class ScoringConfig:
    """One sampling of an output for scoring; made only with values inside the ranges."""

    FRAMES: ClassVar[IntRange] = IntRange(2, 512, "time-aligned frame pairs")
    SIZE: ClassVar[IntRange] = IntRange(32, 2160, "pixels, the short side frames are analysed at")
    CROPS: ClassVar[tuple[str, ...]] = CROP_POLICIES

    frames: int = 16
    size: int = 256
    crop: str = "center"

    def __post_init__(self) -> None:
        if self.crop not in self.CROPS:
            raise InputError("crop", self.crop, ", ".join(self.CROPS))
        self.FRAMES.check("frames", self.frames)
        self.SIZE.check("size", self.size)


DEFAULT_SCORING = ScoringConfig()
