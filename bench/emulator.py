"""How long the emulator takes to render the demo clip: per model (each with its own fields), per
output format and with audio, side by side in one run as ratios; and cold (the source decoded) against
warm (the decoded source reused, as for every task after the first on one source)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from v2v_lab.api.catalog import load_catalog
from v2v_lab.emulator.engine import RenderJob, clear_decoded_sources, render
from v2v_lab.media.probe import probe_video

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "media" / "bigbuckbunny.mp4")
PROMPT = "a neon city at night"
# Each model as a sweep would typically ask for it: its size field, a 5 s duration where it takes one.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
    "gen4_aleph": {"ratio": "1280:720"},
    "gen3a_turbo": {"ratio": "1280:768"},
    "aleph2": {},
    "seedance2": {"ratio": "1280:720", "duration": 5},
    "seedance2_fast": {"ratio": "1280:720", "duration": 5},
    "seedance2_mini": {"ratio": "1280:720", "duration": 5},
    "seedance2_5": {"ratio": "1280:720", "duration": 5},
    "hailuo3": {"ratio": "16:9", "duration": 6},
    "gemini_omni_flash": {},
    "gemini_omni_flash_1.1": {"ratio": "1280:720", "duration": 5},
    "klingO3_standard": {},
    "klingO3_pro": {},
    "klingO3_4k": {},
    "kling_4": {"ratio": "auto_720p"},
}
# aleph2's output formats (and seedance2_5's mov), each against the same render as H.264 mp4.
FORMATS: dict[str, dict[str, Any]] = {
    "mp4": {}, "mov": {"output_format": "mov"}, "prores 4444": {"output_format": "prores"},
    "prores 422 Proxy": {"output_format": "prores", "prores_profile": "422 Proxy"},
    "png_sequence": {"output_format": "png_sequence"}, "sdr_rec709_10bit": {"output_format": "sdr_rec709_10bit"},
    "mp4 + audio": {"audio": True},
}


def job_for(model: str, fields: dict[str, Any], scale: float, out: str) -> RenderJob:
    """The RenderJob the emulator's state builds for a task with these fields (state.render_job)."""
    spec = load_catalog()[model]
    opts = {**{n: f.default for n, f in spec.fields.items() if f.default is not None}, **fields}
    seconds = spec.expected_output_seconds(probe_video(DEMO).duration_s, opts)
    return RenderJob(DEMO, model, PROMPT, 1, opts.get("ratio") if spec.ratios else None, spec.output_fps,
                     spec.max_output_seconds, out + spec.output_suffix(opts), None, scale, output_seconds=seconds,
                     resolution=opts.get("resolution"), draft=bool(opts.get("draft")), audio=bool(opts.get("audio")),
                     output_format=str(opts.get("output_format", "mp4")),
                     prores_profile=str(opts.get("prores_profile", "4444")))


def timed(job: RenderJob) -> tuple[float, Any]:
    t = time.perf_counter()
    result = render(job)
    return time.perf_counter() - t, result


def warm_median(job: RenderJob, runs: int) -> tuple[float, Any]:
    render(job)  # decodes the source once: what follows is warm
    times = []
    result = None
    for _ in range(runs):
        took, result = timed(job)
        times.append(took)
    return statistics.median(times), result


def per_model(tmp: str, scale: float, runs: int) -> None:
    print(f"per model, render scale {scale:g}, warm median of {runs} (each with its own fields; x: vs aleph2)")
    rows = {m: warm_median(job_for(m, f, scale, f"{tmp}/{m}"), runs) for m, f in MODEL_FIELDS.items()}
    base = rows["aleph2"][0]
    for model, (took, r) in rows.items():
        print(f"  {model:22s} {r.width:4d}x{r.height:<4d} {r.duration_s:4.1f} s of output: {took:6.2f} s "
              f"({took / base:4.2f}x, {took / r.frames * 1000:5.1f} ms/frame)")


def per_format(tmp: str, scale: float, runs: int) -> None:
    print(f"per output format, aleph2 at render scale {scale:g}, warm median of {runs} (x: vs mp4)")
    rows = {}
    for name, fields in FORMATS.items():
        model = "seedance2_5" if name == "mov" else "aleph2"
        extra = {"ratio": "1280:720", "duration": 5} if model == "seedance2_5" else {}
        rows[name] = warm_median(job_for(model, {**extra, **fields}, scale, f"{tmp}/{name.replace(' ', '_')}"), runs)
    base = rows["mp4"][0]
    for name, (took, r) in rows.items():
        size = Path(r.path).stat().st_size / 1e6
        print(f"  {name:18s} {took:6.2f} s ({took / base:4.2f}x), {size:6.2f} MB")


def cold_warm(tmp: str) -> None:
    print("cold (source decoded) against warm (decoded source reused), aleph2")
    for scale in (1.0, 0.25):
        job = job_for("aleph2", {}, scale, f"{tmp}/cw")
        clear_decoded_sources()
        cold, _ = timed(job)
        warm = statistics.median(timed(job)[0] for _ in range(3))
        print(f"  scale {scale:<4g}: cold {cold:5.2f} s, warm {warm:5.2f} s ({cold / warm:.1f}x)")


def main() -> None:
    runs = 1 if "--quick" in sys.argv else 3
    with tempfile.TemporaryDirectory() as tmp:
        print("the 5.3 s 1280x720 demo clip, prompt 'a neon city at night'")
        per_model(tmp, 0.25, runs)
        per_format(tmp, 0.5, runs)
        cold_warm(tmp)


if __name__ == "__main__":
    main()
