"""A sweep shared by several processes through the PostgreSQL ledger: each takes cells by claim,
works on as many at once as its own concurrency allows, takes a slot on the account before each
create, and waits for the cells others hold until they end (or their holder dies and the claim
passes to it). Waiting is on the ledger's notifications (a claim or a slot given up, ledger.py),
each kind waking only its own waits: a process looks again the moment one is given up, and
otherwise only every quarter of a lease, for a holder that died without a word."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .journal import ClaimLostError, ClaimStore, JournalRow
from .outcome import CellOutcome
from .plan import Cell
from .states import CellState, JournalState

__all__ = ["CLAIM", "SLOT", "LedgerChanges", "cell_kind", "interleaved", "run_shared", "shared_slot"]

# (cell, its journal row as it was when claimed) -> the cell's outcome
RunOne = Callable[[Cell, JournalRow | None], Awaitable[CellOutcome]]


CLAIM, SLOT = "claim", "slot"  # the two things the ledger says were given up (ledger.py)


class LedgerChanges:
    """What this process hears from the ledger, on its event loop, kept apart by kind: a claim
    given up wakes only the waits for cells, a slot given back only the waits for slots (a process
    waiting for a cell has nothing to gain from a slot, and each look costs a round trip). Each
    notification of a kind starts a new generation of it; a waiter notes the generation before it
    looks at the ledger and then waits for a later one, so a change between its look and its wait
    is not missed. After the ledger was away (what was said meanwhile is lost) both kinds move on."""

    def __init__(self, ledger: ClaimStore):
        self.fallback_s = ledger.lease_s / 4  # a holder that died says nothing: its lease runs out
        self._generation = {CLAIM: 0, SLOT: 0}
        self._next = {CLAIM: asyncio.Event(), SLOT: asyncio.Event()}
        loop = asyncio.get_running_loop()

        def heard(what: str) -> None:  # on the ledger's listening thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(self._heard, what)
        ledger.subscribe(heard)

    def generation(self, kind: str) -> int:
        return self._generation[kind]

    def _heard(self, what: str) -> None:
        for kind in [what] if what in self._next else list(self._next):
            self._generation[kind] += 1
            self._next[kind].set()
            self._next[kind] = asyncio.Event()

    async def after(self, kind: str, generation: int) -> None:
        """Returns once a change of `kind` later than `generation` was heard, or after fallback_s."""
        if self._generation[kind] != generation:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._next[kind].wait(), self.fallback_s)


@contextlib.asynccontextmanager
async def shared_slot(ledger: ClaimStore, changes: LedgerChanges, account: str, cell: Cell,
                      limit: int) -> AsyncIterator[None]:
    """One of the account's `limit` slots for the cell's model, counted across every process; while
    they are all taken, looked for again when one is given back."""
    while True:
        seen = changes.generation(SLOT)
        if await asyncio.to_thread(ledger.take_slot, account, cell.model, cell.key, limit):
            break
        await changes.after(SLOT, seen)
    try:
        yield
    finally:
        await asyncio.to_thread(ledger.give_slot, account, cell.key)


def interleaved(cells: list[Cell]) -> list[Cell]:
    """The cells, models taking turns (each model's in their order): the cells a process claims at
    once then spread over the account's per-model slots instead of all waiting on one model's."""
    by_model: dict[str, list[Cell]] = {}
    for cell in cells:
        by_model.setdefault(cell.model, []).append(cell)
    queues = list(by_model.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def _ended_elsewhere(cell: Cell, row: JournalRow) -> CellOutcome:
    """A cell this process leaves as it is: ended in another process or an earlier run."""
    # done, failed or unknown keep their word; a 'sending' row's sender died mid-send: unknown.
    state = CellState.UNKNOWN if row.state is JournalState.SENDING else CellState(row.state.value)
    return CellOutcome(cell, state, task_id=row.task_id, failure_code=row.failure_code, run_id=row.run_id,
                       note="ended in another process or an earlier run")


async def run_shared(ledger: ClaimStore, changes: LedgerChanges, experiment: str, cells: list[Cell], concurrency: int,
                     run_one: RunOne, settled: Callable[[Cell, JournalRow], bool]) -> list[CellOutcome]:
    """Every cell ends here or in another process. settled(cell, row): the row is an end this
    process must not redo (done, or failed or unknown that the options say to leave)."""
    return await _SharedRun(ledger, changes, experiment, cells, concurrency, run_one, settled).run()


class _SharedRun:
    """One process's part of a shared sweep: cells wait in `pending` until this process claims
    them; a claimed cell is either already ended (settled) or run here, `concurrency` at a time."""

    def __init__(self, ledger: ClaimStore, changes: LedgerChanges, experiment: str, cells: list[Cell],
                 concurrency: int, run_one: RunOne, settled: Callable[[Cell, JournalRow], bool]):
        self.ledger, self.experiment, self.run_one, self.settled = ledger, experiment, run_one, settled
        self.changes = changes
        self.pending = interleaved(cells)
        self.outcomes: list[CellOutcome] = []
        self.running: dict[asyncio.Task[CellOutcome], Cell] = {}
        self.room = asyncio.Semaphore(concurrency)

    async def run(self) -> list[CellOutcome]:
        try:
            while self.pending or self.running:
                seen = self.changes.generation(CLAIM)
                await self._start_what_can_be_claimed()
                if not self.pending and not self.running:
                    break  # the last cells were found ended elsewhere
                # Then wait for one of this process's cells to end, and while it has room for a
                # cell others hold, for a claim given up anywhere: that cell may be its to claim now.
                waits: set[asyncio.Future[Any]] = set(self.running)
                heard = None
                if self.pending and not self.room.locked():
                    heard = asyncio.ensure_future(self.changes.after(CLAIM, seen))
                    waits.add(heard)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if heard is not None:
                    heard.cancel()
                self._collect({task for task in self.running if task in done})
        except BaseException:
            for task in self.running:
                task.cancel()
            await asyncio.gather(*self.running, return_exceptions=True)
            raise
        return self.outcomes

    async def _start_what_can_be_claimed(self) -> None:
        ledger, exp = self.ledger, self.experiment
        while self.pending and not self.room.locked():
            # A cell is judged only under its claim: one that another process holds is in
            # progress there (even a failed row may be between two attempts), so it waits.
            # The next free one is found and claimed in one round trip (ledger.claim_next).
            by_key = {cell.key: cell for cell in self.pending}
            key = await asyncio.to_thread(ledger.claim_next, exp, list(by_key))
            if key is None:
                return
            cell = by_key[key]
            self.pending.remove(cell)
            row = await asyncio.to_thread(ledger.get, exp, cell.key)
            if row is not None and self.settled(cell, row):
                await asyncio.to_thread(ledger.release, exp, cell.key)
                self.outcomes.append(_ended_elsewhere(cell, row))
                continue
            await self.room.acquire()
            self.running[asyncio.create_task(self._work(cell, row))] = cell

    async def _work(self, cell: Cell, row: JournalRow | None) -> CellOutcome:
        try:
            return await self.run_one(cell, row)
        finally:
            await asyncio.to_thread(self.ledger.release, self.experiment, cell.key)
            self.room.release()

    def _collect(self, done: set[asyncio.Task[CellOutcome]]) -> None:
        for task in done:
            cell = self.running.pop(task)
            try:
                self.outcomes.append(task.result())
            except ClaimLostError:
                self.pending.append(cell)  # its new holder ends it; this process waits to see how


def cell_kind(row: JournalRow | None, output_exists: Callable[[str], bool]) -> dict[str, Any]:
    """How to go on with a cell this process has just claimed, from its journal row: run it anew,
    take up its task by id, or score and log its kept output (here only when the file is on this
    machine; otherwise the task is taken up again and its output downloaded)."""
    if row is None or row.state is JournalState.FAILED:
        return {"resume": False, "finish": False}
    if row.state is JournalState.PAID and row.output_path and output_exists(row.output_path):
        return {"resume": False, "finish": True}
    if row.state in (JournalState.CREATED, JournalState.PAID) and row.task_id:
        return {"resume": True, "finish": False}
    return {"resume": False, "finish": False}
