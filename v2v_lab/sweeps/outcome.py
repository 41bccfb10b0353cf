"""What a sweep is asked (SweepOptions) and what it gives back (CellOutcome, SweepResult, its table)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError, escape_controls
from ..metrics.base import metric_names
from .plan import Cell, Plan
from .states import CellState

if TYPE_CHECKING:
    from .search_run import SearchReport

__all__ = ["CellOutcome", "CellState", "SweepOptions", "SweepResult"]


@dataclass
class SweepOptions:
    dry_run: bool = False
    yes: bool = False
    max_credits: float | None = None
    concurrency: int | None = None
    provider: str | None = None
    base_url: str | None = None
    force: bool = False
    retry_failed: bool = False
    retry_unknown: bool = False
    tracking_uri: str | None = None
    journal_path: str | None = None
    progress: bool = True
    confirm: Callable[[str], bool] | None = None
    on_event: Callable[[str, Cell, dict[str, Any]], None] | None = None

    def check(self) -> None:
        """Bad numbers are refused by name: a NaN cap would disable the budget, a concurrency of 0
        would silently mean "the spec's"."""
        if self.max_credits is not None and (not isinstance(self.max_credits, (int, float))
                                             or not math.isfinite(self.max_credits) or self.max_credits < 0):
            raise InputError("--max-credits", self.max_credits, "a finite number of credits, 0 or more")
        if self.concurrency is not None and (isinstance(self.concurrency, bool) or not isinstance(
                self.concurrency, int) or not 1 <= self.concurrency <= 64):
            raise InputError("--concurrency", self.concurrency, "a whole number from 1 to 64")


@dataclass
class CellOutcome:
    cell: Cell
    state: CellState
    task_id: str | None = None
    failure_code: str | None = None
    run_id: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    credits: float = 0.0  # what its task cost (the server's figure, else the estimate standing in)
    credits_estimated: float | None = None  # the estimate made before its create
    note: str = ""
    paid_output_pending: bool = False  # failed after its task succeeded: a rerun fetches the output by id
    from_kept: bool = False  # done from an output an earlier run paid for and kept (nothing sent now)
    credits_needed: float = 0.0  # a cell not started for the budget: what it would have cost

    def __post_init__(self) -> None:
        self.state = CellState(self.state)  # the word or the member: "succeeded" (or "done") is CellState.DONE


@dataclass
class SweepResult:
    plan: Plan
    outcomes: list[CellOutcome]
    parent_run_id: str | None
    wall_s: float
    tracking_uri: str | None
    dry_run: bool = False
    already_done: int = 0
    to_create: list[Cell] = field(default_factory=list)  # a dry run's cells that would get a new task
    notices: list[str] = field(default_factory=list)  # said while it ran (an endpoint's price that differs)
    search: SearchReport | None = None  # a search's rounds and verdict (spec key search:)
    # A search's dry run: the most it can cost, the expected cost, and the expected share of the grid.
    search_estimate: tuple[float, float, float] | None = None

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.state.value for o in self.outcomes))

    @property
    def credits_spent(self) -> float:
        """What this sweep's tasks cost, as the server said (the estimate where it sent nothing)."""
        return sum(o.credits for o in self.outcomes)

    @property
    def credits_estimated(self) -> float:
        """What the same tasks were estimated at before their creates."""
        return sum(o.credits if o.credits_estimated is None else o.credits_estimated for o in self.outcomes)

    @property
    def credits_text(self) -> str:
        """"1782 credits", with the estimate beside it where the server's costs differ from it."""
        spent, estimated = self.credits_spent, self.credits_estimated
        return f"{spent:g} credits" + (f" (estimated {estimated:g})" if abs(spent - estimated) >= 0.5 else "")

    @property
    def not_started(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.state is CellState.NOT_STARTED]

    def table(self, metrics: tuple[str, ...] | None = None) -> str:
        """The outcomes as text for a terminal (what is not printable in a prompt or failure shown
        escaped); metrics: columns (the registry's headline metrics by default)."""
        metrics = metric_names(headline_only=True) if metrics is None else metrics
        head = ["state", "model", "seed", "ratio", "prompt", *metrics]
        rows = []
        for o in self.outcomes:
            c = o.cell
            vals = [f"{o.values[m]:.4f}" if m in o.values else "-" for m in metrics]
            shown = escape_controls(c.prompt)
            prompt = shown if len(shown) <= 36 else shown[:33] + "..."
            state = o.state.value + (f" ({o.failure_code})" if o.failure_code else "")
            rows.append([escape_controls(v) for v in (state, c.model, str(c.seed), c.ratio or "-")] + [prompt, *vals])
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


