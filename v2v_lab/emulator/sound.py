"""The emulator's stand-in for a model's generated sound: a soft chord with a pulse, chosen by prompt and seed.

A pure function of (prompt, seed, sample index), so a seeded task's track is as reproducible as its
frames, and tracks of different seeds differ audibly. None of this is a generative model.
"""

from __future__ import annotations

import numpy as np

from ..media.writer import AudioTrack
from .looks import stable_hash

__all__ = ["RATE", "soundtrack"]

RATE = 48_000


def soundtrack(prompt: str, seed: int, seconds: float) -> AudioTrack:
    """A stereo track: three partials of a chord rooted between 110 and 220 Hz, a slow pulse, and a
    fade in and out over the output's length (so the track ends where the video does)."""
    rng = np.random.default_rng(stable_hash("sound", prompt, seed))
    root = float(rng.uniform(110.0, 220.0))
    partials = np.array([root, root * 1.25, root * 1.5], np.float64)[:, None]
    pulse_hz = float(rng.uniform(0.5, 2.0))
    pan = float(rng.uniform(0.3, 0.7))
    total = max(1, int(seconds * RATE))

    def samples(start: int, count: int) -> np.ndarray:
        n = np.arange(start, start + count, dtype=np.float64)
        t = n / RATE
        chord = np.sin(2 * np.pi * partials * t).sum(0) / 3
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * pulse_hz * t)
        fade = np.clip(np.minimum(n, total - n) / (0.05 * RATE), 0.0, 1.0)
        mono = 0.25 * chord * envelope * fade
        return np.stack([mono * (1 - pan) * 2, mono * pan * 2]).astype(np.float32)

    return AudioTrack(samples, RATE, "stereo")
