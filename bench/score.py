"""Scoring cost, side by side in one run.

Prints, as medians of several runs on the demo clip against an emulator output:
- `score` with every metric at defaults, cold (nothing cached) and warm (the source's frames and
  flow already sampled, as for every cell after the first of a sweep on one source);
- decord decoding both clips whole at native size (what any scorer that reads every frame pays);
- a naive scorer (every frame at full size, scikit-image SSIM), run once;
then the peak memory of scoring a 20 s 1080p clip, in a fresh process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import decord
import numpy as np
from skimage.metrics import structural_similarity

from v2v_lab import score
from v2v_lab.emulator.engine import RenderJob, render
from v2v_lab.media.reader import iter_frames
from v2v_lab.media.sampling import clear_source_cache
from v2v_lab.media.writer import write_mp4

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


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_1080p_pair(folder: Path) -> tuple[str, str]:
    """A 20 s 1080p source (the demo clip looped and upscaled) and a blurred copy as the output."""
    source, output = folder / "src_1080p_20s.mp4", folder / "out_1080p_20s.mp4"
    frames = list(iter_frames(DEMO))

    def looped():
        for i in range(20 * 25):
            yield cv2.resize(frames[i % len(frames)], (1920, 1080), interpolation=cv2.INTER_LINEAR)

    write_mp4(source, looped(), 25, preset="ultrafast")
    write_mp4(output, (cv2.GaussianBlur(f, (0, 0), 2.0) for f in looped()), 25, preset="ultrafast")
    return str(source), str(output)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
MEMORY_CHILD = """
import sys
def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from v2v_lab import score
base = hwm_mb()
report = score(sys.argv[1], sys.argv[2])
print(base, hwm_mb(), report.timings["total_s"])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        render(RenderJob(DEMO, "gen4_aleph", "neon city", 1, "1280:720", 24, 5.0, out))
        score(DEMO, out)  # warm up imports and thread pools
        cold, warm, decode = [], [], []
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all three alike
            clear_source_cache()
            cold.append(timed(lambda: score(DEMO, out)))
            warm.append(timed(lambda: score(DEMO, out)))
            decode.append(full_decode(DEMO, out))
        t_cold, t_warm, t_decode = (statistics.median(x) for x in (cold, warm, decode))
        t_naive = float("nan") if args.no_naive else naive(DEMO, out)
        print(f"demo clip 1280x720, 132 + 120 frames; medians of {args.repeats} runs")
        print(f"decord full decode of both clips:        {t_decode:.3f} s")
        print(f"score, cold (all metrics, 16 pairs, 256): {t_cold:.3f} s   score/decode = {t_cold / t_decode:.2f}x")
        print(f"score, warm (source already sampled):    {t_warm:.3f} s   score/decode = {t_warm / t_decode:.2f}x")
        print(f"naive scorer (every frame, full size):   {t_naive:.3f} s   naive/score(cold) = {t_naive / t_cold:.1f}x")
        if not args.no_memory:
            src, outp = make_1080p_pair(Path(tmp))
            res = subprocess.run([sys.executable, "-c", MEMORY_CHILD, src, outp], capture_output=True, text=True,
                                 check=True)
            base, peak, took = (float(x) for x in res.stdout.split())
            print(f"20 s 1080p clip: peak RSS {peak:.0f} MB (after imports {base:.0f} MB; "
                  f"scoring added {peak - base:.0f} MB), score took {took:.2f} s")


if __name__ == "__main__":
    main()
