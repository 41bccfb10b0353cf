"""The team store: how long `make team-up` takes on a fresh folder, and the wall time of one 36-cell
spec run by 3 processes at concurrency 4 (sharing it through the PostgreSQL ledger) against 1
process at concurrency 12, on the same emulator (12 tasks in flight at most: 4 per model).

Each run gets its own experiment; creates are counted by the emulator (each must be 36).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from v2v_lab.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("v2v-lab"))
STACK = [sys.executable, str(ROOT / "tools" / "team_stack.py")]


def exports(text: str) -> dict[str, str]:
    return dict(line[len("export "):].split("=", 1) for line in text.splitlines() if line.startswith("export "))


def sweep(processes: int, concurrency: int, team: dict[str, str], folder: Path) -> tuple[float, int]:
    experiment = f"bench_team_{uuid.uuid4().hex[:8]}"
    spec = {"experiment": experiment, "provider": "local", "videos": [str(ROOT / "experiments/media/bigbuckbunny.mp4")],
            "models": ["gen4_aleph", "aleph2", "gen3a_turbo"], "prompts": ["neon city", "noir", "sepia", "anime"],
            "seeds": [1, 2, 3], "concurrency": concurrency, "scoring": {"frames": 4, "size": 64}}
    (folder / f"{experiment}.yaml").write_text(yaml.safe_dump(spec))
    with Emulator(render_scale=0.1, run_s=2.0, concurrency=4) as emu:
        env = {**os.environ, **team}
        t = time.perf_counter()
        procs = [subprocess.Popen([CLI, "sweep", f"{experiment}.yaml", "--base-url", emu.base_url, "--no-progress"],
                                  cwd=folder, env={**env, "V2V_LAB_HOME": str(folder / f"{experiment}-{i}")},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(processes)]
        for proc in procs:
            _, err = proc.communicate(timeout=900)
            assert proc.returncode == 0, err[-1500:]
        wall = time.perf_counter() - t
        return wall, emu.stats["tasks_total"]


def main() -> None:
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
            shared, creates3 = sweep(3, 4, team, folder)
            single, creates1 = sweep(1, 12, team, folder)
            print(f"36 cells: 3 processes at concurrency 4 {shared:.1f} s ({creates3} creates); "
                  f"1 process at concurrency 12 {single:.1f} s ({creates1} creates); ratio {shared / single:.2f}")
        finally:
            t = time.perf_counter()
            subprocess.run([*STACK, "down"], env=env, capture_output=True, check=True)
            print(f"team-down: {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
