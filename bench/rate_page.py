"""The rating page on 720p outputs: how long until its first pair plays in Chromium (goal: under 2 s),
and how big notebook 05 is once executed with a pair on display (goal: under 1 MB), videos served by
address (the default) against videos inline (bytes in the widget state, for remote kernels).

A study is made with the emulator at render_scale 1.0 and ratio 1280:720 (3 models x 2 prompts, 6
outputs of the 5.3 s demo clip). Voila serves notebooks/pages/rate.ipynb; headless Debian Chromium
(Playwright, no download) opens it `--repeats` times per mode, each time a new page and a new kernel.
"First pair" is from the start of navigation to both videos having a frame to show (readyState >= 2,
videoWidth > 0), as performance.now() in the page says it. Voila's own start (kernel, imports) is in
it: printed beside is the time until the page's widget appeared, so the videos' own share shows.
Notebook 05 runs under papermill (scripted_rater False: a pair stays on display) with each mode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "media" / "bigbuckbunny.mp4"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]
SPEC = f"""
experiment: rate720
videos: [{DEMO}]
models: [gen4_aleph, gen3a_turbo, aleph2]
prompts: ["neon city at night", "a red watercolor painting"]
seeds: [1]
ratios: ["1280:720"]
emulator: {{render_scale: 1.0}}
scoring: {{frames: 6, size: 96}}
"""
FIRST_PAIR = """() => {
    const v = [...document.querySelectorAll('video.v2v-rate-left, video.v2v-rate-right')];
    return v.length === 2 && v.every(e => e.readyState >= 2 && e.videoWidth > 0) ? performance.now() : 0;
}"""


def make_study(folder: Path, env: dict[str, str]) -> None:
    (folder / "spec.yaml").write_text(SPEC)
    done = subprocess.run([str(Path(sys.executable).with_name("v2v-lab")), "sweep", "spec.yaml", "--yes"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])


def start_voila(pages: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([str(Path(sys.executable).with_name("voila")), str(pages), f"--port={port}", "--no-browser",
                             "--Voila.ip=127.0.0.1"], cwd=pages, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("voila did not start")


def first_pair(browser, url: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(ms to the widget, ms to both videos showing a frame), from the start of navigation."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(url, timeout=120_000, wait_until="commit")
    page.wait_for_selector(".v2v-rate-stage", timeout=120_000)
    widget = page.evaluate("performance.now()")
    page.wait_for_function(FIRST_PAIR, timeout=120_000, polling=20)
    videos = page.evaluate(FIRST_PAIR)
    page.close()
    return widget, videos


def notebook_size(folder: Path, uri: str, videos: str) -> int:
    import papermill

    out = folder / f"05_rate_{videos}.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "05_rate.ipynb"), str(out), cwd=str(folder), kernel_name="python3",
                               parameters={"experiment": "rate720", "rater": "bench", "tracking_uri": uri,
                                           "videos": videos}, progress_bar=False, log_output=False)
    return out.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from v2v_lab.dashboard.outputs import playable_output
    from v2v_lab.tracking.reader import load_runs

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
        env.update({"MLFLOW_TRACKING_URI": uri, "V2V_LAB_HOME": str(folder / "state")})
        t = time.perf_counter()
        make_study(folder, env)
        runs = load_runs("rate720", tracking_uri=uri)
        sizes = [playable_output(r, uri)[0].stat().st_size for r in runs["run_id"]]  # type: ignore[union-attr]
        print(f"study: {len(runs)} outputs at 1280x720 made in {time.perf_counter() - t:.0f} s, "
              f"{statistics.mean(sizes) / 1e6:.2f} MB each on average")
        pages = folder / "pages"
        pages.mkdir()
        shutil.copy(ROOT / "notebooks" / "pages" / "rate.ipynb", pages / "rate.ipynb")
        port = 18000 + os.getpid() % 1000
        voila = start_voila(pages, env, port)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for videos in ("served", "inline"):
                    times = [first_pair(browser, f"http://127.0.0.1:{port}/voila/render/rate.ipynb?experiment=rate720"
                                                 f"&rater=bench{i}&videos={videos}") for i in range(args.repeats)]
                    widget = statistics.median(w for w, _ in times)
                    shown = statistics.median(v for _, v in times)
                    print(f"rating page, videos={videos}: first pair playable {shown / 1000:.2f} s after navigation "
                          f"(median of {args.repeats}; the widget itself at {widget / 1000:.2f} s, so the videos "
                          f"took {(shown - widget) / 1000:.2f} s); goal < 2 s")
                browser.close()
        finally:
            os.killpg(voila.pid, signal.SIGTERM)
            voila.wait(20)
        for videos in ("served", "inline"):
            size = notebook_size(folder, uri, videos)
            print(f"notebook 05 executed with a pair on display, videos={videos}: {size / 1e6:.2f} MB (goal < 1 MB)")


if __name__ == "__main__":
    main()
