"""Procedural looks: the emulator's stand-in for a generative restyle. Pure functions of frame + params.

A look is picked from the prompt's words; the seed draws the look's parameters, so seeds differ
visibly and reproducibly. None of this is a generative model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "LOOKS", "LOOK_KEYWORDS", "LookParams", "draw_params", "look_anime", "look_golden_hour", "look_grade",
    "look_neon", "look_noir", "look_sepia", "look_sketch", "look_thermal", "look_watercolor", "look_winter",
    "palette_transfer", "pick_look", "reference_stats", "stable_hash",
]

# (look name, keywords). The first keyword found earliest in the prompt wins.
LOOK_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("neon", ("neon", "cyberpunk", "synthwave")),
    ("noir", ("noir", "black and white", "black-and-white", "monochrome", "b&w")),
    ("watercolor", ("watercolor", "watercolour", "painterly", "oil painting", "impressionist")),
    ("sketch", ("pencil", "sketch", "charcoal", "drawing")),
    ("anime", ("anime", "cartoon", "cel-shaded", "cel shaded", "comic")),
    ("sepia", ("sepia", "vintage", "old film", "film grain", "1920s")),
    ("winter", ("winter", "snow", "snowy", "frozen", "icy")),
    ("golden_hour", ("golden hour", "sunset", "sunrise", "dusk")),
    ("thermal", ("thermal", "infrared", "heat map", "heatmap")),
)


def stable_hash(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def pick_look(prompt: str) -> str:
    text = (prompt or "").lower()
    best: tuple[int, str] | None = None
    for name, words in LOOK_KEYWORDS:
        for word in words:
            m = re.search(r"(?<![a-z])" + re.escape(word) + r"(?![a-z])", text)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), name)
    return best[1] if best else "grade"


@dataclass
class LookParams:
    name: str
    rng_seed: int
    values: dict[str, float] = field(default_factory=dict)


def draw_params(look: str, prompt: str, seed: int) -> LookParams:
    """The seed varies the look; for the hash grade, the prompt's words pick the colours too."""
    rng = np.random.default_rng(stable_hash(look, seed, prompt if look == "grade" else ""))
    v = {
        "hue": float(rng.uniform(-1, 1)),
        "strength": float(rng.uniform(0.7, 1.0)),
        "tint": float(rng.uniform(0, 1)),
        "levels": float(rng.integers(4, 9)),
        "grain": float(rng.uniform(0.02, 0.06)),
        "contrast": float(rng.uniform(1.05, 1.35)),
    }
    if look == "grade":
        g = np.random.default_rng(stable_hash("grade", prompt.lower().strip()))
        v.update({"r": float(g.uniform(0.75, 1.25)), "g": float(g.uniform(0.75, 1.25)),
                  "b": float(g.uniform(0.75, 1.25)), "hue_rot": float(g.uniform(-40, 40))})
    return LookParams(look, stable_hash(look, seed), v)


