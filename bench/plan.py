"""How long reading, validating and planning a 1,000-cell mixed-model spec takes (five models,
each with axes of its own), cold (the first plan in a process: the clip probed, the catalog read)
and warm (the median of five more). The budget is 2 s: a plan is what --dry-run waits for."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from v2v_lab.sweeps.plan import build_plan
from v2v_lab.sweeps.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "media" / "bigbuckbunny.mp4"
BUDGET_S = 2.0

# 5 + 5 + 6 + 1 + 3 = 20 variants per (prompt, seed); 10 prompts x 5 seeds: 1,000 cells.
SPEC = f"""\
experiment: bench_plan
videos: ["{DEMO}"]
models:
  - aleph2: {{target_aspect_ratio: ["16:9", "9:16", "1:1", "4:3", "3:4"]}}
  - seedance2: {{duration: [4, 5, 6, 8, 10], audio: true}}
  - hailuo3: {{resolution: [768p, 2k], duration: [6, 8, 10]}}
  - gemini_omni_flash
  - gemini_omni_flash_1.1: {{duration: [5, 10, auto]}}
prompts: [{", ".join(f'"look {k}"' for k in range(10))}]
seeds: {{count: 5, start: 1}}
"""


def plan_once() -> tuple[float, int]:
    t = time.perf_counter()
    plan = build_plan(parse_spec(SPEC, "bench", str(ROOT)))
    return time.perf_counter() - t, len(plan.cells)


def main() -> int:
    cold, cells = plan_once()
    warm = statistics.median(plan_once()[0] for _ in range(5))
    print(f"plan of a {cells}-cell spec over 5 models (20 variants): cold {cold:.3f} s, warm {warm:.3f} s "
          f"(budget {BUDGET_S:g} s: {'within' if max(cold, warm) < BUDGET_S else 'OVER'})")
    return 0 if max(cold, warm) < BUDGET_S and cells == 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
