"""The budget while a sweep runs: every create reserves its estimate in the journal first (the
experiment's cap holds across processes sharing a ledger), the server's estimatedCost replaces it
the moment the create is answered, and the task's cost when it ends (charges.py keeps the rows).

A catalog price can be stale. With a cap, a model's first create in a sweep goes alone: its
estimatedCost tells the endpoint's price before any other create of that model leaves. When that
price differs from the catalog's by more than PRICE_TOLERANCE, one line says so, and every later
estimate of the model uses the endpoint's. A cell that no longer fits under the cap is not started:
nothing is sent, nothing is journaled, and a rerun with a higher cap takes it up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..api.catalog import Catalog
from ..api.task import CreatedTask, Task
from ..errors import V2VError
from .journal import JournalStore
from .plan import Cell

__all__ = ["PRICE_TOLERANCE", "NotStartedError", "Reservation", "SpendGuard"]

PRICE_TOLERANCE = 0.05  # an endpoint price this far from the catalog's is said, and used from then on
PRICE_FRESH_S = 3600.0  # a price a create of the experiment was told this recently is still the price


class NotStartedError(V2VError):
    """The cell does not fit: its estimate under the cap with what is already spent or in flight
    (reason "budget"), or its model's generations left today (reason "daily limit")."""

    code = "NOT_STARTED"

    def __init__(self, estimate: float, reason: str, why: str):
        self.estimate, self.reason = estimate, reason
        super().__init__(f"not started ({reason}): would cost about {estimate:g} credits; {why}")


@dataclass
class Reservation:
    cell: Cell
    id: str
    estimate: float
    scout: asyncio.Lock | None = None  # held while this create tells the model's price


@dataclass
class SpendGuard:
    """One sweep's spending. cap: the experiment's budget.max_credits (None: none, and no create
    waits for another; the rows are kept all the same). say: where a price line goes."""

    journal: JournalStore
    experiment: str
    catalog: Catalog
    cap: float | None
    say: Callable[[str], None] = print
    # model -> generations the account had left today when the sweep read its organization, and
    # when: every create of the model reserved since (this process's and the others') counts.
    daily_left: dict[str, int] = field(default_factory=dict)
    since: float = field(default_factory=time.time)
    price_ratio: dict[str, float] = field(default_factory=dict)  # model -> endpoint price / catalog price
    notices: list[str] = field(default_factory=list)
    _scouts: dict[str, asyncio.Lock] = field(default_factory=dict)

    def estimate(self, cell: Cell) -> float:
        """The cell's estimate at the price known now: the endpoint's, once it has told it."""
        return cell.credits * self.price_ratio.get(cell.model, 1.0)

    async def reserve(self, cell: Cell) -> Reservation:
        """Before a create: its estimate held against the cap (NotStartedError if it does not fit)."""
        scout = None
        if self.cap is not None and cell.model not in self.price_ratio:
            # Another process of a shared sweep (or a sweep just before) may have been told it.
            told = await asyncio.to_thread(self.journal.price_told, self.experiment, cell.model,
                                           time.time() - PRICE_FRESH_S)
            if told is not None:
                self._learn(cell, told)
        if self.cap is not None and cell.model not in self.price_ratio:
            scout = self._scouts.setdefault(cell.model, asyncio.Lock())
            await scout.acquire()
            if cell.model in self.price_ratio:  # told while this one waited: no need to go alone
                scout.release()
                scout = None
        estimate = self.estimate(cell)
        try:
            await self._check_daily(cell, estimate)
            rid = await asyncio.to_thread(self.journal.reserve, self.experiment, cell.key, cell.model, estimate,
                                          self.cap)
        except BaseException:
            _release(scout)
            raise
        if rid is None:
            _release(scout)
            assert self.cap is not None
            left = max(0.0, self.cap - await asyncio.to_thread(self.committed))
            raise NotStartedError(estimate, "budget", f"the cap of {self.cap:g} has {left:g} left")
        return Reservation(cell, rid, estimate, scout)

    async def _check_daily(self, cell: Cell, estimate: float) -> None:
        """The model's daily generations, as the organization endpoint gave them, less the creates
        reserved since (the server refuses past it anyway: this keeps the refusal a cell not started)."""
        left = self.daily_left.get(cell.model)
        if left is None:
            return
        made = await asyncio.to_thread(self.journal.reservations_since, self.experiment, cell.model, self.since)
        if made >= left:
            raise NotStartedError(estimate, "daily limit", f"{cell.model} had {left} generations left today, "
                                  f"and {made} have been created since")

    async def created(self, r: Reservation, created: CreatedTask) -> None:
        """The create was answered: its estimatedCost replaces the estimate, and tells the price."""
        told = created.estimated_cost / r.cell.credits if created.estimated_cost is not None and r.cell.credits else None
        try:
            await asyncio.to_thread(self.journal.charge_created, r.id, created.id, created.estimated_cost, told)
            if told is not None and r.cell.model not in self.price_ratio:
                self._learn(r.cell, told)
        finally:
            _release(r.scout)

    async def refused(self, r: Reservation) -> None:
        """The create was refused (no task): nothing is charged, the reservation goes."""
        try:
            await asyncio.to_thread(self.journal.release_charge, r.id)
        finally:
            _release(r.scout)

    def unanswered(self, r: Reservation) -> None:
        """The create's outcome is unknown: its reservation stays counted (the task may exist)."""
        _release(r.scout)

    async def ended(self, cell: Cell, task: Task) -> float:
        """A task's end: its cost as the server said (else the figure that stands in). Returns it."""
        await asyncio.to_thread(self.journal.charge_ended, self.experiment, cell.key, cell.model, task.id, task.cost,
                                self.estimate(cell))
        if task.cost is not None:
            return task.cost
        return task.estimated_cost if task.estimated_cost is not None else self.estimate(cell)

    def committed(self) -> float:
        return self.journal.committed(self.experiment)

    def _learn(self, cell: Cell, ratio: float) -> None:
        self.price_ratio[cell.model] = ratio
        if abs(ratio - 1.0) <= PRICE_TOLERANCE:
            self.price_ratio[cell.model] = 1.0  # within the tolerance the catalog stands
            return
        spec = self.catalog[cell.model]
        line = (f"price: {cell.model} costs {ratio:.2f}x the catalog's price on this endpoint (catalog "
                f"{spec.credits_per_second:g} credits/s, endpoint about {spec.credits_per_second * ratio:.4g} credits/s); "
                "estimates use the endpoint's price from here on")
        self.notices.append(line)
        self.say(line)


def _release(lock: asyncio.Lock | None) -> None:
    if lock is not None and lock.locked():
        lock.release()