def _lut(fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    x = np.arange(256, dtype=np.float32) / 255.0
    return np.clip(fn(x) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _s_curve(c: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: 0.5 + (x - 0.5) * c


def _shift_hue(rgb: np.ndarray, degrees: float, sat: float = 1.0) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h = hsv[..., 0].astype(np.int16)
    hsv[..., 0] = ((h + int(round(degrees / 2.0))) % 180).astype(np.uint8)
    if sat != 1.0:
        hsv[..., 1] = cv2.LUT(hsv[..., 1], _lut(lambda x: x * sat))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _tint(rgb: np.ndarray, color: tuple[float, float, float], amount: float) -> np.ndarray:
    tint = np.array(color, dtype=np.float32)[None, None, :] * 255.0
    return cv2.addWeighted(rgb, 1.0 - amount, np.broadcast_to(tint, rgb.shape).astype(np.uint8), amount, 0)


def _small(rgb: np.ndarray, short: int = 270) -> np.ndarray:
    """Costly filters run at a reduced size; the result is scaled back up."""
    h, w = rgb.shape[:2]
    s = min(1.0, short / min(h, w))
    return cv2.resize(rgb, (max(2, int(w * s)), max(2, int(h * s))), interpolation=cv2.INTER_AREA)


def _up(img: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_LINEAR)


def _edges(rgb: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(_small(rgb), cv2.COLOR_RGB2GRAY)
    e = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 60, 140)
    return _up(cv2.dilate(e, np.ones((2, 2), np.uint8)), rgb)


def look_neon(rgb, p, t):
    out = _shift_hue(rgb, 150 + 40 * p.values["hue"], sat=1.6)
    out = cv2.LUT(out, _lut(lambda x: np.clip(_s_curve(p.values["contrast"] + 0.2)(x) - 0.08, 0, 1)))
    small = _small(rgb)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 60, 140)
    glow = cv2.GaussianBlur(edges, (0, 0), 2)
    color = np.array([1.0, 0.16, 0.86] if p.values["tint"] > 0.5 else [0.16, 0.94, 1.0], np.float32)
    glow3 = cv2.transform(cv2.cvtColor(glow, cv2.COLOR_GRAY2RGB), np.diag(color * 2 * p.values["strength"]))
    return cv2.add(out, _up(glow3, rgb))


def look_noir(rgb, p, t):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.LUT(gray, _lut(_s_curve(p.values["contrast"] + 0.35)))
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def look_watercolor(rgb, p, t):
    small = _small(rgb)
    for _ in range(2):
        small = cv2.bilateralFilter(small, 7, 60, 7)
    small = cv2.LUT(small, _lut(lambda x: 0.12 + 0.85 * x))
    out = _up(small, rgb)
    return _shift_hue(out, 12 * p.values["hue"], sat=0.8 + 0.2 * p.values["strength"])


def look_sketch(rgb, p, t):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    blur = cv2.GaussianBlur(255 - gray, (0, 0), 4 + 4 * p.values["tint"])
    sketch = cv2.divide(gray, 255 - blur, scale=256)
    sketch = cv2.LUT(sketch, _lut(lambda x: x ** (1.2 + p.values["strength"])))
    paper = np.diag(np.array([245, 240, 228], np.float32) / 255.0)
    return cv2.transform(cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB), paper)


def look_anime(rgb, p, t):
    small = cv2.bilateralFilter(_small(rgb, 240), 7, 80, 7)
    levels = p.values["levels"]
    small = cv2.LUT(small, _lut(lambda x: np.round(x * (levels - 1)) / (levels - 1)))
    out = _shift_hue(_up(small, rgb), 8 * p.values["hue"], sat=1.35)
    edges = _edges(rgb)
    out[edges > 0] = (out[edges > 0] * 0.25).astype(np.uint8)
    return out


def look_sepia(rgb, p, t):
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    out = cv2.transform(rgb, m * (0.9 + 0.1 * p.values["strength"]))
    return cv2.LUT(out, _lut(lambda x: 0.08 + 0.85 * x))


def look_winter(rgb, p, t):
    out = _shift_hue(rgb, 0, sat=0.55)
    out = _tint(out, (0.75, 0.88, 1.0), 0.25 + 0.1 * p.values["tint"])
    out = cv2.LUT(out, _lut(lambda x: 0.1 + 0.92 * x))
    # Falling snow: flake positions are a pure function of (look seed, time), so frames are reproducible.
    rng = np.random.default_rng(p.rng_seed)
    h, w = out.shape[:2]
    n = 90
    xs = rng.uniform(0, w, n)
    ys0 = rng.uniform(0, h, n)
    speed = rng.uniform(0.08, 0.2, n) * h
    for x, y0, v in zip(xs, ys0, speed, strict=True):
        y = (y0 + v * t) % h
        cv2.circle(out, (int(x + 6 * np.sin(t * 2 + x)), int(y)), max(1, h // 300), (255, 255, 255), -1)
    return out


def look_golden_hour(rgb, p, t):
    out = _tint(rgb, (1.0, 0.62, 0.25), 0.28 + 0.1 * p.values["tint"])
    return cv2.multiply(out, _sun_gain(out.shape[0], out.shape[1]), scale=1 / 128)


@lru_cache(maxsize=8)
def _sun_gain(h: int, w: int) -> np.ndarray:
    """A warm light from the top, as a gain image in 1/128 units (so 128 = unchanged)."""
    ramp = np.linspace(1.25, 0.9, h, dtype=np.float32)[:, None, None]
    warm = np.array([1.0, 0.85, 0.6], np.float32)[None, None, :]
    gain = ramp * warm + (1 - warm) * 0.3
    return np.clip(np.broadcast_to(gain, (h, w, 3)) * 128, 0, 255).astype(np.uint8)


def look_thermal(rgb, p, t):
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (0, 0), 2)
    cmap = cv2.COLORMAP_INFERNO if p.values["tint"] > 0.5 else cv2.COLORMAP_JET
    return cv2.cvtColor(cv2.applyColorMap(gray, cmap), cv2.COLOR_BGR2RGB)


def look_grade(rgb, p, t):
    v = p.values
    out = cv2.transform(rgb, np.diag([v["r"], v["g"], v["b"]]).astype(np.float32))
    out = _shift_hue(out, v["hue_rot"] + 15 * v["hue"], sat=0.9 + 0.3 * v["strength"])
    return cv2.LUT(out, _lut(_s_curve(v["contrast"])))


LOOKS: dict[str, Callable[[np.ndarray, LookParams, float], np.ndarray]] = {
    "neon": look_neon,
    "noir": look_noir,
    "watercolor": look_watercolor,
    "sketch": look_sketch,
    "anime": look_anime,
    "sepia": look_sepia,
    "winter": look_winter,
    "golden_hour": look_golden_hour,
    "thermal": look_thermal,
    "grade": look_grade,
}


def palette_transfer(rgb: np.ndarray, ref_mean: np.ndarray, ref_std: np.ndarray, amount: float) -> np.ndarray:
    """Pull the frame's Lab colour statistics toward the reference image's (Reinhard et al. 2001)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    mean = lab.reshape(-1, 3).mean(0)
    std = lab.reshape(-1, 3).std(0) + 1e-3
    moved = (lab - mean) * (ref_std / std) + ref_mean
    mixed = lab * (1 - amount) + moved * amount
    mixed[..., 0] = lab[..., 0] * 0.7 + mixed[..., 0] * 0.3  # keep most of the luminance structure
    return cv2.cvtColor(np.clip(mixed, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def reference_stats(ref_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(_small(ref_rgb, 128), cv2.COLOR_RGB2LAB).astype(np.float32).reshape(-1, 3)
    return lab.mean(0), lab.std(0) + 1e-3
