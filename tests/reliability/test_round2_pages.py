"""Nothing from outside runs in a page (issue 26, case 10): a study whose prompt, model name, status and
failure are hostile markup, and a rating page whose address carries it in experiment, rater, question
and by. Every widget's HTML holds the value escaped (plain pytest), and in headless Chromium under
Voila the pages show the text literally while the payload, which sets window.__xss when it runs,
never does."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import ipywidgets as w
import nbformat
import pytest
import yaml
from ipywidgets.widgets.widget import _instances  # widgets by model id: what an Output's display data names
from mlflow.tracking import MlflowClient

from v2v_lab import CompareView, RateView, RunBrowser, SweepMonitor, load_runs
from v2v_lab.dashboard.run_table import RunTable

from .._helpers import user_env
from .._helpers import voila as serve_voila
from ..conftest import DEMO, ROOT
from .conftest import report


def hostile(label: str) -> str:
    """Markup that sets window.__xss to label once a browser parses it as HTML: 29 characters, so it
    survives the 30-character cut of a SweepMonitor caption whole."""
    return f"<img src=x onerror=__xss='{label}'>"


PROMPT = hostile("p") + " neon city"
MODEL = hostile("m")  # gen3a_turbo's runs are renamed to this in the store
STATUS, FAILURE_CODE, FAILURE = hostile("s"), hostile("c"), hostile("f")
LIVE_PROMPT = hostile("w") + " live"  # the SweepMonitor's own sweep


_env = user_env  # a user's shell, with a store and a state folder in the given folder


def _spec(experiment: str, prompt: str, **more) -> dict:
    return {"experiment": experiment, "provider": "local", "videos": [str(DEMO)], "prompts": [prompt],
            "emulator": {"render_scale": 0.1}, "scoring": {"frames": 4, "size": 64}, **more}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    """The hostile study, made by the console script (2 models x 2 seeds), then given hostile names
    in its store: gen3a_turbo's model param becomes markup, one gen4_aleph run gets a hostile status,
    failure code and failure (so 1 pair is left to rate)."""
    folder = tmp_path_factory.mktemp("xss")
    (folder / "spec.yaml").write_text(yaml.safe_dump(_spec("xss", PROMPT, models=["gen4_aleph", "gen3a_turbo"],
                                                           seeds=[1, 2])))
    env = _env(folder)
    done = subprocess.run([str(Path(sys.executable).with_name("v2v-lab")), "sweep", "spec.yaml", "--yes",
                           "--no-progress"], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(folder / "mlflow.db") as db:
        db.execute("UPDATE params SET value = ? WHERE key = 'model' AND value = 'gen3a_turbo'", (MODEL,))
    uri = env["MLFLOW_TRACKING_URI"]
    runs = load_runs("xss", tracking_uri=uri)
    marked = runs[(runs["model"] == "gen4_aleph") & (runs["seed"] == 1)]["run_id"].iloc[0]  # on CompareView's grid
    client = MlflowClient(uri)
    for tag, value in (("v2v.status", STATUS), ("v2v.failure_code", FAILURE_CODE), ("v2v.failure", FAILURE)):
        client.set_tag(marked, tag, value)
    renamed = runs[runs["model"] == MODEL]["run_id"].iloc[0]
    live = {}  # a sweep for a SweepMonitor to show: one in plain pytest, one in the page
    for name in ("pytest", "page"):
        live[name] = folder / f"live_{name}.yaml"
        live[name].write_text(yaml.safe_dump(_spec(f"xss_live_{name}", LIVE_PROMPT, models=["gen4_aleph"], seeds=[1])))
    return {"folder": folder, "uri": uri, "env": env, "marked": marked, "renamed": renamed, "live": live}


# -- plain pytest: every widget's HTML value holds the text escaped --------------------------------

def _widgets(root: w.Widget):
    """root and every widget under it, those shown in an Output's display data included."""
    yield root
    for child in getattr(root, "children", ()):
        yield from _widgets(child)
    for output in root.outputs if isinstance(root, w.Output) else ():
        view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
        if view:
            yield from _widgets(_instances[view["model_id"]])


def _markup(root: w.Widget) -> str:
    return "\n".join(x.value for x in _widgets(root) if isinstance(x, (w.HTML, w.HTMLMath, RunTable)))


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;")


def _page_error(query: dict[str, str], uri: str, monkeypatch) -> str:
    """The rating page's code cells run as Voila runs them (the address in QUERY_STRING): its markup."""
    nb = nbformat.read(ROOT / "notebooks" / "pages" / "rate.ipynb", as_version=4)
    monkeypatch.setenv("QUERY_STRING", urlencode(query))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "rate.ipynb", "exec"), namespace)
    return _markup(namespace["box"])


