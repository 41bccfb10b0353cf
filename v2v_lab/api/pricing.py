"""The one price function: what a task of a model with given options is estimated to cost, in credits.

Every consumer (the plan, `generate`, the budget, the emulator) calls `price_task` through
`ModelSpec.price` / `ModelSpec.estimate_credits`; nothing else computes a price. What a task
*did* cost is what the server says (its `cost`): this is only the estimate before a create.

The rules, as Runway's pricing guide states them (../shared/reference/runway-api.md, first section):
a rate per second that may depend on the output's resolution tier, a surcharge per second for some
output formats (a larger one above 4 megapixels), a surcharge per second for each reference image,
a multiplier when an input video is given (seedance2_5 is priced as a video-to-video "with an input
video" always), and a minimum per task. `duration: "auto"` is reserved at the model's maximum: the
server bills the maximum up front and refunds the unused part afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

__all__ = ["LARGE_OUTPUT_PIXELS", "Price", "PriceRules", "output_tier", "price_task"]

# Above this many output pixels, a format's large surcharge applies (aleph2's 10-bit SDR: +40/s).
LARGE_OUTPUT_PIXELS = 4_000_000

# Resolution tiers by the output's pixel count, as pricing guides name them: by pixels, not by the
# short side, so 960:960 is priced as 720p (1280x720's pixels) and 1440:1440 as 1080p.
_TIERS_BY_PIXELS: tuple[tuple[int, str], ...] = ((500_000, "480p"), (1_000_000, "720p"), (2_200_000, "1080p"),
                                                 (4_000_000, "2k"))


class PriceRules(BaseModel):
    """A model's price rules beyond its base `credits_per_second` (all optional; numbers finite)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # A rate of 0 (or NaN) would price cells at nothing and wave them past every budget: every rate is > 0.
    by_tier: dict[str, PositiveFloat] = Field(default_factory=dict)    # credits/s by tier (480p, 720p, 768p, 1080p, 2k, 4k)
    default_tier: str | None = None                                    # when nothing in the request decides it
    by_format: dict[str, PositiveFloat] = Field(default_factory=dict)  # extra credits/s by output_format
    by_format_large: dict[str, PositiveFloat] = Field(default_factory=dict)  # the same above LARGE_OUTPUT_PIXELS
    per_reference: float = Field(default=0.0, ge=0)               # extra credits/s for each reference image
    input_video_multiplier: float = Field(default=1.0, gt=0)     # a video-to-video task always has an input video
    minimum: float = Field(default=0.0, ge=0)                    # credits per task, at least

    def describe(self, base_per_second: float) -> str:
        """The rules in a few words, for the README's table and the plan: '36 (480p, 720p), 40 (1080p);
        +5/s prores; min 56/task'."""
        by_rate: dict[float, list[str]] = {}
        for tier, rate in self.by_tier.items():
            by_rate.setdefault(rate * self.input_video_multiplier, []).append(tier)
        rates = ", ".join(f"{rate:g} ({', '.join(tiers)})" for rate, tiers in by_rate.items()) \
            or f"{base_per_second * self.input_video_multiplier:g}"
        extras = [f"+{v:g}/s {k}" + (f" (+{self.by_format_large[k]:g}/s above 4 MP)" if k in self.by_format_large else "")
                  for k, v in self.by_format.items()]
        if self.per_reference:
            extras.append(f"+{self.per_reference:g}/s per reference")
        if self.minimum:
            extras.append(f"min {self.minimum:g}/task")
        return "; ".join([rates, *extras])


@dataclass(frozen=True)
class Price:
    """An estimate: credits for the task, the rate per second it used, the seconds billed, and
    whether a first-party source states the rate."""

    credits: float
    per_second: float
    seconds: float
    confirmed: bool
    tier: str | None = None


def _ratio_size(ratio: Any) -> tuple[int, int] | None:
    """'1280:720' -> (1280, 720); named ratios (adaptive, 16:9, auto_720p) carry no size."""
    if not isinstance(ratio, str):
        return None
    w, sep, h = ratio.partition(":")
    if not sep or not (w.isdigit() and h.isdigit()) or int(w) < 100 or int(h) < 100:
        return None
    return int(w), int(h)


def _tier_of_pixels(pixels: int) -> str:
    for limit, tier in _TIERS_BY_PIXELS:
        if pixels <= limit:
            return tier
    return "4k"


def output_tier(options: Mapping[str, Any], input_size: tuple[int, int] | None, rules: PriceRules) -> str | None:
    """The resolution tier the request asks for: a draft is 480p; `resolution` names it (768p, 2k);
    a ratio in pixels decides it by its pixel count (auto_720p names it); else the input's size, else
    the model's default tier."""
    if options.get("draft") is True:
        return "480p"
    resolution = options.get("resolution")
    if isinstance(resolution, str):
        return resolution.lower()
    ratio = options.get("ratio")
    if isinstance(ratio, str) and ratio.startswith("auto_"):
        return ratio.removeprefix("auto_").lower()
    size = _ratio_size(ratio) or input_size
    if size is not None and rules.by_tier:
        return _tier_of_pixels(size[0] * size[1])
    return rules.default_tier


def _output_pixels(options: Mapping[str, Any], input_size: tuple[int, int] | None) -> int | None:
    size = _ratio_size(options.get("ratio")) or input_size
    return size[0] * size[1] if size else None


def price_task(*, base_per_second: float, confirmed: bool, rules: PriceRules, seconds: float,
               options: Mapping[str, Any], input_size: tuple[int, int] | None = None,
               references: int = 0) -> Price:
    """The estimated credits of one task billed for `seconds` (already the reserved length:
    `duration: "auto"` at the model's maximum)."""
    tier = output_tier(options, input_size, rules)
    if tier not in rules.by_tier:  # a tier the rules do not price: the model's default one's rate
        tier = rules.default_tier
    per_second = rules.by_tier.get(tier or "", base_per_second)
    fmt = options.get("output_format")
    if isinstance(fmt, str) and fmt in rules.by_format:
        pixels = _output_pixels(options, input_size)
        large = pixels is not None and pixels > LARGE_OUTPUT_PIXELS and fmt in rules.by_format_large
        per_second += rules.by_format_large[fmt] if large else rules.by_format[fmt]
    per_second += rules.per_reference * references
    per_second *= rules.input_video_multiplier
    credits = max(per_second * seconds, rules.minimum)
    # Credits are whole numbers on the server: keep the estimate exact to a thousandth, never NaN.
    if not math.isfinite(credits):
        raise ValueError(f"a price that is not a finite number ({credits})")
    return Price(round(credits, 3), per_second, seconds, confirmed, tier)
