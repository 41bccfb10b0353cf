"""Scoring cost, side by side in one run: v2v_lab.score vs decoding both clips whole vs a naive scorer."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import decord
import numpy as np
from skimage.metrics import structural_similarity

from v2v_lab import score
from v2v_lab.emulator.engine import RenderJob, render

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "media" / "bigbuckbunny.mp4")


def full_decode(*paths: str) -> float:
    t = time.perf_counter()
    for p in paths:
        vr = decord.VideoReader(p)
        for i in range(len(vr)):
            vr[i].asnumpy()
    return time.perf_counter() - t


def naive(source: str, output: str) -> float:
    t = time.perf_counter()
    src, out = decord.VideoReader(source), decord.VideoReader(output)
    for i in range(min(len(src), len(out))):
        a, b = src[i].asnumpy(), out[i].asnumpy()
        if a.shape != b.shape:
            b = np.ascontiguousarray(b[: a.shape[0], : a.shape[1]])
            a = a[: b.shape[0], : b.shape[1]]
        structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=255, channel_axis=-1)
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        render(RenderJob(DEMO, "gen4_aleph", "neon city", 1, "1280:720", 24, 5.0, out))
        score(DEMO, out)  # warm up imports and thread pools
        t = time.perf_counter()
        score(DEMO, out)
        t_score = time.perf_counter() - t
        t_decode = full_decode(DEMO, out)
        t_naive = naive(DEMO, out) if "--no-naive" not in sys.argv else float("nan")
    print(f"score (all metrics, 16 frames, 256 px): {t_score:.2f} s")
    print(f"decord full decode of both clips:       {t_decode:.2f} s   score/decode = {t_score / t_decode:.2f}x")
    print(f"naive scorer (every frame, full size):  {t_naive:.2f} s   naive/score = {t_naive / t_score:.1f}x")


if __name__ == "__main__":
    main()
