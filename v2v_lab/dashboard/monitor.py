"""SweepMonitor: the live state of a sweep in a notebook, updated from the runner's events."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

import ipywidgets as w

from .._sync import run_in_background
from ..sweeps.progress import ENDS
from ..sweeps.states import CellState
from ..tracking.schema import ARTIFACT_POSTER
from .markup import esc
from .thumbnails import thumbnail

__all__ = ["LATEST", "TILE_WIDTH", "SweepMonitor"]

LATEST = 4  # outputs shown as posters
TILE_WIDTH = 160


class SweepMonitor(w.VBox):
    """Pass `monitor.on_event` as run_sweep(on_event=...), or call monitor.run(spec) to run in the
    background: the kernel stays free while cells move from queued to done. Shows cells by state,
    credits spent, elapsed time and an estimate of the time left, and posters of the latest outputs."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.credits = 0.0
        self.latest: list[tuple[str, bytes | None]] = []  # (caption, poster PNG) newest first
        self.state = w.HTML()
        self.outputs = w.HBox()
        self._tiles: list[tuple[w.VBox, w.Image, w.HTML]] = []
        for _ in range(LATEST):
            image, label = w.Image(format="jpeg", width=TILE_WIDTH), w.HTML()
            self._tiles.append((w.VBox([image, label]), image, label))
        self.result: Any = None
        self.error: BaseException | None = None
        self._future: Future[Any] | None = None
        self._lock = threading.Lock()
        self._cell_state: dict[str, str] = {}
        self._started: float | None = None
        super().__init__([self.state, self.outputs])
        self._render()

    def on_event(self, kind: str, cell: Any, data: dict[str, Any]) -> None:
        with self._lock:
            if self._started is None:
                self._started = time.monotonic()
            old = self._cell_state.get(cell.key)
            if old:
                self.counts[old] -= 1
            # A cell's state in the word the summary and `runs` use ("done" is the event's name).
            word = str({"done": CellState.DONE, "not_started": CellState.NOT_STARTED}.get(kind, kind))
            self._cell_state[cell.key] = word
            self.counts[word] += 1
            if kind == "done":
                self.credits += data.get("credits", cell.credits)  # what the server charged, where it said
                vals = data.get("values") or {}
                caption = (f"{esc(cell.model)} s{esc(cell.seed)} {esc(cell.prompt[:30])}<br>ssim "
                           f"{vals.get('ssim_source', float('nan')):.3f}")
                poster = Path(data["output"]).parent / ARTIFACT_POSTER if data.get("output") else None
                image = thumbnail(poster.read_bytes(), TILE_WIDTH) if poster is not None and poster.is_file() else None
                self.latest = ([(caption, image)] + self.latest)[:LATEST]
        self._render()

    def eta_s(self) -> float | None:
        """Seconds left at the pace so far, once a cell has ended."""
        ended = sum(self.counts[s] for s in ENDS)
        total = sum(self.counts.values())
        if not ended or self._started is None or ended >= total:
            return None
        return (time.monotonic() - self._started) / ended * (total - ended)

    def _render(self) -> None:
        c = {k: v for k, v in self.counts.items() if v}
        if not c:
            self.state.value = "<i>waiting for the sweep</i>"
        else:
            elapsed = time.monotonic() - (self._started or time.monotonic())
            eta = self.eta_s()
            left = f", about {eta:.0f} s left" if eta is not None else ""
            self.state.value = ("<b>cells</b> " + ", ".join(f"{esc(k)} {v}" for k, v in sorted(c.items()))
                                + f" &mdash; <b>credits</b> {self.credits:g} &mdash; {elapsed:.0f} s{left}")
        # The same few tiles, refilled: new widgets on every event would all be kept in a saved notebook.
        for (caption, jpeg), (_, image, label) in zip(self.latest, self._tiles, strict=False):
            image.value = jpeg or b""
            image.layout.display = None if jpeg else "none"
            label.value = f"<small>{caption}</small>" if jpeg else f"<small><i>no poster</i> {caption}</small>"
        self.outputs.children = [tile for tile, _, _ in self._tiles[: len(self.latest)]]

    def run(self, spec: Any, **options: Any) -> Future[Any]:
        """Start the sweep in the background (the bridge in v2v_lab._sync) and return its Future;
        the kernel stays free. wait() gives its result."""
        from ..sweeps import sweep_runner

        runner = sweep_runner(spec, on_event=self.on_event, progress=False, **options)
        self._future = run_in_background(runner.run, thread_name="v2v-sweep-monitor")
        self._future.add_done_callback(self._ended)
        return self._future

    def _ended(self, future: Future[Any]) -> None:
        error = future.exception()
        if error is None:
            self.result = future.result()
        else:
            self.error = error
            self.state.value = f"<b>sweep stopped:</b> {esc(error)}"

    def wait(self, timeout: float | None = None) -> Any:
        """The sweep's result once it has ended (None while it runs past timeout; see .error)."""
        if self._future is not None:
            done, _ = futures_wait([self._future], timeout)
            if done:  # waiters wake before done-callbacks run: take the ending here too
                self._ended(self._future)
        return self.result
