"""How long the emulator takes to render the demo clip per model at full size, and at the small
render scales the tests and sweeps use (cold: the source decoded; warm: the decoded source reused,
as for every task after the first on one source)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from v2v_lab.emulator.engine import RenderJob, clear_decoded_sources, render

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "media" / "bigbuckbunny.mp4")
JOBS = {"gen4_aleph": "1280:720", "aleph2": None, "gen3a_turbo": "1280:768"}


def timed_render(model: str, scale: float, out: str, prompt: str = "a neon city at night") -> float:
    t = time.perf_counter()
    render(RenderJob(DEMO, model, prompt, 1, JOBS[model], 24, 5.0, out, None, scale))
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        print("render of the 5.3 s 1280x720 demo clip (120 output frames)")
        for scale in (1.0, 0.25, 0.1):
            for model in JOBS:
                clear_decoded_sources()
                cold = timed_render(model, scale, out)
                warm = statistics.median(timed_render(model, scale, out) for _ in range(3))
                print(f"  {model:12s} scale {scale:<4g}: cold {cold:5.2f} s, warm {warm:5.2f} s "
                      f"(decoded source reused: {cold / warm:.1f}x)")
        looks = ("neon city", "noir street", "watercolor", "pencil sketch", "anime", "sepia", "winter snow",
                 "golden hour", "thermal camera", "cinematic grade")
        times = {p: timed_render("gen4_aleph", 1.0, out, p) for p in looks}
        print("full size, gen4_aleph, per look: " + ", ".join(f"{p} {t:.1f} s" for p, t in times.items()))


if __name__ == "__main__":
    main()
