"""Sweep throughput on the emulator, side by side in one run.

1. 64 cells, 2 s of emulated generation per task, concurrency 8, scoring off: wall time against the
   ideal 64 / 8 x 2 s = 16 s, as an efficiency (goal >= 0.85). Both the whole command (emulator
   start, MLflow set-up, parent run) and the cells alone (first create to last cell logged) are shown.
2. The same with scoring on: cells per minute.
3. The same as 1 with a budget cap (every cell fits): a model's first create then goes alone, its
   estimatedCost telling the endpoint's price before the others leave. The wall-time ratio against 1
   is what that costs (goal <= 1.05).
Each part runs with a fresh state folder and its own SQLite MLflow store, created beforehand: a
new store's schema migrations take MLflow about 1.5 s, once per store, and are shown apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from v2v_lab import run_sweep
from v2v_lab.sweeps.spec import parse_spec
from v2v_lab.tracking.writer import SweepWriter

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
experiment: bench_{name}
provider: local
videos: [{video}]
models: [gen4_aleph]
prompts: {{template: "{{subject}} as {{style}}", vars: {{subject: [a rabbit, a meadow, a tree, the sky],
                                                       style: [oil paint, charcoal]}}}}
seeds: {{count: 8, start: 1}}
ratios: ["1280:720"]
concurrency: {concurrency}
scoring: {{enabled: {scoring}}}
emulator: {{run_s: {run_s}, queue_s: 0.0, render_scale: {scale}}}
"""


def run(name: str, cells_expected: int, concurrency: int, run_s: float, scoring: bool, scale: float,
        max_credits: float | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["V2V_LAB_HOME"] = str(Path(tmp) / "state")
        text = SPEC.format(name=name, video=ROOT / "experiments" / "media" / "bigbuckbunny.mp4",
                           concurrency=concurrency, scoring=str(scoring).lower(), run_s=run_s, scale=scale)
        spec = parse_spec(text, "bench")
        uri = f"sqlite:///{tmp}/mlflow.db"
        t = time.monotonic()
        SweepWriter("store-setup", uri).close()  # what a project's first sweep pays, once
        store_s = time.monotonic() - t
        first: list[float] = []
        last: list[float] = []

        def on_event(kind: str, cell: Any, data: dict[str, Any]) -> None:
            if kind == "created" and not first:
                first.append(time.monotonic())
            if kind in ("done", "failed", "unknown"):
                last[:] = [time.monotonic()]

        t0 = time.monotonic()
        result = run_sweep(spec, yes=True, progress=False, on_event=on_event,
                           tracking_uri=uri, max_credits=max_credits)
        wall = time.monotonic() - t0
        assert result.counts.get("succeeded") == cells_expected, result.counts
        return {"wall": wall, "cells_wall": last[0] - first[0], "cells": cells_expected, "store_s": store_s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-s", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--render-scale", type=float, default=0.1,
                    help="emulator render size; small, so the bench measures the runner, not the renderer")
    args = ap.parse_args()
    cells = 64
    ideal = cells / args.concurrency * args.run_s
    off = run("noscore", cells, args.concurrency, args.run_s, False, args.render_scale)
    print(f"{cells} cells, {args.run_s:g} s per task, concurrency {args.concurrency}, scoring off "
          f"(render scale {args.render_scale:g}): ideal {ideal:.1f} s")
    print(f"  new MLflow store set-up (once per store, not counted below): {off['store_s']:.2f} s")
    print(f"  whole command:        {off['wall']:.2f} s   efficiency {ideal / off['wall']:.2f}")
    print(f"  first create to last: {off['cells_wall']:.2f} s   efficiency {ideal / off['cells_wall']:.2f}")
    capped = run("capped", cells, args.concurrency, args.run_s, False, args.render_scale, max_credits=1e9)
    print(f"with a budget cap (a model's first create alone): {capped['wall']:.2f} s, first create to last "
          f"{capped['cells_wall']:.2f} s; ratio to no cap {capped['wall'] / off['wall']:.3f} (whole command), "
          f"{capped['cells_wall'] / off['cells_wall']:.3f} (cells)")
    on = run("score", cells, args.concurrency, args.run_s, True, args.render_scale)
    print(f"scoring on: {on['wall']:.2f} s for {cells} cells = {cells / on['wall'] * 60:.1f} cells/min "
          f"(scoring off: {cells / off['wall'] * 60:.1f} cells/min)")


if __name__ == "__main__":
    main()
