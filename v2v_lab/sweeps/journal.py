"""The durable journal: one row per cell, written (and synced) before and after every paid step.

States (JournalState, in states.py, with the steps a row may take, TRANSITIONS): sending (a create
is about to go out) -> created (task id known) -> paid (the task succeeded; its output on disk once
output_path is set) -> done (logged to MLflow). failed and unknown are ends of their own. After a
kill at any moment, the row says what is safe: a 'sending' row means the create may or may not have
arrived; a 'paid' row without its output is taken up by id (its output fetched again), never paid
for again. `set` refuses a step TRANSITIONS does not declare (IllegalTransitionError), checked in
the same transaction as the write.

What differs between this local journal and the team's ledger (ledger.py) is behind JournalStore:
how a sweep holds its experiment (`exclusive`), what it holds against the cap up front
(`committed_up_front`), and whether cells are shared with other processes by claims (`claims`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._env import env_seconds, env_text
from .._files import can_write_in
from ..errors import InputError, V2VError
from .charges import Charge, ChargeBook, charge_table_sql, charges_sql
from .states import JournalState, check_transition

if TYPE_CHECKING:
    from ..tracking.lease import StoreLease

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

__all__ = [
    "COLUMNS", "OUTPUT_GONE", "ClaimLostError", "ClaimStore", "ExperimentLock", "Journal", "JournalError",
    "JournalRow", "JournalStore", "check_writable_folder", "experiment_digest", "lease_seconds", "state_dir",
]

# A paid row's detail key: its task can no longer be read, so its paid output cannot be
# fetched (the reason); such a cell is reported missing, and only --force pays for it again.
OUTPUT_GONE = "output_gone"


def state_dir() -> Path:
    """V2V_LAB_HOME, else ./.v2v-lab (beside MLflow's default ./mlflow.db)."""
    return Path(env_text("V2V_LAB_HOME") or ".v2v-lab")


def experiment_digest(experiment: str) -> str:
    """The short, file-name-safe name of an experiment for folders and lock files."""
    return hashlib.sha256(experiment.encode()).hexdigest()[:16]


def check_writable_folder(folder: Path, field: str) -> None:
    """The folder exists (made if needed) and can be written; else InputError naming the setting."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(field, str(folder), f"a folder that can be created ({exc.strerror})") from None
    if not can_write_in(folder):
        raise InputError(field, str(folder), "a folder that can be written")


def lease_seconds() -> float:
    """V2V_LAB_LEASE_S (30 by default): how long a claim on the ledger, or an experiment's lease on a
    tracking server, outlives a process that stopped renewing it."""
    return env_seconds("V2V_LAB_LEASE_S")


class JournalError(V2VError):
    """The journal could not be written (a full disk, a vanished folder): the sweep stops there."""


class ClaimLostError(JournalError):
    """This process no longer holds the cell (its lease ran out while it stalled), or the sweep no
    longer holds its store's lease: it sends, records and logs nothing more for it."""

    code = "CLAIM_LOST"


@dataclass(frozen=True)
class JournalRow:
    experiment: str
    cell_key: str
    state: JournalState
    task_id: str | None
    attempts: int
    failure_code: str | None
    retryable: bool
    output_path: str | None
    run_id: str | None
    detail: dict[str, Any]

    @classmethod
    def from_columns(cls, r: tuple[Any, ...]) -> JournalRow:
        """A row as both stores select it (COLUMNS, in that order)."""
        return cls(r[0], r[1], JournalState(r[2]), r[3], r[4], r[5], bool(r[6]), r[7], r[8], json.loads(r[9] or "{}"))


COLUMNS = "experiment, cell_key, state, task_id, attempts, failure_code, retryable, output_path, run_id, detail"


class JournalStore(Protocol):
    """What a sweep needs of a journal: the local SQLite Journal, or the shared PgLedger."""

    def get(self, experiment: str, key: str) -> JournalRow | None: ...
    def all(self, experiment: str) -> dict[str, JournalRow]: ...
    def set(self, experiment: str, key: str, state: JournalState, **fields: Any) -> None: ...
    def task_ids(self, experiment: str) -> dict[str, list[str]]: ...
    def hold(self, experiment: str, key: str) -> None:
        """Before a cell's run is logged: ClaimLostError if this process may no longer act on the
        cell (its claim or its lease on the store ran out). A create is fenced as it is marked sending."""
    # What each create may cost and did cost (charges.py): the budget's reservations.
    def reserve(self, experiment: str, key: str, model: str, estimate: float, cap: float | None) -> str | None: ...
    def charge_created(self, reservation: str, task_id: str, estimated_cost: float | None,
                       price_ratio: float | None = None) -> None: ...
    def price_told(self, experiment: str, model: str, since: float) -> float | None: ...
    def reservations_since(self, experiment: str, model: str, since: float) -> int: ...
    def release_charge(self, reservation: str) -> None: ...
    def charge_ended(self, experiment: str, key: str, model: str, task_id: str, cost: float | None,
                     estimate: float) -> None: ...
    def committed(self, experiment: str) -> float: ...
    def charges(self, experiment: str) -> list[Charge]: ...
    def charge_of(self, experiment: str, task_id: str) -> Charge | None: ...
    def close(self) -> None: ...
    # What differs between the local journal and the team's ledger:
    def exclusive(self, experiment: str, store: str) -> AbstractAsyncContextManager[None]:
        """Held around a sweep: what keeps two processes from paying for the same cells. The
        journal: one sweep of the experiment at a time (flocks, a lease on a tracking server); the
        ledger: nothing to hold, its claims share the cells out."""
    def committed_up_front(self, experiment: str) -> float:
        """What of the experiment's commitment (committed()) a sweep about to start must fit under
        the cap beside its own estimate: all of it on the journal (this sweep is the only one); none
        on the ledger (other processes' tasks in flight are theirs: each create's reservation holds
        the cap across processes, and refusing up front would refuse a process joining a sweep)."""
    def claims(self) -> ClaimStore | None:
        """The store's claims on cells, through which processes share an experiment's cells (the
        ledger); None when a sweep holds the whole experiment (the journal: its cells are decided
        up front, from the journal and the store)."""


class ClaimStore(JournalStore, Protocol):
    """A journal whose cells many processes share: a cell is worked on only under its claim, and a
    task is created only in one of the account's slots, counted across processes (ledger.py)."""

    lease_s: float  # how long a claim or a slot outlives a holder that stopped renewing it

    def claim(self, experiment: str, key: str) -> bool: ...
    def claim_next(self, experiment: str, keys: list[str]) -> str | None: ...
    def release(self, experiment: str, key: str) -> None: ...
    def take_slot(self, account: str, model: str, key: str, limit: int) -> bool: ...
    def give_slot(self, account: str, key: str) -> None: ...
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """listener(what) is called (from another thread) whenever any process gives up a claim
        ("claim") or a slot ("slot"), and with "" when what was said meanwhile may have been lost."""


_IN_MEMORY = ":memory:"


class Journal(ChargeBook):
    _charge_sql = charges_sql("?")

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path else state_dir() / "journal.sqlite"
        if str(path) != _IN_MEMORY:
            check_writable_folder(self.path.parent, "V2V_LAB_HOME" if path is None else "journal")
        # Set by the runner when the sweep holds a lease on a tracking server: it raises
        # ClaimLostError once the lease is lost, and is asked before each create and each log.
        self.guard: Callable[[], None] | None = None
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._open()
        except sqlite3.DatabaseError as exc:
            raise InputError("journal", str(self.path), f"a v2v-lab journal ({exc}): move the file aside; "
                             "cells already in the MLflow store are still taken as done") from None

    @classmethod
    def for_reading(cls, path: str | os.PathLike[str] | None = None) -> Journal:
        """The journal as it is, or, where there is none yet, an empty one in memory: a dry run
        reads what was paid and writes nothing, not even an empty state folder."""
        existing = Path(path) if path else state_dir() / "journal.sqlite"
        return cls(existing if existing.is_file() else _IN_MEMORY)

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a row written is a row that survives kill -9
        self._db.execute("""CREATE TABLE IF NOT EXISTS cells (
            experiment TEXT NOT NULL, cell_key TEXT NOT NULL, state TEXT NOT NULL, task_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, failure_code TEXT, retryable INTEGER NOT NULL DEFAULT 0,
            output_path TEXT, run_id TEXT, detail TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL,
            PRIMARY KEY (experiment, cell_key))""")
        self._db.execute("""CREATE TABLE IF NOT EXISTS tasks (
            experiment TEXT NOT NULL, cell_key TEXT NOT NULL, task_id TEXT NOT NULL, created REAL NOT NULL)""")
        self._db.execute(charge_table_sql())

    def get(self, experiment: str, key: str) -> JournalRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM cells WHERE experiment=? AND cell_key=?",
                                   (experiment, key)).fetchone()
        return None if row is None else JournalRow.from_columns(row)

    def all(self, experiment: str) -> dict[str, JournalRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM cells WHERE experiment=?", (experiment,)).fetchall()
        return {r[1]: JournalRow.from_columns(r) for r in rows}

    def hold(self, experiment: str, key: str) -> None:
        if self.guard is not None:
            self.guard()

    def set(self, experiment: str, key: str, state: JournalState, **fields: Any) -> None:
        state = JournalState(state)
        if state is JournalState.SENDING:  # fencing: a create goes out only while the sweep holds its store
            self.hold(experiment, key)
        detail = fields.pop("detail", None)
        cols = {"state": state.value, **fields}

        def write(cur: sqlite3.Cursor) -> None:
            was = cur.execute("SELECT state FROM cells WHERE experiment=? AND cell_key=?", (experiment, key)).fetchone()
            check_transition(key, JournalState(was[0]) if was else None, state)
            cur.execute("INSERT OR IGNORE INTO cells (experiment, cell_key, state, updated) VALUES (?,?,?,?)",
                        (experiment, key, state.value, time.time()))
            sets = ", ".join(f"{c}=?" for c in cols) + ", updated=?"
            values = [int(v) if isinstance(v, bool) else v for v in cols.values()]
            cur.execute(f"UPDATE cells SET {sets} WHERE experiment=? AND cell_key=?",
                        (*values, time.time(), experiment, key))
            if detail is not None:
                cur.execute("UPDATE cells SET detail=? WHERE experiment=? AND cell_key=?",
                            (json.dumps(detail), experiment, key))
            if state is JournalState.CREATED and fields.get("task_id"):
                cur.execute("INSERT INTO tasks VALUES (?,?,?,?)", (experiment, key, fields["task_id"], time.time()))
        self._write(write)

    def task_ids(self, experiment: str) -> dict[str, list[str]]:
        """Every task id ever created per cell (the audit trail for 'no cell paid twice')."""
        with self._lock:
            rows = self._db.execute("SELECT cell_key, task_id FROM tasks WHERE experiment=? ORDER BY created",
                                    (experiment,)).fetchall()
        out: dict[str, list[str]] = {}
        for key, tid in rows:
            out.setdefault(key, []).append(tid)
        return out

    def _write(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        """fn(cursor) in one write transaction (BEGIN IMMEDIATE: one writer at a time, across processes)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._db.cursor())
                self._db.execute("COMMIT")
                return result
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise JournalError(f"journal {self.path}: cannot write ({exc}); every row written before "
                                       "this one is kept: free the space and run the same command to resume"
                                       ) from None
                raise

    # -- money (charges.py: ChargeBook's methods, through these two) ---------------------------------
    _transact = _write

    def _read(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        with self._lock:
            return fn(self._db.cursor())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- what a sweep holds (JournalStore: the journal's side of what differs from the ledger) -------
    @contextlib.asynccontextmanager
    async def exclusive(self, experiment: str, store: str) -> AsyncIterator[None]:
        """One sweep of the experiment at a time, on this state folder and on the store: flocks
        beside the journal and beside a local store; on a server (any store not a local file), a
        lease held in the store itself, and every create and log fenced by it (self.guard)."""
        from ..tracking.lease import StoreLease  # here: reading a journal needs no MLflow
        from ..tracking.store import lock_dir

        store_locks = lock_dir(store)
        lock = ExperimentLock(experiment, [self.path.parent / "locks"] + ([store_locks] if store_locks else []))
        lock.acquire()
        lease = None if store_locks else StoreLease(store, experiment, lease_seconds())
        try:
            if lease is not None:
                await asyncio.to_thread(lease.acquire)
                self.guard = _lease_guard(lease)
            yield
        finally:
            if lease is not None:
                await asyncio.to_thread(lease.release)
            lock.release()

    def committed_up_front(self, experiment: str) -> float:
        return self.committed(experiment)

    def claims(self) -> None:
        return None


def _lease_guard(lease: StoreLease) -> Callable[[], None]:
    """Journal.guard for a sweep holding a StoreLease: ClaimLostError once the lease is gone."""
    def guard() -> None:
        if not lease.held():
            raise ClaimLostError(f"experiment {lease.experiment}: this sweep's lease on the tracking store ran out "
                                 "(stopped, or cut off from the store, past V2V_LAB_LEASE_S) and another sweep may "
                                 "hold it now: nothing more is sent or logged; run the same command to go on")
    return guard


class ExperimentLock:
    """One running sweep per experiment, per state folder and per local store.

    Two processes running the same spec would both see the same cells as new and both pay for
    them. The lock is an flock on a file in each folder given: the state folder (the journal's) and,
    for a local MLflow store, a folder beside the store, so two processes with different state
    folders (two clones, V2V_LAB_HOME set differently) writing to one store still meet. The kernel
    drops an flock when the process ends, kill -9 included, so a crashed sweep never leaves a stale
    lock behind. (Across machines, on a shared server, the ledger's database locks take this role.)
    """

    def __init__(self, experiment: str, folders: list[Path]):
        digest = experiment_digest(experiment)
        self.paths = [Path(f) / f"{digest}.lock" for f in folders]
        self.experiment = experiment
        self._held: list[Any] = []

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows: no flock; the journal still guards resumes
            return
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime, closed in release()
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                self.release()
                raise InputError("experiment", self.experiment, "an experiment no other sweep is running right "
                                 f"now on this store or state folder (held: {path.parent}; wait for it, or "
                                 "stop it)") from None
            self._held.append(fh)

    def release(self) -> None:
        for fh in self._held:
            fh.close()  # closing the descriptor releases the flock
        self._held = []
