"""Sweep throughput on the emulator, as a user meets it: `v2v-lab sweep SPEC --yes` as a whole
process on a new MLflow store (process start, imports, the store's set-up, the parent run, the
cells, the final write and the exit all counted), side by side in one run.

1. 64 cells, 2 s of emulated generation per task, concurrency 8, scoring off: wall time against the
   ideal 64 / 8 x 2 s = 16 s, as an efficiency (goal >= 0.95), with where the time went: from the
   process's start to its first create, from the first create to the last task's end, from there
   to the last cell logged, and from there to the process's exit (read back from the journal and
   the store the command wrote).
2. The same with scoring on: cells per minute against scoring off (goal: within 5%).
3. The same as 1 with a budget cap (every cell fits): a model's first create then goes alone, its
   estimatedCost telling the endpoint's price before the others leave. The wall-time ratio against 1
   is what that costs (goal <= 1.05).
Each command runs with a fresh state folder and a new SQLite store. The three are interleaved and
repeated (--repeat), and the median of each is shown: other work on the machine then weighs on
all three alike. Also shown: how many task reads the sweep sent per task (polling's cost).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("v2v-lab"))
CELLS = 64

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


def run_command(name: str, concurrency: int, run_s: float, scoring: bool, scale: float,
                max_credits: float | None = None, checkout: str | None = None) -> dict[str, float]:
    """One `v2v-lab sweep` process on a fresh state folder and a new store; its wall time and the
    moments read back from what it wrote (all wall-clock seconds from the process's start)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = folder / "spec.yaml"
        spec.write_text(SPEC.format(name=name, video=ROOT / "experiments" / "media" / "bigbuckbunny.mp4",
                                    concurrency=concurrency, scoring=str(scoring).lower(), run_s=run_s, scale=scale))
        env = {**os.environ, "V2V_LAB_HOME": str(folder / "state"),
               "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
        if checkout:  # another checkout's v2v_lab, for a before/after in one run
            env["PYTHONPATH"] = checkout
        argv = [CLI, "sweep", str(spec), "--yes", "--no-progress"]
        if max_credits is not None:
            argv += ["--max-credits", f"{max_credits:g}"]
        t0 = time.time()
        done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if done.returncode != 0 or f"{CELLS} succeeded" not in done.stdout:
            raise SystemExit(f"sweep {name} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return {"wall": wall, **_moments(folder, t0)}


def _moments(folder: Path, t0: float) -> dict[str, float]:
    """When the first task was created, the last one ended, the last cell was logged and the parent
    run began and ended, from the journal (task ids as recorded) and the store (run times, latency_s)."""
    with sqlite3.connect(folder / "state" / "journal.sqlite") as journal:
        created = dict(journal.execute("SELECT task_id, created FROM tasks").fetchall())
    with sqlite3.connect(folder / "mlflow.db") as store:
        runs = store.execute("SELECT r.run_uuid, r.start_time, r.end_time, t.value FROM runs r "
                             "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'v2v.kind'").fetchall()
        latency = dict(store.execute("SELECT run_uuid, value FROM latest_metrics WHERE key = 'latency_s'").fetchall())
        task_of = dict(store.execute("SELECT run_uuid, value FROM tags WHERE key = 'v2v.task_id'").fetchall())
    parent = next(r for r in runs if r[3] == "sweep")
    cells = [r for r in runs if r[3] == "cell"]
    # A task is seen ended latency_s after its create went out; the journal has the moment its id
    # came back, a few ms later: the difference is far below what is measured here.
    ended = [created[task_of[r[0]]] + latency[r[0]] for r in cells]
    return {"first_create": min(created.values()) - t0, "last_create": max(created.values()) - t0,
            "last_task_end": max(ended) - t0, "last_logged": max(r[2] for r in cells) / 1000 - t0,
            "parent_start": parent[1] / 1000 - t0, "parent_end": parent[2] / 1000 - t0}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run whose wall time is the median (its moments go with it: one real run, not a blend)."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def _where_the_time_went(r: dict[str, float], ideal: float) -> str:
    waves = r["last_task_end"] - r["first_create"]
    return "\n".join([
        f"    process start -> first create     {r['first_create']:6.2f} s   (parent run begun at {r['parent_start']:.2f} s)",
        f"    first create -> last task ended   {waves:6.2f} s   (the tasks themselves: {ideal:.1f} s)",
        f"    last task ended -> last cell logged {r['last_logged'] - r['last_task_end']:4.2f} s",
        f"    last cell logged -> process exit  {r['wall'] - r['last_logged']:6.2f} s   (parent run ended at "
        f"{r['parent_end']:.2f} s)",
    ])


def _report(label: str, runs: dict[str, list[dict[str, float]]], ideal: float, repeat: int) -> dict[str, float]:
    off, on, capped = (_median(runs[k]) for k in ("off", "on", "capped"))
    print(f"[{label}] scoring off: whole command {off['wall']:.2f} s, efficiency {ideal / off['wall']:.3f} "
          f"(first create to last cell logged {off['last_logged'] - off['first_create']:.2f} s, "
          f"efficiency {ideal / (off['last_logged'] - off['first_create']):.3f}); median of {repeat}")
    print(_where_the_time_went(off, ideal))
    print(f"[{label}] scoring on: whole command {on['wall']:.2f} s = {CELLS / on['wall'] * 60:.1f} cells/min against "
          f"{CELLS / off['wall'] * 60:.1f} scoring off: ratio {off['wall'] / on['wall']:.3f}")
    print(_where_the_time_went(on, ideal))
    print(f"[{label}] with a budget cap (a model's first create alone): {capped['wall']:.2f} s; ratio to no cap "
          f"{capped['wall'] / off['wall']:.3f}")
    print(f"[{label}] every run's whole-command efficiency: " + "; ".join(
        f"{k} " + ", ".join(f"{ideal / r['wall']:.3f}" for r in runs[k]) for k in runs))
    return off


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-s", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind, interleaved; the median is shown")
    ap.add_argument("--render-scale", type=float, default=0.1,
                    help="emulator render size; small, so the bench measures the runner, not the renderer")
    ap.add_argument("--baseline", metavar="CHECKOUT", help="also run another checkout's v2v_lab (e.g. main), "
                    "interleaved with this one: before and after in one run")
    ap.add_argument("--json", action="store_true", help="also print every run's figures as JSON")
    args = ap.parse_args()
    ideal = CELLS / args.concurrency * args.run_s
    kinds: dict[str, dict[str, Any]] = {"off": {"scoring": False}, "on": {"scoring": True},
                                        "capped": {"scoring": False, "max_credits": 1e9}}
    checkouts = {"this checkout": None, **({f"baseline {args.baseline}": args.baseline} if args.baseline else {})}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {c: {k: [] for k in kinds} for c in checkouts}
    for _ in range(args.repeat):
        for kind, how in kinds.items():
            for label, checkout in checkouts.items():
                runs[label][kind].append(run_command(kind, args.concurrency, args.run_s, how["scoring"],
                                                     args.render_scale, how.get("max_credits"), checkout))
    print(f"{CELLS} cells, {args.run_s:g} s per task, concurrency {args.concurrency}, `v2v-lab sweep` as a whole "
          f"process on a new store (render scale {args.render_scale:g}); ideal {ideal:.1f} s")
    offs = {label: _report(label, runs[label], ideal, args.repeat) for label in checkouts}
    if args.baseline:
        (_, mine), (_, base) = offs.items()
        print(f"whole command, scoring off: this checkout takes {mine['wall'] / base['wall']:.3f}x the baseline's")
    if args.json:
        print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
