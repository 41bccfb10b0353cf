"""The rating page on 720p outputs: how long until its first pair plays in Chromium (goal: under 2 s),
and how big notebook 05 is once executed with a pair on display (goal: under 1 MB), videos served by
address (the default) against videos inline (bytes in the widget state, for remote kernels).

A study is made with the emulator at render_scale 1.0 on the 1280x720 demo clip (5.3 s), no ratio, so
every output is 1280x720 and every model pairs with every other (aleph2 takes no ratio: with one, its
outputs would differ from the others' in more than the model); 3 models x 2 prompts, kept in the temp
folder for the next run. Voila serves notebooks/pages/rate.ipynb as the README says (pre-heated
kernels: the page already run up to reading its address), and cold (a kernel started per page, as
before); headless Debian Chromium (Playwright, no download) opens it `--repeats` times per mode, each
time a new page (an empty cache) and, pre-heated, once the pool is full and idle again.
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
ratios: [null]             # the input size: the demo clip is 1280x720
emulator: {{render_scale: 1.0}}
scoring: {{frames: 6, size: 96}}
"""
# In the page from its first script: each animation frame, when the widget appeared and when both its
# videos had a frame to show (performance.now(), ms from the start of navigation).
TIMER = """(() => {
    const times = window.__v2vTimes = {};
    const tick = () => {
        if (!times.widget && document.querySelector('.v2v-rate-stage')) times.widget = performance.now();
        const v = [...document.querySelectorAll('video.v2v-rate-left, video.v2v-rate-right')];
        if (v.length === 2 && v.every(e => e.readyState >= 2 && e.videoWidth > 0)) times.videos = performance.now();
        else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
})()"""


def make_study(folder: Path, env: dict[str, str]) -> None:
    (folder / "spec.yaml").write_text(SPEC)
    done = subprocess.run([str(Path(sys.executable).with_name("v2v-lab")), "sweep", "spec.yaml", "--yes"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])


# The README's command: Voila keeps pre-heated kernels that have run the page up to the rater's
# address (imports, the store opened), so a rater meets a ready page. Without them ("cold"), every
# page opened starts a kernel and runs the page from the top: how it was before.
POOL = 2
PREHEAT = ["--preheat_kernel=True", f"--pool_size={POOL}"]


def start_voila(project: Path, env: dict[str, str], port: int, preheat: bool) -> subprocess.Popen:
    """`voila notebooks/pages/rate.ipynb` from the project's folder, as the README says."""
    import httpx

    proc = subprocess.Popen([str(Path(sys.executable).with_name("voila")), "notebooks/pages/rate.ipynb",
                             f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1", *(PREHEAT if preheat else [])],
                            cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("voila did not start")


def wait_for_warm_kernels(voila: subprocess.Popen) -> None:
    """Until the pool is full again and its kernels idle (a pre-heated kernel waits for its rater's
    address), as a rater arriving some seconds after the last finds it. Voila refills the pool 1 s
    after a kernel is taken."""
    import psutil

    time.sleep(2)
    for _ in range(300):
        kernels = [p for p in psutil.Process(voila.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
        if len(kernels) >= POOL and all(k.cpu_percent(interval=0.5) < 2 for k in kernels):
            return
        time.sleep(0.5)
    raise SystemExit("the pre-heated kernels did not settle")


def first_pair(browser, url: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(ms to the widget, ms to both videos showing a frame), from the start of navigation."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.add_init_script(TIMER)
    page.goto(url, timeout=120_000, wait_until="commit")
    try:
        page.wait_for_function("window.__v2vTimes && window.__v2vTimes.videos", timeout=120_000)
    except Exception:
        raise SystemExit("the page showed no pair: " + page.inner_text("body")[-2000:]) from None
    times = page.evaluate("window.__v2vTimes")
    page.close()
    return times["widget"], times["videos"]


def kernel_side(uri: str, videos: str, repeats: int) -> float:
    """Seconds RateView takes to build and put its first pair up, in this process (a warm kernel)."""
    from v2v_lab import RateView

    RateView("rate720", rater="warm", tracking_uri=uri, videos=videos)  # imports and caches: not counted
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        RateView("rate720", rater=f"kernel{i}", tracking_uri=uri, videos=videos)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def notebook_size(folder: Path, uri: str, videos: str) -> int:
    import papermill

    out = folder / "executed" / f"05_rate_{videos}.ipynb"
    out.parent.mkdir(exist_ok=True)
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

    # The study takes minutes to make: kept in the temp folder and reused by the next run.
    folder = Path(tempfile.gettempdir()) / "v2v-lab-bench-rate720"
    folder.mkdir(exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "MLFLOW_"))}
    env.update({"MLFLOW_TRACKING_URI": uri, "V2V_LAB_HOME": str(folder / "state")})
    t = time.perf_counter()
    if not (folder / "mlflow.db").exists():
        make_study(folder, env)
    runs = load_runs("rate720", tracking_uri=uri)
    sizes = [playable_output(r, uri)[0].stat().st_size for r in runs["run_id"]]  # type: ignore[union-attr]
    print(f"study: {len(runs)} outputs at 1280x720 ready in {time.perf_counter() - t:.0f} s, "
          f"{statistics.mean(sizes) / 1e6:.2f} MB each on average")
    pages = folder / "notebooks" / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "pages" / "rate.ipynb", pages / "rate.ipynb")
    port = 18000 + os.getpid() % 1000
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for preheat, videos in ((False, "served"), (True, "served"), (True, "inline")):
            voila = start_voila(folder, env, port, preheat)
            try:
                times = []
                for i in range(args.repeats):
                    if preheat:
                        wait_for_warm_kernels(voila)
                    times.append(first_pair(browser, f"http://127.0.0.1:{port}/?experiment=rate720"
                                                     f"&rater=bench{i}&videos={videos}"))
            finally:
                os.killpg(voila.pid, signal.SIGTERM)
                voila.wait(20)
            widget = statistics.median(w for w, _ in times)
            shown = statistics.median(v for _, v in times)
            print(f"rating page, {'pre-heated kernels' if preheat else 'cold (no pre-heated kernel)'}, "
                  f"videos={videos}: first pair playable {shown / 1000:.2f} s after navigation (median of "
                  f"{args.repeats}: {', '.join(f'{v / 1000:.2f}' for _, v in times)}); the widget appeared at "
                  f"{widget / 1000:.2f} s, its videos played {(shown - widget) / 1000:.2f} s later "
                  f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        browser.close()
    print(f"in a warm kernel RateView puts the first pair up in {kernel_side(uri, 'served', 3):.2f} s (served), "
          f"{kernel_side(uri, 'inline', 3):.2f} s (inline)")
    for videos in ("served", "inline"):
        size = notebook_size(folder, uri, videos)
        print(f"notebook 05 executed with a pair on display, videos={videos}: {size / 1e6:.2f} MB (goal < 1 MB)")


if __name__ == "__main__":
    main()
