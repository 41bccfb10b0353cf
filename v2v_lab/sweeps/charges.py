"""What every task of an experiment may cost and did cost, kept in the journal (the local SQLite
file or the team's PostgreSQL ledger) beside its cells: one row per create, written before the
create leaves.

A row holds the estimate made before the create (`estimate`), the server's `estimatedCost` from the
create's answer, and the server's `cost` once the task ended (FAILED and CANCELLED too: 0 means
refunded); `price_ratio`, the answer's estimatedCost over the catalog's estimate, tells the other
processes of a shared sweep the endpoint's price. What a row commits against the experiment's budget is the best figure known: the cost,
else the estimatedCost (the most the task may charge), else the estimate. A create whose answer was
never recorded (a kill -9 right after it) keeps its estimate counted: the money may be spent.

The same SQL serves both stores (their placeholders differ); `reserve` runs under the store's
write lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock per experiment), so processes
sharing a ledger never reserve past the cap between them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["COMMITTED_SQL", "Charge", "ChargeBook", "charge_table_sql", "charges_sql", "end_in", "reserve_in"]

T = TypeVar("T")

# A row's commitment: what the server said it cost, else the most it said it may cost, else our estimate.
COMMITTED_SQL = "COALESCE(cost, estimated_cost, estimate)"


def charge_table_sql(real: str = "REAL") -> str:
    return f"""CREATE TABLE IF NOT EXISTS charges (
        reservation TEXT PRIMARY KEY, experiment TEXT NOT NULL, cell_key TEXT NOT NULL, model TEXT NOT NULL,
        estimate {real} NOT NULL, task_id TEXT, estimated_cost {real}, cost {real},
        cost_source TEXT, created {real} NOT NULL, ended {real}, price_ratio {real})"""


@dataclass(frozen=True)
class Charge:
    """One create's money. cost_source: "server" (the task's cost), "estimate" (a provider that
    sends none: the estimatedCost, else our estimate, stands in), None while the task runs."""

    reservation: str
    experiment: str
    cell_key: str
    model: str
    estimate: float
    task_id: str | None
    estimated_cost: float | None
    cost: float | None
    cost_source: str | None

    @property
    def committed(self) -> float:
        for value in (self.cost, self.estimated_cost):
            if value is not None:
                return value
        return self.estimate


CHARGE_COLUMNS = "reservation, experiment, cell_key, model, estimate, task_id, estimated_cost, cost, cost_source"


class charges_sql:  # noqa: N801 - a namespace of statements, one per store's placeholder
    """The statements, with `?` (SQLite) or `%s` (PostgreSQL) as placeholders."""

    def __init__(self, mark: str):
        m = mark
        self.committed = f"SELECT COALESCE(SUM({COMMITTED_SQL}), 0) FROM charges WHERE experiment={m}"
        self.insert = (f"INSERT INTO charges (reservation, experiment, cell_key, model, estimate, created) "
                       f"VALUES ({m}, {m}, {m}, {m}, {m}, {m})")
        self.created = f"UPDATE charges SET task_id={m}, estimated_cost={m}, price_ratio={m} WHERE reservation={m}"
        # The endpoint's price as a recent create told it (estimatedCost / the catalog's estimate).
        self.price_told = (f"SELECT price_ratio FROM charges WHERE experiment={m} AND model={m} AND "
                           f"price_ratio IS NOT NULL AND created >= {m} ORDER BY created DESC LIMIT 1")
        self.release = f"DELETE FROM charges WHERE reservation={m} AND task_id IS NULL"
        self.ended = (f"UPDATE charges SET cost={m}, cost_source={m}, ended={m} "
                      f"WHERE experiment={m} AND task_id={m}")
        self.adopt = (f"INSERT INTO charges (reservation, experiment, cell_key, model, estimate, task_id, cost, "
                      f"cost_source, created, ended) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})")
        self.rows = f"SELECT {CHARGE_COLUMNS} FROM charges WHERE experiment={m} ORDER BY created"
        self.of_task = f"SELECT {CHARGE_COLUMNS} FROM charges WHERE experiment={m} AND task_id={m}"
        self.since = f"SELECT count(*) FROM charges WHERE experiment={m} AND model={m} AND created >= {m}"
        # What stands in for the cost of a task whose provider sent none.
        self.standing = (f"SELECT COALESCE(estimated_cost, estimate) FROM charges WHERE experiment={m} "
                         f"AND task_id={m}")


def reserve_in(cur: Any, sql: charges_sql, experiment: str, key: str, model: str, estimate: float,
               cap: float | None) -> str | None:
    """Inside the store's write lock: a new row for a create about to leave, if the experiment's
    commitments and this estimate stay within `cap` (None: no cap); else None, nothing written."""
    if cap is not None:
        cur.execute(sql.committed, (experiment,))
        committed = float(cur.fetchone()[0] or 0.0)
        if committed + estimate > cap * (1 + 1e-9):
            return None
    reservation = uuid.uuid4().hex
    cur.execute(sql.insert, (reservation, experiment, key, model, float(estimate), time.time()))
    return reservation


def end_in(cur: Any, sql: charges_sql, experiment: str, key: str, model: str, task_id: str, cost: float | None,
           estimate: float) -> None:
    """A task's end: the server's cost (source "server"), or, when it sent none, the figure that
    stands in for it (source "estimate"). A task with no row (created by a version of v2v-lab that
    kept none, or taken up by id) gets one now."""
    source = "server" if cost is not None else "estimate"
    now = time.time()
    if cost is None:
        cur.execute(sql.standing, (experiment, task_id))
        found = cur.fetchone()
        cost = float(found[0]) if found else estimate
    cur.execute(sql.ended, (float(cost), source, now, experiment, task_id))
    if cur.rowcount == 0:
        cur.execute(sql.adopt, (task_id, experiment, key, model, float(estimate), task_id, float(cost), source, now,
                                now))


class ChargeBook:
    """The journal's money methods (JournalStore's reserve ... charges), written once for both
    stores. A store gives its statements (`_charge_sql`), a write transaction (`_transact`), a read
    (`_read`), and, where its write transaction is not already one writer at a time, a lock on the
    experiment's budget taken inside it (`_lock_budget`: PostgreSQL's advisory lock)."""

    _charge_sql: charges_sql

    def _transact(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _lock_budget(self, cur: Any, experiment: str) -> None:
        """SQLite's BEGIN IMMEDIATE already admits one writer at a time."""

    def reserve(self, experiment: str, key: str, model: str, estimate: float, cap: float | None) -> str | None:
        def take(cur: Any) -> str | None:
            self._lock_budget(cur, experiment)
            return reserve_in(cur, self._charge_sql, experiment, key, model, estimate, cap)
        return self._transact(take)

    def charge_created(self, reservation: str, task_id: str, estimated_cost: float | None,
                       price_ratio: float | None = None) -> None:
        self._transact(lambda cur: cur.execute(self._charge_sql.created,
                                               (task_id, estimated_cost, price_ratio, reservation)))

    def release_charge(self, reservation: str) -> None:
        self._transact(lambda cur: cur.execute(self._charge_sql.release, (reservation,)))

    def charge_ended(self, experiment: str, key: str, model: str, task_id: str, cost: float | None,
                     estimate: float) -> None:
        self._transact(lambda cur: end_in(cur, self._charge_sql, experiment, key, model, task_id, cost, estimate))

    def price_told(self, experiment: str, model: str, since: float) -> float | None:
        row = self._one(self._charge_sql.price_told, (experiment, model, since))
        return float(row[0]) if row else None

    def reservations_since(self, experiment: str, model: str, since: float) -> int:
        return int(self._one(self._charge_sql.since, (experiment, model, since))[0])

    def committed(self, experiment: str) -> float:
        """What the experiment's tasks cost or may still cost (COMMITTED_SQL, summed)."""
        return float(self._one(self._charge_sql.committed, (experiment,))[0] or 0.0)

    def charge_of(self, experiment: str, task_id: str) -> Charge | None:
        row = self._one(self._charge_sql.of_task, (experiment, task_id))
        return Charge(*row) if row else None

    def charges(self, experiment: str) -> list[Charge]:
        def read(cur: Any) -> list[Any]:
            cur.execute(self._charge_sql.rows, (experiment,))
            return cur.fetchall()
        return [Charge(*r) for r in self._read(read)]

    def _one(self, statement: str, args: tuple[Any, ...]) -> Any:
        def read(cur: Any) -> Any:
            cur.execute(statement, args)
            return cur.fetchone()
        return self._read(read)