def test_every_widget_holds_what_strangers_wrote_escaped(study, monkeypatch, tmp_path):
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))  # the monitor's sweep keeps its journal there
    uri = study["uri"]
    browser = RunBrowser("xss", tracking_uri=uri)
    browser.run.value = study["marked"]  # its status and failure in the detail pane
    compare = CompareView("xss", by="model", tracking_uri=uri)
    compare.play(study["renamed"])  # the player names the run's model and prompt
    monitor = SweepMonitor()
    monitor.run(str(study["live"]["pytest"]), tracking_uri=uri)
    assert monitor.wait(120) is not None, monitor.error
    markup = {"RunBrowser": _markup(browser), "CompareView": _markup(compare), "SweepMonitor": _markup(monitor)}
    pages = {"experiment": {"experiment": hostile("e"), "rater": "ann"},
             "rater": {"experiment": "xss", "rater": hostile("r")},
             "by": {"experiment": "xss", "rater": "ann", "by": hostile("b")}}
    for name, query in pages.items():
        markup[f"rate page ({name})"] = _page_error(query, uri, monkeypatch)
    raw = {name: "<img" in text for name, text in markup.items()}
    assert raw == {name: False for name in markup}, {n: t[:300] for n, t in markup.items() if raw[n]}
    expected = {"RunBrowser": [PROMPT, MODEL, STATUS, FAILURE_CODE, FAILURE],
                "CompareView": [PROMPT[:60], MODEL, STATUS],
                "SweepMonitor": [LIVE_PROMPT[:30]], **{f"rate page ({n})": [hostile(n[0])] for n in pages}}
    missing = {name: [v for v in values if _escaped(v) not in markup[name]] for name, values in expected.items()}
    assert missing == {name: [] for name in expected}
    # RateView hands its texts to the browser as text (textContent), never as markup.
    view = RateView("xss", by="model", rater="ann", question=hostile("q"), tracking_uri=uri)
    assert view.prompt == PROMPT and view.question == hostile("q")
    assert "innerHTML" not in Path(sys.modules[RateView.__module__].__file__).with_name("rate_view.js").read_text()
    report("round2_widget_markup", {"views": list(markup), "raw_markup_found": 0})


# -- headless Chromium under Voila ---------------------------------------------------------------------

VIEWS_PAGE = [
    "from v2v_lab import RunBrowser\nbrowser = RunBrowser('xss')\nbrowser.run.value = {marked!r}\nbrowser",
    "from v2v_lab import CompareView\ncompare = CompareView('xss', by='model')\ncompare.play({renamed!r})\ncompare",
    "from v2v_lab import SweepMonitor\nmonitor = SweepMonitor()\nmonitor.run('live.yaml')\nmonitor.wait(120)\nmonitor",
]


@pytest.fixture(scope="module")
def voila(study):
    from ..test_browser import _need_browser

    _need_browser()
    pages = study["folder"] / "pages"
    pages.mkdir()
    shutil.copy(ROOT / "notebooks" / "pages" / "rate.ipynb", pages / "rate.ipynb")
    shutil.copy(study["live"]["page"], pages / "live.yaml")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.format(**study)) for c in VIEWS_PAGE])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, pages / "views.ipynb")
    with serve_voila(pages, study["env"], study["folder"] / "voila.log") as (url, _):
        yield url


def _settled(page) -> None:
    """Every image the page asked for has loaded or failed (so an onerror that would run has run)."""
    page.wait_for_load_state("networkidle", timeout=30_000)
    page.wait_for_function("[...document.images].every(i => i.complete)", timeout=30_000)


@pytest.mark.browser
def test_hostile_values_show_literally_and_never_run_in_chromium(voila, study):
    from playwright.sync_api import sync_playwright

    from ..test_browser import CHROMIUM, CHROMIUM_ARGS

    # (address, what shows the page is drawn, the texts it must show literally)
    visits = {
        "rate: experiment": ({"experiment": hostile("e"), "rater": "ann"}, "p[style*='b00']", [hostile("e")]),
        "rate: rater": ({"experiment": "xss", "rater": hostile("r")}, "p[style*='b00']", [hostile("r")]),
        "rate: by": ({"experiment": "xss", "rater": "ann", "by": hostile("b")}, "p[style*='b00']", [hostile("b")]),
        "rate: question": ({"experiment": "xss", "rater": "ann", "question": hostile("q")},
                           ".v2v-rate-progress", [hostile("q"), PROMPT]),
        "views": (None, "text=/succeeded 1/", [PROMPT, MODEL, STATUS, FAILURE, hostile("w")]),
    }
    ran, literal = {}, {}
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = {}
            for name, (query, _, _) in visits.items():  # all asked for at once: Voila runs their kernels side by side
                pages[name] = chromium.new_page(viewport={"width": 1400, "height": 1100})
                pages[name].goto(voila + (f"rate.ipynb?{urlencode(query)}" if query else "views.ipynb"),
                                 wait_until="commit", timeout=120_000)
            for name, (_, drawn, texts) in visits.items():
                page = pages[name]
                page.locator(drawn).first.wait_for(timeout=240_000)
                _settled(page)
                ran[name] = page.evaluate("typeof window.__xss === 'undefined' ? null : String(window.__xss)")
                shown = page.evaluate("document.body.innerText")
                literal[name] = [t for t in texts if t not in shown]
                page.close()
        finally:
            chromium.close()
    assert ran == {name: None for name in visits}, ran  # which payload ran, if any: its label
    assert literal == {name: [] for name in visits}  # texts not shown literally
    report("round2_pages_chromium", {"pages": list(visits), "payloads_run": 0,
                                     "payloads": json.dumps([hostile(x) for x in "pmscfwerbq"])})
