"""The team store: how long `make team-up` takes on a fresh folder, and the wall time of one 36-cell
spec run by 3 processes at concurrency 4 (sharing it through the PostgreSQL ledger) against 1
process at concurrency 12, on the same emulator (12 tasks in flight at most: 4 per model), scoring
off (issue 33: the 3-process run within 10% of the 1-process run).

Each run gets its own experiment; creates are counted by the emulator (each must be 36). The two
kinds are interleaved and repeated (--repeat; the median is shown) after one untimed sweep that
warms the new stack's tracking server, and --baseline CHECKOUT runs
another checkout's v2v_lab interleaved with this one: before and after in one run.

Where the time went, read back from the ledger: from the processes' start to the first create, from
the first create to the last, and from there to the last process's exit. Start-up alone is measured
apart: 3 processes importing what a sweep imports at once against 1 (two cores: three interpreters
starting together cost CPU one does not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from v2v_lab.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("v2v-lab"))
STACK = [sys.executable, str(ROOT / "tools" / "team_stack.py")]
CELLS = 36
# What a sweep process imports before it sends anything (the start-up measured apart).
IMPORTS = "import v2v_lab.cli, v2v_lab.sweeps.runner, v2v_lab.sweeps.ledger, psycopg, mlflow"


def exports(text: str) -> dict[str, str]:
    return dict(line[len("export "):].split("=", 1) for line in text.splitlines() if line.startswith("export "))


def checkout_env(checkout: str | None) -> dict[str, str]:
    """The environment whose PYTHONPATH puts `checkout` (or this one) first; other entries are kept."""
    others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != ROOT]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([checkout or str(ROOT), *others])}


def sweep(processes: int, concurrency: int, team: dict[str, str], folder: Path,
          checkout: str | None) -> dict[str, float]:
    experiment = f"bench_team_{uuid.uuid4().hex[:8]}"
    spec = {"experiment": experiment, "provider": "local", "videos": [str(ROOT / "experiments/media/bigbuckbunny.mp4")],
            "models": ["gen4_aleph", "aleph2", "gen3a_turbo"], "prompts": ["neon city", "noir", "sepia", "anime"],
            "seeds": [1, 2, 3], "concurrency": concurrency, "scoring": {"enabled": False}}
    (folder / f"{experiment}.yaml").write_text(yaml.safe_dump(spec))
    with Emulator(render_scale=0.1, run_s=2.0, concurrency=4) as emu:
        env = {**checkout_env(checkout), **team}
        t0 = time.time()
        procs = [subprocess.Popen([CLI, "sweep", f"{experiment}.yaml", "--base-url", emu.base_url, "--no-progress"],
                                  cwd=folder, env={**env, "V2V_LAB_HOME": str(folder / f"{experiment}-{i}")},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(processes)]
        for proc in procs:
            _, err = proc.communicate(timeout=900)
            assert proc.returncode == 0, err[-1500:]
        wall = time.time() - t0
        creates = emu.stats["tasks_total"]
    assert creates == CELLS, f"{creates} creates for {CELLS} cells"
    return {"wall": wall, **moments(team["V2V_LAB_LEDGER_URL"], experiment, t0, wall)}


def moments(url: str, experiment: str, t0: float, wall: float) -> dict[str, float]:
    """Seconds from the start: the first create and the last, and the last cell's end, from the ledger."""
    import psycopg

    with psycopg.connect(url) as conn:
        first, last = conn.execute("SELECT min(created), max(created) FROM tasks WHERE experiment=%s",
                                   (experiment,)).fetchone()
        ended = conn.execute("SELECT max(updated) FROM cells WHERE experiment=%s", (experiment,)).fetchone()[0]
    return {"to_first_create": first - t0, "creates": last - first, "last_create_to_end": ended - last,
            "end_to_exit": wall - (ended - t0)}


