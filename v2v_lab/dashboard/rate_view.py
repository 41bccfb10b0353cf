"""RateView: blind side-by-side judgments of outputs that differ in one column (model, seed...).

The rater sees two outputs of the same source and prompt, sides random, the `by` values hidden; the
choice is saved to the experiment's store before the next pair is shown. Reopened, the view goes on
where the rater stopped. Scripts and tests use the same object: `view.pair`, `view.choose(...)`.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import anywidget
import pandas as pd
import traitlets

from ..errors import InputError, V2VError
from ..media.probe import probe_video
from ..rating import Pair, Settlement, build_pairs, next_pair, question_text, settlement, win_matrix
from ..rating.pairs import pair_key, presentation
from ..tracking.judgments import CHOICES, Judgment, RatingsLog, load_judgments
from ..tracking.reader import artifact_address, list_experiments, load_runs
from ..tracking.schema import ARTIFACT_OUTPUT
from ..tracking.store import local_store_path
from ..tracking.store import tracking_uri as resolve_uri
from .media_server import media_server
from .outputs import playable_output

__all__ = ["VIDEO_MODES", "RateView", "warm_up"]

VIDEO_MODES = ("served", "inline")


class RateView(anywidget.AnyWidget):
    _esm = Path(__file__).with_name("rate_view.js")
    _css = """
    .v2v-rate { font-family: system-ui, sans-serif; max-width: 1280px; color: #1d1d1f; }
    .v2v-rate-prompt { font-size: 1.6em; font-weight: 650; line-height: 1.3; margin: 4px 0 6px;
                       overflow-wrap: anywhere; }
    .v2v-rate-question { font-size: 1.1em; color: #444; margin: 0 0 10px; }
    .v2v-rate-stage { display: flex; gap: 14px; align-items: flex-start; }
    .v2v-rate-side { flex: 1; min-width: 0; }
    .v2v-rate-frame { position: relative; background: #111; line-height: 0; --wipe: 50%; }
    .v2v-rate-video { width: 100%; background: #111; display: block; }
    .v2v-rate-under, .v2v-rate-wipe-line { display: none; }
    .v2v-rate-wiping .v2v-rate-under { display: block; position: absolute; inset: 0; height: 100%;
                                        object-fit: cover; }
    .v2v-rate-wiping .v2v-rate-left, .v2v-rate-wiping .v2v-rate-right {
        position: relative; clip-path: inset(0 0 0 var(--wipe)); }
    .v2v-rate-wiping .v2v-rate-wipe-line { display: block; position: absolute; top: 0; bottom: 0;
        left: var(--wipe); width: 2px; margin-left: -1px; background: #fff; box-shadow: 0 0 3px #000;
        pointer-events: none; }
    .v2v-rate-wiping .v2v-rate-frame { cursor: ew-resize; }
    .v2v-rate-label { font-weight: 700; font-size: 1.1em; margin: 0 0 4px; }
    .v2v-rate-transport { display: flex; gap: 8px; align-items: center; margin: 10px 0; flex-wrap: wrap; }
    .v2v-rate-transport button { font-size: 0.95em; padding: 5px 10px; border: 1px solid #bbb;
                                 border-radius: 6px; background: #f6f6f6; cursor: pointer; }
    .v2v-rate-seek { flex: 1; min-width: 200px; }
    .v2v-rate-time { font-variant-numeric: tabular-nums; min-width: 9em; text-align: center; color: #333; }
    .v2v-rate-wipe { width: 120px; }
    .v2v-rate kbd { font-family: ui-monospace, monospace; font-size: 0.8em; margin-left: 8px; padding: 1px 6px;
                    border: 1px solid currentColor; border-radius: 4px; opacity: 0.75; }
    .v2v-rate-choices { display: flex; gap: 12px; margin: 8px 0; }
    .v2v-rate-choice { font-size: 1.15em; font-weight: 600; padding: 12px 22px; border-radius: 8px;
                       border: 2px solid transparent; cursor: pointer; color: #fff; min-width: 9em; }
    .v2v-rate-choice:disabled { opacity: 0.45; cursor: wait; }
    .v2v-rate-choice:hover:not(:disabled) { filter: brightness(1.1); }
    .v2v-rate-left-button { background: #1f5fbf; }
    .v2v-rate-right-button { background: #b8561a; }
    .v2v-rate-tie-button { background: #5c5c66; }
    .v2v-rate-skip-button { background: #fff; color: #444; border-color: #bbb; }
    .v2v-rate-progress { margin-top: 8px; color: #555; }
    .v2v-rate-finished { font-size: 1.3em; font-weight: 600; }
    """
    question = traitlets.Unicode("").tag(sync=True)
    prompt = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Unicode("").tag(sync=True)
    pair_id = traitlets.Unicode("").tag(sync=True)
    # Each video by address (the kernel's media server) or, videos="inline", as bytes in the state.
    left_url = traitlets.Unicode("").tag(sync=True)
    right_url = traitlets.Unicode("").tag(sync=True)
    source_url = traitlets.Unicode("").tag(sync=True)
    left_video = traitlets.Bytes(b"").tag(sync=True)
    right_video = traitlets.Bytes(b"").tag(sync=True)
    source_video = traitlets.Bytes(b"").tag(sync=True)
    show_source = traitlets.Bool(False).tag(sync=True)
    fps = traitlets.Float(24.0).tag(sync=True)  # the left output's frame rate: one frame per step
    finished = traitlets.Bool(False).tag(sync=True)
    enough = traitlets.Bool(False).tag(sync=True)  # the ranking is settled: more judgments add little
    ranking = traitlets.Unicode("").tag(sync=True)  # the stop rule's one line

    def __init__(self, experiment: str, by: str = "model", rater: str = "", question: str = "text", *,
                 tracking_uri: str | None = None, again: bool = False, show_prompt: bool = True,
                 pairs: str = "active", videos: str = "served"):
        """experiment: the study to rate; by: the column whose values are compared, hidden from the
        rater; rater: who is rating (their judgments are kept under this name); question: a preset
        (text, structure, quality: LOVEU-TGVE's three axes) or any question; again: show pairs this
        rater already judged for this question once more (each new choice is kept beside the old);
        pairs: "active" (the next pair is the one expected to teach the most about the ranking, from
        every rater's judgments so far) or "random" (a fixed random order per rater); videos: "served"
        (the page fetches each video by address: on a tracking server store (http/https) an output
        comes straight from the server's artifact route, nothing downloaded to the kernel, so the
        browser must reach the server; else from a server this kernel runs on 127.0.0.1, so the browser
        must be on the same machine; the widget state, and a saved notebook, stay small) or "inline" (the bytes in
        the widget state, for a kernel elsewhere, e.g. Colab)."""
        if pairs not in ("active", "random"):
            raise InputError("pairs", pairs, "active | random")
        if videos not in VIDEO_MODES:
            raise InputError("videos", videos, " | ".join(VIDEO_MODES))
        super().__init__()
        self.videos = videos
        self.pairs_mode = pairs
        self.experiment, self.by, self.tracking_uri = experiment, by, tracking_uri
        self.ratings_log = RatingsLog(experiment, rater, tracking_uri=tracking_uri)  # checks rater and experiment
        self.rater = self.ratings_log.rater
        self.question = question_text(question)
        self.show_prompt = show_prompt
        runs = load_runs(experiment, tracking_uri=tracking_uri)
        # Which outputs a browser plays as they are (H.264 mp4, the default format): only those stream
        # straight from a tracking server; the others go through a preview the kernel makes.
        formats = runs["output_format"] if "output_format" in runs else pd.Series(pd.NA, index=runs.index)
        self._as_is = {run for run, fmt in zip(runs["run_id"], formats, strict=True) if pd.isna(fmt) or fmt == "mp4"}
        self._pairs = build_pairs(runs, by)
        if not self._pairs:
            raise InputError("by", by, f"a column whose values differ between succeeded runs of {experiment!r} "
                             "that share source and prompt (no such pairs)")
        self._groups = sorted({v for p in self._pairs for v in p.values})
        self._order = presentation(self._pairs, self.rater, self.question)
        self.total = len(self._order)
        self._warned: set[str] = set()
        judged = self._judgments()
        mine = judged[judged["rater"] == self.rater]
        # Progress counts distinct pairs judged; asked to go again, it counts this round only.
        self._judged = set() if again else {pair_key(a, b) for a, b in zip(mine["left_run"], mine["right_run"], strict=True)}
        self._queue = [(p, s) for p, s in self._order if p.key not in self._judged]
        self._current: tuple[Pair, bool] | None = None
        self._settlement = settlement(win_matrix(judged, self._groups), self._groups)
        self._shown_at = 0.0
        self.on_msg(self._on_message)
        self.observe(self._on_show_source, "show_source")
        self._next()

    # -- the programmatic face --------------------------------------------------------------------
    @property
    def pair(self) -> tuple[str, str] | None:
        """The two run ids as shown, left first; None when every pair is rated."""
        if self._current is None:
            return None
        pair, swapped = self._current
        return (pair.runs[1], pair.runs[0]) if swapped else pair.runs

    @property
    def done(self) -> int:
        return len(self._judged)

    @property
    def settlement(self) -> Settlement:
        """The stop rule on every rater's judgments of this question and `by`, as of the last pair shown."""
        return self._settlement

    def choose(self, choice: str) -> Judgment:
        """Judge the pair on show: left, right, tie or skip. Saved before the next pair appears."""
        if choice not in CHOICES:
            raise InputError("choice", choice, " | ".join(CHOICES))
        if self._current is None:
            raise InputError("choice", choice, f"nothing: all {self.total} pairs are rated")
        pair, swapped = self._current
        left, right = self.pair or pair.runs
        values = dict(zip(pair.runs, pair.values, strict=True))
        judgment = Judgment(
            id=uuid.uuid4().hex, rater=self.rater, question=self.question, by=self.by, left_run=left,
            right_run=right, left_value=values[left], right_value=values[right], choice=choice,
            at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            seconds=round(time.monotonic() - self._shown_at, 3))
        self.ratings_log.save(judgment)  # durable before anything else changes
        self._judged.add(pair.key)
        self._next()
        return judgment

    # -- the widget --------------------------------------------------------------------------------
    def _on_message(self, _widget: object, content: dict, _buffers: object) -> None:
        # A choice made on a pair that is no longer shown (double click, key repeat) is dropped.
        if isinstance(content, dict) and content.get("pair") == self.pair_id and self._current is not None:
            self.choose(str(content.get("choice")))

    def _judgments(self) -> pd.DataFrame:
        # Read again before every pair: a tag that is not a judgment is said once per view, not per read.
        judged = load_judgments(self.experiment, tracking_uri=self.tracking_uri, warned=self._warned)
        return judged[(judged["question"] == self.question) & (judged["by"] == self.by)]

    def _next(self) -> None:
        # Every rater's judgments so far, read again: colleagues rating on the same store count at once.
        judged = self._judgments()
        self._settlement = settlement(win_matrix(judged, self._groups), self._groups)
        if self.pairs_mode == "active":
            self._current = next_pair(self._pairs, judged, self.rater, self.question, judged=self._judged)
        else:
            self._current = self._queue.pop(0) if self._queue else None
        self._shown_at = time.monotonic()
        # One message to the browser: the progress never shows a count before its pair is there.
        with self.hold_sync():
            self.enough, self.ranking = self._settlement.enough, str(self._settlement)
            self.progress = f"{self.done} of {self.total} rated · rater {self.rater} · {self._settlement}"
            if self._current is None:
                self.finished, self.prompt, self.pair_id = True, "", ""
                for side in ("left", "right", "source"):
                    self._show(side, None)
                return
            pair, _ = self._current
            left, right = self.pair or pair.runs
            shown = self._video(left)
            self._show("left", shown)
            # An output streamed from a tracking server is not read here: steps go by its source's rate.
            self.fps = self._fps(shown if isinstance(shown, Path) else self._source(pair))
            self._show("right", self._video(right))
            self._show("source", self._source(pair) if self.show_source else None)
            self.prompt = pair.prompt if self.show_prompt else ""
            self.pair_id = f"{pair.key}#{self.done}"

    def _show(self, side: str, video: Path | str | None) -> None:
        """Put a video (or nothing) on one side: a file by its address on the kernel's media server, or
        as bytes when videos="inline"; an address (the tracking server's) as it is."""
        if isinstance(video, str):
            self._set(side, video, b"")
        elif video is None:
            self._set(side, "", b"")
        elif self.videos == "served":
            self._set(side, media_server().url(video), b"")
        else:
            self._set(side, "", video.read_bytes())

    def _set(self, side: str, url: str, data: bytes) -> None:
        setattr(self, f"{side}_url", url)
        setattr(self, f"{side}_video", data)

    def _video(self, run_id: str) -> Path | str | None:
        """The output as the page plays it (video/mp4): from a tracking server, the address of its
        artifact route, which the browser streams from (nothing downloaded to the kernel); else a
        file, a ProRes, 10-bit or PNG-zip output as its preview."""
        if self.videos == "served" and run_id in self._as_is:
            found = artifact_address(run_id, ARTIFACT_OUTPUT, tracking_uri=self.tracking_uri)
            if found is not None and found[0].endswith(".mp4"):
                return found[1]
        path, _ = playable_output(run_id, self.tracking_uri)
        return path

    @staticmethod
    def _fps(path: Path | None) -> float:
        try:
            return probe_video(path).fps if path is not None else 24.0
        except (V2VError, OSError, ValueError):
            return 24.0  # a step of 1/24 s: close enough for a video the page cannot read either

    @staticmethod
    def _source(pair: Pair) -> Path | None:
        return Path(pair.source) if pair.source and os.path.isfile(pair.source) else None

    def _on_show_source(self, change: dict) -> None:
        if change["new"] and self._current is not None and not (self.source_url or self.source_video):
            self._show("source", self._source(self._current[0]))


def warm_up(tracking_uri: str | None = None) -> None:
    """What a rating page does before its rater arrives (Voila runs it in its pre-heated kernels):
    the video server started and, for a local store that is there, the store opened (MLflow's SQL
    store takes seconds to import and map its tables). A server store is not asked: one that is away
    would hold the page for the store's retry window before anyone had asked for anything."""
    media_server()
    uri = resolve_uri(tracking_uri)
    path = local_store_path(uri)
    if path is not None and path.is_file():
        list_experiments(uri)
