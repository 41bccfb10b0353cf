"""SweepMonitor: the live state of a sweep in a notebook, updated from the runner's events."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import ipywidgets as w


class SweepMonitor(w.VBox):
    """Pass `monitor.on_event` as run_sweep(on_event=...), or call monitor.run(spec) to run in the
    background: the kernel stays free while cells move from queued to done."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.credits = 0.0
        self.latest: list[str] = []
        self.state = w.HTML()
        self.outputs = w.HTML()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cell_state: dict[str, str] = {}
        super().__init__([self.state, self.outputs])
        self._render()

    def on_event(self, kind: str, cell: Any, data: dict[str, Any]) -> None:
        with self._lock:
            old = self._cell_state.get(cell.key)
            if old:
                self.counts[old] -= 1
            self._cell_state[cell.key] = kind
            self.counts[kind] += 1
            if kind == "done":
                self.credits += cell.credits
                vals = data.get("values") or {}
                self.latest = ([f"{cell.model} s{cell.seed} {cell.prompt[:30]}: ssim "
                                f"{vals.get('ssim_source', float('nan')):.3f}"] + self.latest)[:5]
        self._render()

    def _render(self) -> None:
        c = {k: v for k, v in self.counts.items() if v}
        self.state.value = ("<b>cells</b> " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                            + f" &mdash; <b>credits</b> {self.credits:g}") if c else "<i>waiting for the sweep</i>"
        self.outputs.value = "<br>".join(self.latest)

    def run(self, spec: Any, **options: Any) -> threading.Thread:
        from ..sweeps import run_sweep

        def target() -> None:
            try:
                self.result = run_sweep(spec, on_event=self.on_event, progress=False, **options)
            except BaseException as exc:
                self.error = exc
                self.state.value = f"<b>sweep stopped:</b> {exc}"

        self._thread = threading.Thread(target=target, name="v2v-sweep-monitor", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> Any:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result
