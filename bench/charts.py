"""bqplot against plotly, measured where the dashboards live: a Voila page in headless Chromium.

For each library, the same scatter (N points with a hover label per point, axes with titles) is put in
a one-cell notebook, served by Voila and opened in Chromium; timed from navigation until every point
is drawn, then the hover label is checked by moving the mouse onto a point. Printed side by side, with
the size of the notebook executed by papermill (what a saved notebook weighs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nbformat

from v2v_lab._net import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

COMMON = """
import numpy as np
rng = np.random.default_rng(0)
n = {n}
x, y = rng.random(n), rng.random(n)
labels = [f"gen4_aleph · prompt {{i % 40}} · seed {{i}}" for i in range(n)]
"""
CELLS = {
    "bqplot": COMMON + """
import bqplot as bq
sx, sy = bq.LinearScale(), bq.LinearScale()
marks = bq.Scatter(x=x, y=y, names=labels, display_names=False, scales={{"x": sx, "y": sy}},
                   tooltip=bq.Tooltip(fields=["name", "x", "y"], formats=["", ".3f", ".3f"]))
bq.Figure(marks=[marks], axes=[bq.Axis(scale=sx, label="structure (0..1)"),
                               bq.Axis(scale=sy, orientation="vertical", label="flicker (grey levels)")])
""",
    "plotly": COMMON + """
import plotly.graph_objects as go
go.FigureWidget(go.Scatter(x=x, y=y, mode="markers", text=labels, hovertemplate="%{{text}}<br>%{{x:.3f}}, %{{y:.3f}}"),
                layout=dict(xaxis_title="structure (0..1)", yaxis_title="flicker (grey levels)", width=600, height=400))
""",
}
POINTS = {"bqplot": ".bqplot path.dot", "plotly": ".scatterlayer path.point"}
HOVER = {"bqplot": ".bqplot-tooltip-container, .bqplot_tooltip, div[class*='tooltip']", "plotly": ".hoverlayer .hovertext"}


def measure(lib: str, n: int, folder: Path) -> tuple[float, bool, int]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELLS[lib].format(n=n))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{lib}.ipynb"
    nbformat.write(nb, path)
    import papermill

    executed = folder / f"{lib}.out.ipynb"
    papermill.execute_notebook(str(path), str(executed), progress_bar=False, kernel_name="python3")
    port = free_port()
    voila = os.path.join(os.path.dirname(sys.executable), "voila")
    proc = subprocess.Popen([voila, str(path), f"--port={port}", "--no-browser"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            t = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
            page.wait_for_function(f"document.querySelectorAll({POINTS[lib]!r}).length >= {n}", timeout=120_000)
            seconds = time.perf_counter() - t
            point = page.locator(POINTS[lib]).nth(n // 2)
            point.hover(force=True)
            try:
                page.locator(HOVER[lib]).filter(has_text="seed").first.wait_for(timeout=5000)
                hover = True
            except Exception:  # noqa: BLE001 - the label did not appear
                hover = False
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return seconds, hover, executed.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, nargs="+", default=[200, 2000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.points:
            row = []
            for lib in CELLS:
                seconds, hover, size = measure(lib, n, Path(tmp))
                row.append(f"{lib}: drawn in {seconds:.2f} s, hover label {'yes' if hover else 'NO'}, "
                           f"executed notebook {size / 1024:.0f} KB")
            print(f"{n} points | " + " | ".join(row))


if __name__ == "__main__":
    main()
