"""A real browser: Voila serves the project's pages, headless Debian Chromium (driven by Playwright, no
browser download) opens them and uses them as a person would: the run browser (a table row clicked),
CompareView (a point hovered and clicked), and the rating page (10 pairs rated by clicks and keys,
the kernel killed, the page reopened). Screenshots go to test-output/ once the videos have loaded."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import nbformat
import psutil
import pytest

from v2v_lab import load_ratings, load_runs

from ._helpers import free_port, wait_until
from ._helpers import voila as serve_voila
from .conftest import ROOT, TEST_OUTPUT, copy_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No network here: keep Chromium from reaching for Google's services at start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = TEST_OUTPUT

pytestmark = pytest.mark.browser

COMPARE_PAGE = """from v2v_lab import CompareView
CompareView("rating", by="model")"""


def _need_browser() -> None:
    missing = [name for name, ok in (("chromium", os.path.exists(CHROMIUM)),
                                     ("voila", shutil.which("voila", path=os.path.dirname(sys.executable))),
                                     ("playwright", importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:  # `make test` installs them: a test that cannot run where it must is a failure
        pytest.fail(f"browser test needs {', '.join(missing)} (make test installs them)")



@pytest.fixture(scope="module")
def voila(rating_study, tmp_path_factory):
    """One Voila server over a folder holding the project's pages (04's run browser, the rating page)
    and a CompareView page, on a private copy of the rating study."""
    _need_browser()
    folder = tmp_path_factory.mktemp("voila")
    store = copy_study(rating_study, folder / "store")
    pages = folder / "pages"
    pages.mkdir()
    shutil.copy(ROOT / "notebooks" / "04_browse_runs.ipynb", pages / "browse.ipynb")
    shutil.copy(ROOT / "notebooks" / "pages" / "rate.ipynb", pages / "rate.ipynb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(COMPARE_PAGE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, pages / "compare.ipynb")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    with serve_voila(pages, {**os.environ, "MLFLOW_TRACKING_URI": uri}, folder / "voila.log") as (url, proc):
        yield url, uri, proc


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _videos_loaded(page, count: int) -> None:
    """Wait until `count` videos have a frame to show, and move each to 1 s: a screenshot then shows
    pictures, not the black of a video still loading."""
    page.wait_for_function(f"""() => {{
        const v = [...document.querySelectorAll('video')].filter(e => e.src);
        return v.length >= {count} && v.every(e => e.readyState >= 2 && e.videoWidth > 0);
    }}""", timeout=60_000)
    page.evaluate("""() => Promise.all([...document.querySelectorAll('video')].filter(e => e.src).map(v =>
        new Promise(done => { v.pause(); v.addEventListener('seeked', done, {once: true}); v.currentTime = 1; })))""")
    page.wait_for_function("[...document.querySelectorAll('video')].filter(e => e.src).every(e => e.readyState >= 3)",
                           timeout=30_000)
    page.wait_for_timeout(300)  # the player's own spinner fades out


def test_the_run_browser_selects_a_run_by_a_click_on_its_row(voila, browser):
    url, _, _ = voila
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url + "browse.ipynb", timeout=120_000)
    rows = page.locator(".v2v-runs-table table.v2v-runs tbody tr")
    rows.first.wait_for(timeout=120_000)
    assert rows.count() == 12
    assert page.locator(".v2v-runs-table th", has_text="ssim_source").count() == 1
    # The first run is selected when the browser opens: wait for the clicked one to take its place.
    clicked = rows.nth(2).get_attribute("data-run")
    rows.nth(2).click()  # the row itself, not the dropdown
    page.wait_for_function(
        "run => { const on = document.querySelectorAll(\"tr[style*='background']\");"
        " return on.length === 1 && on[0].getAttribute('data-run') === run; }", arg=clicked, timeout=30_000)
    highlighted = page.locator("tr[style*='background']")
    assert highlighted.count() == 1 and highlighted.get_attribute("data-run") == clicked
    _videos_loaded(page, 2)  # source and output side by side
    assert page.locator("video[autoplay]").count() == 0
    # Per-frame charts with real axes (bqplot), one per metric, with the time in seconds.
    page.locator(".bqplot").first.wait_for(timeout=30_000)
    assert page.locator(".bqplot", has_text="time in the clip (s)").count() >= 4
    page.screenshot(path=str(SCREENSHOTS / "voila_run_browser.png"), full_page=True)
    page.close()
    assert (SCREENSHOTS / "voila_run_browser.png").stat().st_size > 50_000


def test_compare_view_hovers_and_plays_a_point(voila, browser):
    url, _, _ = voila
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(url + "compare.ipynb", timeout=120_000)
    points = page.locator(".v2v-scatter path.dot")
    page.wait_for_function("document.querySelectorAll('.v2v-scatter path.dot').length >= 12", timeout=120_000)
    assert page.locator(".v2v-scatter", has_text="ssim_source (range -1..1, higher is better)").count() == 1
    points.nth(0).hover(force=True)
    tooltip = page.locator("div[class*='tooltip']", has_text="ssim_source").first  # the run, on hover
    tooltip.wait_for(timeout=10_000)
    assert " · seed " in tooltip.inner_text()
    # Thumbnails sized for display: JPEGs of 320 px, not the 450 KB posters.
    sizes = page.evaluate("[...document.querySelectorAll('img')].filter(i => i.src.startsWith('blob:') || "
                          "i.src.startsWith('data:')).map(i => i.naturalWidth)")
    assert sizes and max(sizes) <= 320
    # The summary: a styled table with the metric's direction and a verdict per group.
    assert page.locator("table.v2v-summary", has_text="verdict").count() == 1
    assert page.locator("table.v2v-summary td", has_text="baseline").count() == 1
    assert page.locator("text=/seed 1 · succeeded/").count() >= 3  # each cell names its seed
    points.nth(0).click(force=True)
    _videos_loaded(page, 1)
    page.mouse.move(5, 5)  # the hover label away, for the screenshot
    page.screenshot(path=str(SCREENSHOTS / "voila_compare_view.png"), full_page=True)
    page.close()


def _progress(page) -> str:
    return page.locator(".v2v-rate-progress").inner_text()


def _the_page_plays_steps_and_wipes(page, uri: str) -> None:
    """The rating page's face: the prompt first, the question above the videos, both videos fetched
    by address from the kernel's loopback server (not as bytes in the widget state), a time label that
    follows frame steps, the source beside the outputs and under a wipe. Screenshots of each."""
    order = page.evaluate("""() => [...document.querySelector('.v2v-rate').children]
        .filter(e => e.offsetParent !== null).map(e => e.className)""")
    assert order[:3] == ["v2v-rate-prompt", "v2v-rate-question", "v2v-rate-stage"], order
    assert page.locator(".v2v-rate-prompt").inner_text() in ("neon city at night", "a red watercolor painting")
    sources = page.evaluate("[...document.querySelectorAll('video.v2v-rate-left, video.v2v-rate-right')].map(v => v.src)")
    assert all(src.startswith("http://127.0.0.1:") and "/v/" in src for src in sources), sources
    assert [page.locator(f".v2v-rate-{c}-button kbd").inner_text() for c in ("left", "tie", "right", "skip")] == \
        ["←", "↓", "→", "s"]
    page.screenshot(path=str(SCREENSHOTS / "rate_page_pair.png"), full_page=True)
    # Frame stepping: ',' and '.' move both videos one frame and the time label says where.
    from v2v_lab.dashboard.outputs import playable_output
    from v2v_lab.media.probe import probe_video

    frame = 1 / probe_video(playable_output(load_runs("rating", tracking_uri=uri)["run_id"].iloc[0], uri)[0]).fps
    time_label = page.locator(".v2v-rate-time")
    start = page.evaluate("document.querySelector('video.v2v-rate-left').currentTime")
    for _ in range(3):
        page.keyboard.press(".")
    page.keyboard.press(",")
    page.wait_for_function("Math.abs(document.querySelector('video.v2v-rate-right').currentTime - "
                           f"{start + 2 * frame}) < 0.01", timeout=10_000)
    now = page.evaluate("document.querySelector('video.v2v-rate-left').currentTime")
    assert abs(now - (start + 2 * frame)) < 0.01
    assert time_label.inner_text().startswith(f"0:{now:04.1f} / 0:0"), time_label.inner_text()
    # The source: beside the outputs, then under a wipe (the outputs cut at the wipe line).
    page.locator(".v2v-rate-show-source").click()
    page.locator(".v2v-rate-source-video").wait_for(state="visible", timeout=10_000)
    _videos_loaded(page, 3)
    page.screenshot(path=str(SCREENSHOTS / "rate_page_source_side_by_side.png"), full_page=True)
    page.keyboard.press("v")
    page.locator(".v2v-rate-wipe").wait_for(state="visible", timeout=10_000)
    page.locator(".v2v-rate-wipe").fill("30")
    _videos_loaded(page, 5)
    clip = page.evaluate("getComputedStyle(document.querySelector('video.v2v-rate-left')).clipPath")
    assert clip == "inset(0px 0px 0px 30%)", clip
    page.screenshot(path=str(SCREENSHOTS / "rate_page_source_wipe.png"), full_page=True)
    page.keyboard.press("v")  # back to the two outputs alone
    page.locator(".v2v-rate-source-video").wait_for(state="hidden", timeout=10_000)


def test_rating_by_clicks_and_keys_survives_a_killed_kernel(voila, browser):
    url, uri, server = voila
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    address = url + "rate.ipynb?experiment=rating&rater=ann"
    page.goto(address, timeout=120_000)
    page.locator(".v2v-rate-progress", has_text="0 of 12").wait_for(timeout=120_000)
    _videos_loaded(page, 2)
    _the_page_plays_steps_and_wipes(page, uri)
    for i in range(10):
        if i % 2:  # keys: left, right, tie, skip, left
            page.keyboard.press(["ArrowLeft", "ArrowRight", "ArrowDown", "s", "ArrowLeft"][i // 2])
        else:  # buttons
            page.locator([".v2v-rate-left-button", ".v2v-rate-right-button", ".v2v-rate-tie-button",
                          ".v2v-rate-skip-button", ".v2v-rate-right-button"][i // 2]).click()
        page.locator(".v2v-rate-progress", has_text=f"{i + 1} of 12").wait_for(timeout=30_000)
    # Kill the page's kernel outright (-9), as a crash would, then open the page again.
    kernels = [p for p in psutil.Process(server.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert kernels
    for kernel in kernels:
        os.kill(kernel.pid, signal.SIGKILL)
    page.close()
    again = browser.new_page(viewport={"width": 1300, "height": 1000})
    again.goto(address, timeout=120_000)
    again.locator(".v2v-rate-progress", has_text="10 of 12").wait_for(timeout=120_000)
    stored = load_ratings("rating", tracking_uri=uri)
    assert len(stored) == 10 and list(stored["rater"].unique()) == ["ann"]
    assert stored["choice"].value_counts().to_dict() == {"right": 3, "left": 3, "tie": 2, "skip": 2}
    again.close()


def test_the_rating_page_started_as_the_readme_says_finds_the_sweeps_store_and_creates_nothing(
        rating_study, tmp_path, browser):
    """The README's command, as typed (pre-heated kernels), from the project's folder, MLFLOW_TRACKING_URI
    unset: the page comes from a kernel that ran it before the rater's address came, reads that address
    (the pairs of the study it names), still reads the store the sweeps wrote (./mlflow.db of the
    project), creates none beside itself, and an unknown experiment names the store it read."""
    _need_browser()
    project = copy_study(rating_study, tmp_path / "project")
    pages = project / "notebooks" / "pages"
    pages.mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "pages" / "rate.ipynb", pages / "rate.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "V2V_LAB_HOME")}
    env["PWD"] = str(project)  # as a shell started in the project's folder sets it
    command = re.search(r"`(voila notebooks/pages/rate\.ipynb[^`]*)`", (ROOT / "README.md").read_text()).group(1)
    port = free_port()
    log = tmp_path / "voila.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "voila"), *shlex.split(command)[1:],
                                 f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"], cwd=project, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _answers(base), 180, "voila did not start", interval=0.3)
        page = browser.new_page()
        page.goto(base + "?experiment=rating&rater=ann", timeout=120_000)
        page.wait_for_selector(".v2v-rate-progress", timeout=120_000)  # the pairs of the study, found
        page.goto(base + "?experiment=nope&rater=ann", timeout=120_000)
        error = page.wait_for_selector("p[style*='b00']", timeout=120_000).inner_text()
        page.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    assert "Using pre-heated kernel" in log.read_text(), log.read_text()[-3000:]
    assert f"an experiment in sqlite:///{project / 'mlflow.db'}: rating" in error, error
    assert not (pages / "mlflow.db").exists() and not (project / "notebooks" / "mlflow.db").exists()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "api", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False
