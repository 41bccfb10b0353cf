"""Scoring cost, side by side in one run.

Prints, as medians of runs interleaved with the decodes they are compared with (so drifting
machine load hits both alike):
- on the demo clip against an emulator output, and on a 20 s 1080p pair made here (the demo clip
  looped and upscaled, and a blurred copy; nothing downloaded): `score` with every built-in metric
  at defaults, cold (nothing cached) and warm (the source's frames and flow already sampled, as for
  every cell after the first of a sweep on one source), against decord decoding both clips whole at
  native size (what any scorer that reads every frame pays);
- where the time goes: a per-stage breakdown of one cold and one warm score (probe, decode,
  resize, flow, each metric), in seconds of work summed over threads (stages on the two cores
  overlap, so they can add up to more than the wall time);
- the peak memory of scoring the 20 s 1080p clip, in a fresh process;
- the command as a user meets it, each a whole process: `v2v-lab --help`, `v2v-lab score --help`,
  and `v2v-lab score` on a 4 s 1280x720 pair against decoding that pair whole;
- a naive scorer (every frame at full size, scikit-image SSIM), run once.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import decord
import numpy as np
from skimage.metrics import structural_similarity

from v2v_lab import score
from v2v_lab.emulator.engine import RenderJob, render
from v2v_lab.media.reader import iter_frames
from v2v_lab.media.sampling import clear_source_cache
from v2v_lab.media.writer import write_mp4
from v2v_lab.metrics import BUILTIN_METRICS

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "media" / "bigbuckbunny.mp4")
CLI = str(Path(sys.executable).with_name("v2v-lab"))


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


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def timed_both(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process (every thread): the CPU figure holds when other
    work shares the cores, the wall figure is what a user waits."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def score_all(source: str, output: str) -> Any:
    return score(source, output, list(BUILTIN_METRICS))


# -- the stages: timers wrapped around the functions that do each kind of work -------------------------------
# (module, attribute, stage). A name one version of the code does not have is skipped, so the same
# bench reads the code before and after a change.
STAGE_FUNCTIONS = [
    ("v2v_lab.media.sampling", "probe_video", "probe"),
    ("v2v_lab.media.reader.DecordReader", "get_frames", "decode"),
    ("v2v_lab.media.reader.PyAVReader", "get_frames", "decode"),
    ("v2v_lab.media.sampling", "_fit", "resize"),
    ("v2v_lab.metrics.warp_error", "flow", "flow"),
    ("v2v_lab.metrics.motion_epe", "flow", "flow"),
]


def _owner(dotted: str) -> Any:
    module, _, cls = dotted.rpartition(".")
    if cls[:1].isupper():
        return getattr(sys.modules[module], cls, None)
    return sys.modules.get(dotted)


@contextlib.contextmanager
def stage_timers() -> Iterator[dict[str, float]]:
    """Seconds spent inside each stage's functions while the block runs, summed over threads."""
    spent: dict[str, float] = defaultdict(float)
    lock = threading.Lock()
    undo = []

    def wrap(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed_call(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                with lock:
                    spent[stage] += time.perf_counter() - t
        return timed_call

    for where, name, stage in STAGE_FUNCTIONS:
        owner = _owner(where)
        fn = getattr(owner, name, None) if owner is not None else None
        if fn is not None:
            undo.append((owner, name, fn))
            setattr(owner, name, wrap(fn, stage))
    try:
        yield spent
    finally:
        for owner, name, fn in undo:
            setattr(owner, name, fn)


def breakdown(source: str, output: str) -> dict[str, dict[str, float]]:
    """One cold and one warm score, each stage's seconds and each metric's (report.timings)."""
    rows: dict[str, dict[str, float]] = {}
    clear_source_cache()
    for kind in ("cold", "warm"):
        with stage_timers() as spent:
            report = score_all(source, output)
        row = dict(spent)
        row.update({k.removesuffix("_s"): v for k, v in report.timings.items()
                    if k not in ("sample_s", "total_s")})
        row["wall"] = report.timings["total_s"]
        rows[kind] = row
    return rows


def print_breakdown(title: str, rows: dict[str, dict[str, float]]) -> None:
    stages = ["probe", "decode", "resize", "flow"]
    rest = sorted({k for row in rows.values() for k in row} - set(stages) - {"wall"})
    print(f"  where the time goes, {title} (s of work, summed over threads; flow is inside its metrics' times):")
    print(f"    {'stage':<30}{'cold':>8}{'warm':>8}")
    for name in [*stages, *rest, "wall"]:
        cold, warm = (rows[k].get(name, 0.0) for k in ("cold", "warm"))
        print(f"    {name:<30}{cold:>8.3f}{warm:>8.3f}")


def score_vs_decode(source: str, output: str, repeats: int) -> dict[str, float]:
    score_all(source, output)  # warm up imports and thread pools
    runs: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "decode": []}
    for _ in range(repeats):  # interleaved, so drifting machine load hits all three alike
        clear_source_cache()
        runs["cold"].append(timed_both(lambda: score_all(source, output)))
        runs["warm"].append(timed_both(lambda: score_all(source, output)))
        runs["decode"].append(timed_both(lambda: full_decode(source, output)))
    medians = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    medians.update({f"{k}_cpu": statistics.median(c for _, c in v) for k, v in runs.items()})
    return medians


def print_ratios(title: str, t: dict[str, float]) -> None:
    print(title + " (wall, and CPU of every thread)")
    print(f"  decord full decode of both clips:        {t['decode']:.3f} s  cpu {t['decode_cpu']:.3f} s")
    for kind, what in (("cold", "every built-in metric"), ("warm", "source already sampled")):
        print(f"  score, {kind} ({what}):{' ' * (31 - len(what) - len(kind))}{t[kind]:.3f} s  cpu {t[kind + '_cpu']:.3f} s"
              f"   score/decode = {t[kind] / t['decode']:.2f}x  (cpu {t[kind + '_cpu'] / t['decode_cpu']:.2f}x)")


def make_1080p_pair(folder: Path) -> tuple[str, str]:
    """A 20 s 1080p source (the demo clip looped and upscaled) and a blurred copy as the output."""
    source, output = folder / "src_1080p_20s.mp4", folder / "out_1080p_20s.mp4"
    frames = list(iter_frames(DEMO))

    def looped() -> Iterator[np.ndarray]:
        for i in range(20 * 25):
            yield cv2.resize(frames[i % len(frames)], (1920, 1080), interpolation=cv2.INTER_LINEAR)

    write_mp4(source, looped(), 25, preset="ultrafast")
    write_mp4(output, (cv2.GaussianBlur(f, (0, 0), 2.0) for f in looped()), 25, preset="ultrafast")
    return str(source), str(output)


def make_720p_pair(folder: Path) -> tuple[str, str]:
    """A 4 s 1280x720 source (the demo clip's first 4 s) and the emulator's output of it."""
    source, output = folder / "src_720p_4s.mp4", folder / "out_720p_4s.mp4"
    frames = iter_frames(DEMO)
    write_mp4(source, (next(frames) for _ in range(4 * 25)), 25)
    render(RenderJob(str(source), "gen4_aleph", "neon city", 1, "1280:720", 24, 4.0, str(output)))
    return str(source), str(output)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
MEMORY_CHILD = """
import sys
def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from v2v_lab import score
from v2v_lab.metrics import BUILTIN_METRICS
base = hwm_mb()
report = score(sys.argv[1], sys.argv[2], list(BUILTIN_METRICS))
print(base, hwm_mb(), report.timings["total_s"])
"""


def peak_memory(source: str, output: str) -> None:
    res = subprocess.run([sys.executable, "-c", MEMORY_CHILD, source, output], capture_output=True, text=True,
                         check=True)
    base, peak, took = (float(x) for x in res.stdout.split())
    print(f"  peak RSS {peak:.0f} MB (after imports {base:.0f} MB; scoring added {peak - base:.0f} MB), "
          f"score took {took:.2f} s")


def run_cli(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([CLI, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def cli_costs(source: str, output: str, repeats: int) -> None:
    run_cli("score", source, output)  # the files in the page cache, as for every run after the first
    helps, score_helps, scores, decode = [], [], [], []
    for _ in range(repeats):
        helps.append(run_cli("--help"))
        score_helps.append(run_cli("score", "--help"))
        scores.append(run_cli("score", source, output))
        decode.append(full_decode(source, output))
    t_help, t_score_help, t_score, t_decode = (statistics.median(x) for x in (helps, score_helps, scores, decode))
    print(f"the command as a user meets it (whole processes; medians of {repeats} runs)")
    print(f"  v2v-lab --help:                          {t_help:.3f} s")
    print(f"  v2v-lab score --help:                    {t_score_help:.3f} s")
    print(f"  decord full decode of the 4 s 720p pair: {t_decode:.3f} s (in this process)")
    print(f"  v2v-lab score on that pair:              {t_score:.3f} s   process/decode = {t_score / t_decode:.2f}x")


PARTS = ("demo", "1080p", "cli", "naive")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which to run, of {', '.join(PARTS)}")
    ap.add_argument("--no-naive", action="store_true", help="the same as leaving naive out of --parts")
    args = ap.parse_args()
    parts = set(args.parts.split(",")) - ({"naive"} if args.no_naive else set())
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        render(RenderJob(DEMO, "gen4_aleph", "neon city", 1, "1280:720", 24, 5.0, out))
        if "demo" in parts:
            t = score_vs_decode(DEMO, out, args.repeats)
            print_ratios(f"demo clip 1280x720, 132 + 120 frames; medians of {args.repeats} runs", t)
            print_breakdown("demo clip", breakdown(DEMO, out))
        if "1080p" in parts:
            src, outp = make_1080p_pair(Path(tmp))
            repeats = max(1, args.repeats // 2)
            t = score_vs_decode(src, outp, repeats)
            print_ratios(f"20 s 1080p pair, 500 + 500 frames; medians of {repeats} runs", t)
            print_breakdown("20 s 1080p pair", breakdown(src, outp))
            peak_memory(src, outp)
        if "cli" in parts:
            cli_costs(*make_720p_pair(Path(tmp)), args.repeats)
        if "naive" in parts:
            t_naive = naive(DEMO, out)
            print(f"naive scorer on the demo clip (every frame, full size): {t_naive:.3f} s")


if __name__ == "__main__":
    main()
