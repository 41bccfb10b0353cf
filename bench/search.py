"""The adaptive search (spec key search:) against the full grid, side by side in one run.

(b) On the emulator: 8 prompts x 8 seeds, the full grid in one store and the search in another
(each pays for its own cells): the grid's best prompt by `structure` against the search's winner,
and the credits each spent. The grid also gives the emulator's seed noise per prompt: the standard
deviation of each prompt's two-way residuals (prompt and seed effects removed: the part of the
noise paired differences do not cancel), which (a) uses.

(a) Simulation: 500 studies of 8 candidates x 8 seeds at confidence 0.95 through the search's own
decision core (v2v_lab.sweeps.search.replay). Each candidate's seed noise is one prompt's measured
noise (drawn from (b)'s); gaps are in units of their root mean square. Two readings of "gaps from
0.5 to 2 noise SDs": spaced, the candidates g apart one after the other with g uniform in 0.5..2
per study (the goal's setting; the dry run's expected cost assumes it); fanned, the seven others
behind the best by gaps spread evenly from 0.5 to 2 (every study has a runner-up half a noise SD
behind, several within one). Counted: the share of studies whose search names the grid's best (the
best mean over all 8 seeds), and the search's cells against the grid's 64.

Goal: the grid's best in at least 95% of the spaced studies, for at most 40% of the grid's credits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from v2v_lab import load_runs
from v2v_lab.sweeps import run_sweep
from v2v_lab.sweeps.search import cells_run, replay

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "experiments" / "media" / "bigbuckbunny.mp4"
# One prompt per look of the emulator's (each renders differently).
PROMPTS = ["neon city at night", "film noir street", "watercolor painting", "pencil sketch",
           "anime style", "sepia old film", "winter with snow", "thermal camera"]
CANDIDATES = SEEDS = 8


def _spec(folder: Path, experiment: str, search: bool) -> Path:
    spec = {"experiment": experiment, "videos": [str(CLIP)], "models": ["gen4_aleph"], "prompts": PROMPTS,
            "seeds": {"count": SEEDS}, "ratios": ["1280:720"], "concurrency": 8,
            "emulator": {"render_scale": 0.1}, "scoring": {"frames": 4, "size": 64}}
    if search:
        spec["search"] = {"best": "prompt", "metric": "structure", "confidence": 0.95}
    path = folder / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def emulator_study(folder: Path) -> tuple[dict, np.ndarray]:
    """(b): the grid and the search on the emulator; returns the comparison and the per-prompt noise."""
    out: dict = {}
    for name, search in (("grid", False), ("search", True)):
        uri = f"sqlite:///{folder / name}.db"
        t0 = time.monotonic()
        result = run_sweep(_spec(folder, name, search), yes=True, progress=False, tracking_uri=uri,
                           journal_path=str(folder / f"{name}.journal.sqlite"))
        runs = load_runs(name, tracking_uri=uri)
        out[name] = {"cells": len(runs), "credits": float(runs["credits"].sum()), "wall_s": time.monotonic() - t0,
                     "result": result, "runs": runs}
    grid = out["grid"]["runs"].pivot_table(index="prompt", columns="seed", values="structure")
    out["grid_best"] = str(grid.mean(axis=1).idxmax())
    report = out["search"]["result"].search
    out["search_best"] = report.winner if report is not None else None
    out["rounds"] = report.table() if report is not None else ""
    values = grid.to_numpy()
    resid = values - values.mean(1, keepdims=True) - values.mean(0, keepdims=True) + values.mean()
    noise = np.sqrt((resid ** 2).sum(1) / (SEEDS - 1) * CANDIDATES / (CANDIDATES - 1))
    out["raw_sd"] = values.std(1, ddof=1)
    return out, noise


def simulate(noise: np.ndarray, studies: int, setting: str, confidence: float, seed: int = 0) -> tuple[float, float]:
    """(a): share of studies naming the grid's best, and the share of the grid's cells run."""
    rng = np.random.default_rng(seed)
    unit = float(np.sqrt(np.mean(noise ** 2)))
    right = cells = 0
    for _ in range(studies):
        if setting == "spaced":
            gaps = rng.uniform(0.5, 2.0) * np.arange(CANDIDATES)
        else:
            gaps = np.r_[0.0, np.linspace(0.5, 2.0, CANDIDATES - 1)]
        sigma = rng.choice(noise, CANDIDATES) / unit
        scores = -gaps[:, None] + sigma[:, None] * rng.standard_normal((CANDIDATES, SEEDS))
        table = {(k, s): float(scores[k, s]) for k in range(CANDIDATES) for s in range(SEEDS)}
        state = replay(table, CANDIDATES, SEEDS, confidence)
        right += state.winner == int(np.argmax(scores.mean(1)))
        cells += cells_run(state)
    return right / studies, cells / (studies * CANDIDATES * SEEDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="v2v-bench-search-") as tmp:
        emu, noise = emulator_study(Path(tmp))
    print(f"(b) emulator, {CANDIDATES} prompts x {SEEDS} seeds, best prompt by structure, confidence 0.95")
    print(f"{'':8}{'cells':>7}{'credits':>10}{'wall s':>9}  best")
    for name in ("grid", "search"):
        row = emu[name]
        best = emu["grid_best"] if name == "grid" else emu["search_best"]
        print(f"{name:8}{row['cells']:>7}{row['credits']:>10.1f}{row['wall_s']:>9.1f}  {best}")
    print(f"same winner: {emu['grid_best'] == emu['search_best']}; search/grid credits: "
          f"{emu['search']['credits'] / emu['grid']['credits']:.2f}")
    print(emu["rounds"])
    print("\nper-prompt seed noise of structure (raw SD; residual SD once the seed's shared effect is out):")
    for prompt, raw, resid in zip(PROMPTS, emu["raw_sd"], noise, strict=True):
        print(f"  {prompt:22} {raw:.4f}  {resid:.4f}")
    print(f"\n(a) simulation, {args.studies} studies of {CANDIDATES} candidates x {SEEDS} seeds, "
          f"confidence {args.confidence:g}, noise per candidate drawn from the residual SDs above")
    print(f"{'gaps':40}{'grid best named':>17}{'search/grid cells':>19}")
    for setting, text in (("spaced", "spaced: g apart, g uniform 0.5..2 (goal)"),
                          ("fanned", "fanned: 0.5..2 behind the best, evenly")):
        share, cost = simulate(noise, args.studies, setting, args.confidence)
        print(f"{text:40}{share:>17.1%}{cost:>19.2f}")
    print("goal (spaced): grid best in >= 95% of studies, for <= 0.40 of the grid's credits")


if __name__ == "__main__":
    main()
