"""Round two of bad input, from issue 26: a prompt's terminal escape codes (11), a judgment tag that is
not JSON (14), a lone surrogate and a huge video URL sent to the emulator (15). Each through the
door a user or an attacker uses: the console script, the rating API and RateView on a real store, the
emulator over real HTTP."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from v2v_lab import RateView, load_ratings, metric_agreement, rank, rater_agreement
from v2v_lab.api.catalog import RUNWAY_API_VERSION
from v2v_lab.emulator import Emulator
from v2v_lab.emulator.app import MAX_DATA_URI_VIDEO

from .._helpers import user_env
from ..conftest import DEMO
from .conftest import report, write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
# Sets the terminal's title to PWNED, then clears the screen: what a stranger's prompt may hold.
HOSTILE = "\x1b]0;PWNED\x07\x1b[2J"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J"  # the same, as escape_controls shows it


_env = user_env  # a user's shell, with a store and a state folder in the given folder


def _run(args: list[str], folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=folder, env=_env(folder), capture_output=True, text=True, timeout=300)


# -- 11: a terminal shows values, it never obeys them ---------------------------------------------

def test_11_escape_codes_in_a_prompt_or_a_name_never_reach_the_terminal(tmp_path):
    write_spec(tmp_path, experiment="rel" + HOSTILE, prompts=["neon " + HOSTILE + " city"])
    sweep = _run(["sweep", "spec.yaml", "--yes"], tmp_path)  # the progress bar is on: it is what a user sees
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    # generate prints where it wrote the output: a file name may hold escape codes too.
    generate = _run(["generate", str(DEMO), "--prompt", "neon " + HOSTILE, "--out", f"out{HOSTILE}.mp4"], tmp_path)
    assert generate.returncode == 0, generate.stderr[-2000:]
    error = _run(["score", f"gone{HOSTILE}.mp4", str(DEMO)], tmp_path)  # an error line naming the value
    assert error.returncode == 2
    runs = _run(["runs", "rel" + HOSTILE], tmp_path)
    outputs = {"sweep": sweep, "generate": generate, "error": error, "runs": runs}
    raw = {name: sorted({c for c in done.stdout + done.stderr if c in "\x1b\x07"}) for name, done in outputs.items()}
    assert raw == {name: [] for name in outputs}, {n: (d.stdout + d.stderr)[-600:] for n, d in outputs.items()}
    assert SHOWN in sweep.stdout  # the table's prompt, shown escaped
    assert "rel" + SHOWN in sweep.stderr  # the progress lines, named after the experiment
    assert f"out{SHOWN}.mp4" in generate.stdout and (tmp_path / f"out{HOSTILE}.mp4").is_file()
    assert SHOWN in error.stderr and len(error.stderr.strip().splitlines()) == 1
    assert SHOWN in runs.stdout
    report("round2_terminal", {"commands": list(outputs), "raw_escape_bytes": 0})


# -- 14: one bad judgment tag is skipped, the others count ----------------------------------------

@pytest.fixture(scope="module")
def rated_study(tmp_path_factory) -> tuple[str, str, str]:
    """A study of 4 outputs (2 models x 2 seeds, 2 pairs) rated by ann and bob, and a tag among ann's
    judgments that is not JSON: (tracking uri, ann's ratings run id, the bad tag's key)."""
    folder = tmp_path_factory.mktemp("rated")
    spec = yaml.safe_load(write_spec(folder).read_text())
    del spec["ratios"]  # each model at its own default ratio
    spec.update(experiment="rated", models=["gen4_aleph", "gen3a_turbo"], seeds=[1, 2])
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = _run(["sweep", "spec.yaml", "--yes", "--no-progress"], folder)
    assert done.returncode == 0, done.stderr[-2000:]
    uri = _env(folder)["MLFLOW_TRACKING_URI"]
    for rater in ("ann", "bob"):
        view = RateView("rated", by="model", rater=rater, tracking_uri=uri)
        while view.pair is not None:
            view.choose("left")
    ann_run = RateView("rated", by="model", rater="ann", tracking_uri=uri).ratings_log.run_id()
    MlflowClient(uri).set_tag(ann_run, "v2v.judgment.bad", "not json")
    return uri, ann_run, "v2v.judgment.bad"


def _warned(call) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in seen if "judgment" in str(w.message)]


def test_14_a_judgment_tag_that_is_not_json_is_skipped_with_one_warning(rated_study):
    uri, ann_run, bad = rated_study
    calls = {
        "load_ratings": lambda: load_ratings("rated", tracking_uri=uri),
        "rank": lambda: rank("rated", by="model", tracking_uri=uri, bootstrap=50),
        "rater_agreement": lambda: rater_agreement("rated", tracking_uri=uri),
        "metric_agreement": lambda: metric_agreement("rated", tracking_uri=uri),
        "RateView": lambda: RateView("rated", by="model", rater="ann", tracking_uri=uri),
    }
    results, warned = {}, {}
    for name, call in calls.items():
        results[name], warned[name] = _warned(call)
    # Each works, and says once which run and tag it skipped.
    assert {n: len(w) for n, w in warned.items()} == {n: 1 for n in calls}, warned
    assert all(ann_run in w[0] and bad in w[0] for w in warned.values()), warned
    ratings = results["load_ratings"]
    assert len(ratings) == 4 and set(ratings["rater"]) == {"ann", "bob"}  # the good ones all count
    assert set(results["rank"]["group"]) == {"gen4_aleph", "gen3a_turbo"}
    assert len(results["rater_agreement"]) == 1 and len(results["metric_agreement"]) > 0
    view = results["RateView"]
    assert view.done == 2 and view.pair is None  # ann's two judgments read back; nothing asked again
    report("round2_bad_judgment", {"calls": list(calls), "warnings_each": 1, "judgments_read": len(ratings)})


# -- 15: the emulator answers what a client sends with a 4xx, never a 500 or its memory -------------

AUTH = {"Authorization": "Bearer key_test", "X-Runway-Version": RUNWAY_API_VERSION,
        "Content-Type": "application/json"}
SERVED = 400_000_000  # what the hostile URL offers


class _Huge(http.server.BaseHTTPRequestHandler):
    """Serves SERVED bytes of "video" (with a Content-Length under /declared, none under /undeclared)
    and counts what it managed to send before the reader hung up."""

    sent: dict[str, int] = {}
    done = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/demo":  # the control: a real clip, served whole
            data = DEMO.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        # A small send buffer: what is counted as sent is what the reader took, give or take 64 KB.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if self.path == "/declared":
            self.send_header("Content-Length", str(SERVED))
        self.end_headers()
        chunk, n = b"\0" * 65536, 0
        try:
            while n < SERVED:
                self.wfile.write(chunk)
                n += len(chunk)
        except OSError:  # the reader closed the connection
            pass
        finally:
            self.sent[self.path] = n
            self.done.set()

    def log_message(self, *args) -> None:
        pass


def _post(http_: httpx.Client, **request) -> tuple[int | None, str]:
    """A create's status and error text (None and the exception when no answer came)."""
    try:
        resp = http_.post("/v1/video_to_video", headers=AUTH, **request)
    except httpx.HTTPError as exc:
        return None, repr(exc)
    try:
        return resp.status_code, resp.json().get("error", "")
    except ValueError:
        return resp.status_code, resp.text[:200]


