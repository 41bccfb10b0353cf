"""A real browser: Voila serves notebooks/04_browse_runs.ipynb, headless Debian Chromium (driven by
Playwright, no browser download) opens it, picks a run and sees the table and the videos."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from v2v_lab import load_spec, run_sweep

from .conftest import ROOT, TEST_OUTPUT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No network here: keep Chromium from reaching for Google's services at start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = TEST_OUTPUT

pytestmark = pytest.mark.browser


def _need_browser() -> None:
    missing = [name for name, ok in (("chromium", os.path.exists(CHROMIUM)),
                                     ("voila", shutil.which("voila", path=os.path.dirname(sys.executable))),
                                     ("playwright", importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:  # `make test` installs them: a test that cannot run where it must is a failure
        pytest.fail(f"browser test needs {', '.join(missing)} (make test installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def voila_page(mlflow_store, tmp_path):
    _need_browser()
    spec = load_spec(ROOT / "experiments" / "quickstart.yaml").override(
        emulator={"render_scale": 0.25}, scoring={"frames": 6, "size": 96})
    result = run_sweep(spec, progress=False)
    assert result.counts == {"done": 4}
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    log = open(tmp_path / "voila.log", "w")
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "voila"), str(ROOT / "notebooks" / "04_browse_runs.ipynb"),
         f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"],
        cwd=ROOT / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "api", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("voila did not start: " + (tmp_path / "voila.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_voila_serves_the_run_browser_and_plays_a_run(voila_page):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(voila_page, timeout=120_000)
            # Voila runs the notebook in a kernel, then renders the widgets: wait for the table.
            rows = page.locator(".v2v-runs-table table.v2v-runs tbody tr")
            rows.first.wait_for(timeout=120_000)
            assert rows.count() == 4
            assert page.locator(".v2v-runs-table th", has_text="ssim_source").count() == 1
            picker = page.locator(".v2v-run-picker select")
            picker.select_option(index=1)  # the first run (index 0 is "-")
            videos = page.locator("video")
            videos.nth(1).wait_for(timeout=60_000)
            assert videos.count() == 2  # source and output, side by side
            assert page.locator("video[autoplay]").count() == 0
            assert page.locator("tr[style*='background']").count() == 1  # the picked run is highlighted
            page.screenshot(path=str(SCREENSHOTS / "voila_browse_runs.png"), full_page=True)
        finally:
            browser.close()
    assert (SCREENSHOTS / "voila_browse_runs.png").stat().st_size > 10_000
