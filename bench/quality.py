"""Which no-reference quality score: cost per frame here, and whether it ranks damage in order.

For each candidate (PIQE as v2v_lab.metrics implements it; NIQE as bench/niqe.py does; PIQE from `pypiqe` and
BRISQUE from `brisque` when those packages are installed, for reference) and each shipped clip at the scoring size:
blur, blockiness (JPEG) and noise at three increasing strengths. A candidate "ranks in order" when
its score worsens from each strength to the next, for every distortion on every clip (whether the
weakest is already worse than the clean clip is shown too). Prints the cost per frame of
each, measured side by side on the same frames.

    python bench/quality.py            # the table the choice of `piqe` was made from
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable

import cv2
import niqe  # bench/niqe.py, beside this script
import numpy as np

from v2v_lab.metrics import piqe
from v2v_lab.validity import SHIPPED_CLIPS, load_clip

STRENGTHS = {
    "blur": (1.0, 2.0, 4.0),  # Gaussian sigma, px at the scoring size
    "blockiness": (40, 15, 5),  # JPEG quality
    "noise": (5.0, 12.0, 25.0),  # Gaussian noise sigma, 0..255
}


def distort(frame: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    if kind == "blur":
        return cv2.GaussianBlur(frame, (0, 0), strength)
    if kind == "blockiness":
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(strength)])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    noisy = frame.astype(np.float32) + rng.normal(0, strength, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def candidates() -> dict[str, Callable[[list[np.ndarray]], float]]:
    """Each maps RGB frames to one score, lower is better for all three."""
    found: dict[str, Callable[[list[np.ndarray]], float]] = {
        "niqe": lambda frames: niqe.distance(np.vstack([niqe.frame_features(f) for f in frames])),
        "piqe": lambda frames: float(np.mean([piqe.piqe_frame(f) for f in frames]))}
    if importlib.util.find_spec("pypiqe"):
        from pypiqe import piqe as pypiqe_score

        found["pypiqe"] = lambda frames: float(np.mean(
            [pypiqe_score(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))[0] for f in frames]))
    if importlib.util.find_spec("brisque"):
        from brisque import BRISQUE

        model = BRISQUE(url=False)

        def brisque(frames: list[np.ndarray]) -> float:
            try:
                return float(np.mean([model.score(f) for f in frames]))
            except TypeError:  # brisque 0.2.0 passes 1-element arrays to float(): numpy 2 refuses
                return float("nan")

        found["brisque"] = brisque
    return found


def main() -> None:
    scorers = candidates()
    clips = {c.rsplit("/", 1)[-1]: load_clip(c)[::8][:8] for c in SHIPPED_CLIPS}
    rng = np.random.default_rng(0)
    cost: dict[str, list[float]] = {name: [] for name in scorers}
    in_order = dict.fromkeys(scorers, True)
    print(f"candidates: {', '.join(scorers)} (lower is better for each)")
    for clip_name, frames in clips.items():
        print(f"\n{clip_name}: {len(frames)} frames at {frames.shape[2]}x{frames.shape[1]}")
        for name, fn in scorers.items():
            t = time.perf_counter()
            clean = fn(list(frames))
            cost[name].append((time.perf_counter() - t) / len(frames))
            cells = [f"clean {clean:7.2f}"]
            for kind, strengths in STRENGTHS.items():
                values = [fn([distort(f, kind, s, rng) for f in frames]) for s in strengths]
                ordered = all(b > a for a, b in zip(values, values[1:], strict=False))
                in_order[name] &= ordered
                cells.append(f"{kind} " + " < ".join(f"{v:.2f}" for v in values) + ("" if ordered else " (NOT in order)")
                             + ("" if values[0] > clean else " (weakest not above clean)"))
            print(f"  {name:8s} " + " | ".join(cells))
    print("\ncost per frame (RGB frame at the scoring size, median over the clips):")
    for name in scorers:
        print(f"  {name:8s} {statistics.median(cost[name]) * 1000:7.1f} ms   ranks every distortion in order: "
              f"{'yes' if in_order[name] else 'no'}")


if __name__ == "__main__":
    main()