def test_15_a_lone_surrogate_is_a_400_and_a_huge_video_url_is_refused_at_the_limit(tmp_path):
    video = "data:video/mp4;base64," + base64.b64encode(DEMO.read_bytes()).decode()
    body = {"model": "gen4_aleph", "videoUri": video, "promptText": "neon @ city", "ratio": "1280:720"}
    # JSON may carry a lone surrogate as an escape; httpx cannot encode one, so the body is sent as bytes.
    surrogate = json.dumps(body).replace("@", "\\ud800").encode()
    bad_ratio = json.dumps({**body, "promptText": "neon", "ratio": "@"}).replace("@", "\\ud800").encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answers: dict[str, tuple[int | None, str]] = {}
    try:
        with Emulator(render_scale=0.1, workdir=tmp_path / "emu") as emu, \
                httpx.Client(base_url=emu.base_url, timeout=60) as http_:
            answers["lone surrogate"] = _post(http_, content=surrogate)
            answers["lone surrogate in an echoed ratio"] = _post(http_, content=bad_ratio)
            for path in ("/declared", "/undeclared"):
                _Huge.done.clear()
                answers[path] = _post(http_, json={**body, "promptText": "neon",
                                                   "videoUri": f"http://127.0.0.1:{server.server_port}{path}"})
                assert _Huge.done.wait(60), "the server was still sending"
            answers["/demo"] = _post(http_, json={**body, "promptText": "neon",
                                                  "videoUri": f"http://127.0.0.1:{server.server_port}/demo"})
            tasks = emu.tasks()
    finally:
        server.shutdown()
        server.server_close()
    sent = dict(_Huge.sent)
    limit_mb = MAX_DATA_URI_VIDEO // 1_000_000
    # Each answered as Runway words it, and the bytes the server got out before the emulator hung
    # up: not much more than the limit (what sits in the sockets' buffers), never the 400 MB offered.
    seen = {"lone surrogate": answers["lone surrogate"][0], "ratio": answers["lone surrogate in an echoed ratio"][0],
            "/declared": answers["/declared"], "/undeclared": answers["/undeclared"],
            "declared: refused before its body": sent.get("/declared", SERVED) <= 4_000_000,
            "undeclared: read up to the limit, then closed": sent.get("/undeclared", SERVED) <= MAX_DATA_URI_VIDEO
            + 4_000_000}
    assert seen == {"lone surrogate": 400, "ratio": 400, "/declared": (400, f"videoUri: file over {limit_mb} MB"),
                    "/undeclared": (400, f"videoUri: file over {limit_mb} MB"),
                    "declared: refused before its body": True,
                    "undeclared: read up to the limit, then closed": True}, (answers, sent)
    assert answers["lone surrogate"][1].startswith("promptText: Invalid input")
    assert answers["lone surrogate in an echoed ratio"][1].startswith("ratio: Invalid enum value")
    assert answers["/demo"][0] == 200  # a clip within the limit is fetched as before
    assert [t["prompt"] for t in tasks] == ["neon"]  # that one task; nothing refused made one
    report("round2_emulator_inputs", {"answers": answers, "bytes_sent_of_400MB": sent, "tasks_created": len(tasks)})
