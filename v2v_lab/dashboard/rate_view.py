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

from ..errors import InputError
from ..rating import Pair, Settlement, build_pairs, next_pair, question_text, settlement, win_matrix
from ..rating.pairs import pair_key, presentation
from ..tracking.judgments import CHOICES, Judgment, RatingsLog, load_judgments
from ..tracking.reader import load_runs
from .outputs import playable_output

__all__ = ["RateView"]


class RateView(anywidget.AnyWidget):
    _esm = Path(__file__).with_name("rate_view.js")
    _css = """
    .v2v-rate { font-family: sans-serif; max-width: 1100px; }
    .v2v-rate-question { font-size: 1.25em; font-weight: 600; margin: 6px 0; }
    .v2v-rate-prompt { color: #333; margin-bottom: 6px; }
    .v2v-rate-stage { display: flex; gap: 12px; }
    .v2v-rate-side { flex: 1; }
    .v2v-rate-video { width: 100%; max-width: 520px; background: #111; }
    .v2v-rate-source .v2v-rate-video { max-width: 360px; }
    .v2v-rate-label { font-weight: 600; margin: 2px 0; }
    .v2v-rate-transport { display: flex; gap: 8px; align-items: center; margin: 6px 0; }
    .v2v-rate-seek { flex: 1; }
    .v2v-rate-choices button { font-size: 1.05em; margin-right: 8px; padding: 6px 14px; }
    .v2v-rate-progress { margin-top: 6px; color: #555; }
    """
    question = traitlets.Unicode("").tag(sync=True)
    prompt = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Unicode("").tag(sync=True)
    pair_id = traitlets.Unicode("").tag(sync=True)
    left_video = traitlets.Bytes(b"").tag(sync=True)
    right_video = traitlets.Bytes(b"").tag(sync=True)
    source_video = traitlets.Bytes(b"").tag(sync=True)
    show_source = traitlets.Bool(False).tag(sync=True)
    finished = traitlets.Bool(False).tag(sync=True)
    enough = traitlets.Bool(False).tag(sync=True)  # the ranking is settled: more judgments add little
    ranking = traitlets.Unicode("").tag(sync=True)  # the stop rule's one line

    def __init__(self, experiment: str, by: str = "model", rater: str = "", question: str = "text", *,
                 tracking_uri: str | None = None, again: bool = False, show_prompt: bool = True,
                 pairs: str = "active"):
        """experiment: the study to rate; by: the column whose values are compared, hidden from the
        rater; rater: who is rating (their judgments are kept under this name); question: a preset
        (text, structure, quality: LOVEU-TGVE's three axes) or any question; again: show pairs this
        rater already judged for this question once more (each new choice is kept beside the old);
        pairs: "active" (the next pair is the one expected to teach the most about the ranking, from
        every rater's judgments so far) or "random" (a fixed random order per rater)."""
        if pairs not in ("active", "random"):
            raise InputError("pairs", pairs, "active | random")
        super().__init__()
        self.pairs_mode = pairs
        self.experiment, self.by, self.tracking_uri = experiment, by, tracking_uri
        self.ratings_log = RatingsLog(experiment, rater, tracking_uri=tracking_uri)  # checks rater and experiment
        self.rater = self.ratings_log.rater
        self.question = question_text(question)
        self.show_prompt = show_prompt
        runs = load_runs(experiment, tracking_uri=tracking_uri)
        self._pairs = build_pairs(runs, by)
        if not self._pairs:
            raise InputError("by", by, f"a column whose values differ between succeeded runs of {experiment!r} "
                             "that share source and prompt (no such pairs)")
        self._groups = sorted({v for p in self._pairs for v in p.values})
        self._order = presentation(self._pairs, self.rater, self.question)
        self.total = len(self._order)
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
        judged = load_judgments(self.experiment, tracking_uri=self.tracking_uri)
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
                self.finished, self.left_video, self.right_video, self.source_video = True, b"", b"", b""
                self.prompt, self.pair_id = "", ""
                return
            pair, _ = self._current
            left, right = self.pair or pair.runs
            self.left_video, self.right_video = self._video(left), self._video(right)
            self.source_video = self._source(pair) if self.show_source else b""
            self.prompt = pair.prompt if self.show_prompt else ""
            self.pair_id = f"{pair.key}#{self.done}"

    def _video(self, run_id: str) -> bytes:
        # The page plays the bytes as video/mp4: a ProRes, 10-bit or PNG-zip output goes as its preview.
        path, _ = playable_output(run_id, self.tracking_uri)
        return path.read_bytes() if path is not None else b""

    @staticmethod
    def _source(pair: Pair) -> bytes:
        return Path(pair.source).read_bytes() if pair.source and os.path.isfile(pair.source) else b""

    def _on_show_source(self, change: dict) -> None:
        if change["new"] and self._current is not None and not self.source_video:
            self.source_video = self._source(self._current[0])