def start_up(processes: int, checkout: str | None) -> float:
    """Wall time of `processes` interpreters importing what a sweep imports, started together."""
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", IMPORTS], env=checkout_env(checkout)) for _ in range(processes)]
    for proc in procs:
        assert proc.wait() == 0
    return time.perf_counter() - t


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def report(label: str, runs: dict[str, list[dict[str, float]]]) -> tuple[float, float]:
    """Prints one checkout's figures; returns its 3-vs-1 ratios: whole commands, and the sharing
    alone (from the first create to the last cell's end: start-up and exit left out)."""
    shared, single = median(runs["3x4"]), median(runs["1x12"])
    ratio = shared["wall"] / single["wall"]
    sharing = {kind: statistics.median(r["creates"] + r["last_create_to_end"] for r in runs[kind])
               for kind in ("3x4", "1x12")}
    walls = {kind: ", ".join(f"{r['wall']:.1f}" for r in runs[kind]) for kind in ("3x4", "1x12")}
    print(f"{label}: 3 processes at concurrency 4 {shared['wall']:.1f} s; 1 process at concurrency 12 "
          f"{single['wall']:.1f} s; ratio {ratio:.2f} (each run: 3x4 {walls['3x4']}; 1x12 {walls['1x12']})")
    for kind, m in (("3x4", shared), ("1x12", single)):
        print(f"  {kind}: start to first create {m['to_first_create']:.1f} s, first to last create {m['creates']:.1f} s, "
              f"last create to last cell ended {m['last_create_to_end']:.1f} s, to exit {m['end_to_exit']:.1f} s")
    print(f"  start-up apart (imports): 3 at once {median(runs['start3'])['wall']:.2f} s, "
          f"1 alone {median(runs['start1'])['wall']:.2f} s")
    print(f"  the sharing alone (first create to last cell ended): 3x4 {sharing['3x4']:.1f} s, "
          f"1x12 {sharing['1x12']:.1f} s, ratio {sharing['3x4'] / sharing['1x12']:.2f}")
    return ratio, sharing["3x4"] / sharing["1x12"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind, interleaved; the median is shown")
    ap.add_argument("--baseline", metavar="CHECKOUT", action="append", default=[],
                    help="also run another checkout's v2v_lab, interleaved (may be given more than once)")
    args = ap.parse_args()
    checkouts = {"this checkout": None, **{f"baseline {path}": path for path in args.baseline}}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        c: {"3x4": [], "1x12": [], "start3": [], "start1": []} for c in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        team_dir = folder / "team"
        team_dir.mkdir(mode=0o755)
        folder.chmod(0o755)
        env = {**os.environ, "V2V_LAB_TEAM_DIR": str(team_dir), "V2V_LAB_TEAM_PG_PORT": "56432",
               "V2V_LAB_TEAM_S3_PORT": "56433", "V2V_LAB_TEAM_MLFLOW_PORT": "56434"}
        t = time.perf_counter()
        up = subprocess.run([*STACK, "up"], env=env, capture_output=True, text=True, check=True)
        print(f"team-up on a fresh folder: {time.perf_counter() - t:.1f} s")
        try:
            team = exports(up.stdout)
            # Untimed: a new stack's first sweep pays the tracking server's first requests (10 s and more
            # on a loaded machine), which would otherwise fall on whichever kind ran first.
            sweep(1, 12, team, folder, None)
            for _ in range(args.repeat):
                for label, checkout in checkouts.items():
                    runs[label]["3x4"].append(sweep(3, 4, team, folder, checkout))
                    runs[label]["1x12"].append(sweep(1, 12, team, folder, checkout))
                    runs[label]["start3"].append({"wall": start_up(3, checkout)})
                    runs[label]["start1"].append({"wall": start_up(1, checkout)})
        finally:
            t = time.perf_counter()
            subprocess.run([*STACK, "down"], env=env, capture_output=True, check=True)
            print(f"team-down: {time.perf_counter() - t:.1f} s")
    print(f"{CELLS} cells, 2 s per task, scoring off, `v2v-lab sweep` as whole processes; median of {args.repeat}")
    ratios = {label: report(label, runs[label]) for label in checkouts}
    print("3-vs-1 ratios, whole commands (the sharing alone):",
          "; ".join(f"{label} {whole:.2f} ({alone:.2f})" for label, (whole, alone) in ratios.items()))


if __name__ == "__main__":
    main()
