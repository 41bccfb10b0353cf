"""One display for a whole sweep: counts per state and credits, as a bar or a notebook widget."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import escape_controls
from .plan import Plan
from .states import CellState

# A cell's steps in this display: queued, running, scoring, then one of these ends.
ENDS = (CellState.DONE, CellState.FAILED, CellState.UNKNOWN, CellState.MISSING, CellState.NOT_STARTED)

__all__ = ["Progress"]


class Progress:
    """One display for the whole sweep (tqdm.auto: a bar in a terminal, a widget in a notebook)."""

    def __init__(self, total: int, enabled: bool, plan: Plan):
        self.counts: Counter[str] = Counter()
        self.credits = 0.0
        self.bar: Any = None
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=escape_controls(plan.spec.experiment), unit="cell", dynamic_ncols=True)

    def state(self, old: str | None, new: str) -> None:
        if old:
            self.counts[old] -= 1
        self.counts[new] += 1
        if self.bar is not None:
            if new in ENDS:
                self.bar.update(1)
            self.bar.set_postfix({k: v for k, v in self.counts.items() if v} | {"credits": round(self.credits)},
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


