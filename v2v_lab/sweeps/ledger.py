"""One ledger for many machines: the sweep journal in PostgreSQL (V2V_LAB_LEDGER_URL), with claims on
cells and a shared count of tasks in flight, so processes on different machines running the same
spec share its cells instead of each paying for all of them.

The journal's rule is kept: a task id is committed (synchronous commit, PostgreSQL's default)
before anything else happens. On top of it:

- a **claim** (table claims) says which process works on a cell; it carries a lease renewed every
  few seconds by a heartbeat thread. A process killed with -9 stops renewing, and once its leases
  run out (V2V_LAB_LEASE_S, 30 s by default) another process, or a rerun, claims the cell and goes
  on from the cell's journal state (takes up its task by id; never resends a create whose outcome
  is unknown). Every write that moves a cell on (`sending`, its output, its end) checks the claim in
  the same transaction, and so does the step before its run is logged: a process that lost its
  claim (stalled past its lease) never sends, and never records or logs a cell another has ended.
  Only a task id is recorded whoever holds the cell: it was paid for. Every write by the claim's
  holder takes a step the journal's state machine declares (states.TRANSITIONS), checked in the
  same transaction; a task id recorded by a process that lost its claim is the one exception.
- a **slot** (table slots) is one task in flight on the account, per model; a process takes one
  before it creates and gives it back when the task has ended, under a transaction-level advisory
  lock per (account, model), so all processes together stay within the limits the organization
  endpoint gives. Slots carry leases too: a killed process's slots free themselves.
- an experiment's `{random: N}` **seeds** (table seeds) are drawn once, here: processes started
  together each propose a draw and all take the first one stored, so one spec is one set of cells.
- a process waiting for a cell another holds, or for a slot, is **woken by the ledger**: giving up a
  claim or a slot NOTIFYs channel v2v_ledger in the same transaction (delivered at its commit), and
  each process LISTENs on a connection of its own (`subscribe`). A holder killed with -9 notifies
  nobody: its leases running out is what a waiter's fallback look (a quarter of a lease) is for.

A dropped connection (PostgreSQL restarted) is retried for V2V_LAB_LEDGER_RETRY_S (60 s) on a new
connection; every write is idempotent, so a write whose answer was lost is simply written again.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from .._env import env_seconds, env_text
from .._extras import require
from .._net import mask_credentials
from .._sync import pause, stopping
from ..errors import InputError
from .charges import ChargeBook, charge_table_sql, charges_sql
from .journal import COLUMNS, ClaimLostError, JournalError, JournalRow, lease_seconds
from .states import JournalState, check_transition

__all__ = ["ClaimLostError", "PgLedger", "lease_seconds", "ledger_url"]

T = TypeVar("T")
_SCHEMA_LOCK = 7_246_001  # an advisory lock id: one process creates the tables, the others wait
# A cell in these states has a task out at the provider (or may have: a kill mid-send).
_TASK_OUT = [JournalState.SENDING.value, JournalState.CREATED.value]
CHANNEL = "v2v_ledger"  # what a LISTEN hears: "claim" (a cell's claim was given up), "slot" (a slot was)


def ledger_url() -> str | None:
    return env_text("V2V_LAB_LEDGER_URL")


class PgLedger(ChargeBook):
    """The Journal's interface (JournalStore) on PostgreSQL, plus claims and slots (ClaimStore)."""

    _charge_sql = charges_sql("%s")

    def __init__(self, url: str, *, lease_s: float | None = None, retry_s: float | None = None):
        if not url.startswith(("postgresql://", "postgres://")):
            raise InputError("V2V_LAB_LEDGER_URL", mask_credentials(url),
                             "a PostgreSQL URL: postgresql://user@host:port/database")
        self._psycopg: Any = require("psycopg", "team", "the team ledger (V2V_LAB_LEDGER_URL)")
        self.url = url
        self.lease_s = float(lease_s or lease_seconds())
        self.retry_s = float(retry_s if retry_s is not None else env_seconds("V2V_LAB_LEDGER_RETRY_S"))
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._conn: Any = None
        self._away_since: float | None = None  # monotonic time the ledger's current outage began
        try:  # at the start, a ledger that does not answer is bad input: said at once, nothing sent
            self._conn = self._connect()
            self._call(self._create_schema)
        except (self._psycopg.Error, JournalError) as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError("V2V_LAB_LEDGER_URL", mask_credentials(url), f"a PostgreSQL database that answers ({why})") from None
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="v2v-ledger-heartbeat", daemon=True)
        self._heartbeat.start()
        self._listeners: list[Callable[[str], None]] = []
        self._listening: threading.Thread | None = None

    # -- connection --------------------------------------------------------------------------------
    def _connect(self) -> Any:
        return self._psycopg.connect(self.url, autocommit=False, connect_timeout=5)

    def _call(self, fn: Callable[[Any], T], *, patient: bool = True) -> T:
        """fn(cursor) in one transaction, committed; on a dropped connection, again on a new one,
        until the ledger has been away for retry_s, counted from the first failure of the outage
        (a call made once it has been away that long fails at once); patient=False: one try."""
        delay = 0.2
        while True:
            with self._lock:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect()
                    with self._conn.cursor() as cur:
                        result = fn(cur)
                    self._conn.commit()
                    self._away_since = None
                    return result
                except self._psycopg.OperationalError as exc:
                    self._drop()
                    now = time.monotonic()
                    self._away_since = self._away_since or now
                    if not patient or stopping() or now - self._away_since >= self.retry_s:
                        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        waited = f"for {self.retry_s:g} s" if patient and not stopping() else "(not waited for)"
                        raise JournalError(mask_credentials(
                            f"the ledger at {self.url} did not answer {waited} ({why}); every row written before "
                            "is kept: run the same command to resume")) from None
                except BaseException:
                    if self._conn is not None and not self._conn.closed:
                        self._conn.rollback()
                    raise
            pause(delay)
            delay = min(2.0, delay * 2)

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        finally:
            self._conn = None

    @staticmethod
    def _create_schema(cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cur.execute("""CREATE TABLE IF NOT EXISTS cells (
            experiment TEXT NOT NULL, cell_key TEXT NOT NULL, state TEXT NOT NULL, task_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, failure_code TEXT, retryable BOOLEAN NOT NULL DEFAULT FALSE,
            output_path TEXT, run_id TEXT, detail TEXT NOT NULL DEFAULT '{}', updated DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (experiment, cell_key))""")
        cur.execute("""CREATE TABLE IF NOT EXISTS tasks (
            experiment TEXT NOT NULL, cell_key TEXT NOT NULL, task_id TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (experiment, cell_key, task_id))""")
        cur.execute("""CREATE TABLE IF NOT EXISTS claims (
            experiment TEXT NOT NULL, cell_key TEXT NOT NULL, owner TEXT NOT NULL,
            lease_until TIMESTAMPTZ NOT NULL, PRIMARY KEY (experiment, cell_key))""")
        cur.execute("""CREATE TABLE IF NOT EXISTS seeds (
            experiment TEXT NOT NULL, n INTEGER NOT NULL, seeds TEXT NOT NULL, PRIMARY KEY (experiment, n))""")
        cur.execute("""CREATE TABLE IF NOT EXISTS slots (
            account TEXT NOT NULL, model TEXT NOT NULL, owner TEXT NOT NULL, cell_key TEXT NOT NULL,
            lease_until TIMESTAMPTZ NOT NULL, PRIMARY KEY (account, owner, cell_key))""")
        cur.execute(charge_table_sql("DOUBLE PRECISION"))

    # -- the journal's interface ---------------------------------------------------------------------
    def get(self, experiment: str, key: str) -> JournalRow | None:
        def read(cur: Any) -> Any:
            cur.execute(f"SELECT {COLUMNS} FROM cells WHERE experiment=%s AND cell_key=%s", (experiment, key))
            return cur.fetchone()
        row = self._call(read)
        return JournalRow.from_columns(row) if row else None

    def all(self, experiment: str) -> dict[str, JournalRow]:
        def read(cur: Any) -> Any:
            cur.execute(f"SELECT {COLUMNS} FROM cells WHERE experiment=%s", (experiment,))
            return cur.fetchall()
        return {r[1]: JournalRow.from_columns(r) for r in self._call(read)}

    def set(self, experiment: str, key: str, state: JournalState, **fields: Any) -> None:
        state = JournalState(state)
        detail = fields.pop("detail", None)
        cols = {"state": state.value, **fields}
        if detail is not None:
            cols["detail"] = json.dumps(detail)

        def write(cur: Any) -> None:
            # Fencing: only the claim's holder moves a cell on (sends its create, records its
            # output, ends it), in the same transaction as the check. A task id is the exception:
            # it was paid for, so it is kept whoever holds the cell now.
            if state is not JournalState.CREATED:
                self._fence(cur, experiment, key)
            self._check_step(cur, experiment, key, state)
            now = time.time()
            names = ", ".join(cols)
            marks = ", ".join(["%s"] * len(cols))
            updates = ", ".join(f"{c}=EXCLUDED.{c}" for c in cols)
            cur.execute(f"INSERT INTO cells (experiment, cell_key, {names}, updated) VALUES (%s, %s, {marks}, %s) "
                        f"ON CONFLICT (experiment, cell_key) DO UPDATE SET {updates}, updated=EXCLUDED.updated",
                        (experiment, key, *cols.values(), now))
            if state is JournalState.CREATED and fields.get("task_id"):
                cur.execute("INSERT INTO tasks VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            (experiment, key, fields["task_id"], now))
        self._call(write)

    def _check_step(self, cur: Any, experiment: str, key: str, state: JournalState) -> None:
        """IllegalTransitionError unless the row (locked until the commit) may take this step. A task
        id recorded by a process whose claim passed on (its create was answered after it stalled) is
        written over whatever the cell's new holder made of the row: that task was paid for."""
        cur.execute("SELECT state FROM cells WHERE experiment=%s AND cell_key=%s FOR UPDATE", (experiment, key))
        was = cur.fetchone()
        if state is JournalState.CREATED and not self._holds(cur, experiment, key):
            return
        check_transition(key, JournalState(was[0]) if was else None, state)

    def _holds(self, cur: Any, experiment: str, key: str) -> bool:
        cur.execute("SELECT 1 FROM claims WHERE experiment=%s AND cell_key=%s AND owner=%s",
                    (experiment, key, self.owner))
        return cur.fetchone() is not None

    def hold(self, experiment: str, key: str) -> None:
        """Before a cell's run is logged: the claim is still this process's (and renewed), else
        ClaimLostError: a process stalled past its lease stands down; the cell's new holder ends it."""
        self._call(lambda cur: self._fence(cur, experiment, key))

    def _fence(self, cur: Any, experiment: str, key: str) -> None:
        cur.execute("UPDATE claims SET lease_until = now() + make_interval(secs => %s) "
                    "WHERE experiment=%s AND cell_key=%s AND owner=%s", (self.lease_s, experiment, key, self.owner))
        if cur.rowcount != 1:
            raise ClaimLostError(f"cell {key[:12]}: this process no longer holds it (its claim ran out); it stands "
                                 "down, and what it did not send or log is left to the cell's new holder")

    def task_ids(self, experiment: str) -> dict[str, list[str]]:
        def read(cur: Any) -> Any:
            cur.execute("SELECT cell_key, task_id FROM tasks WHERE experiment=%s ORDER BY created", (experiment,))
            return cur.fetchall()
        out: dict[str, list[str]] = {}
        for key, tid in self._call(read):
            out.setdefault(key, []).append(tid)
        return out

    # -- what a sweep holds (JournalStore: the ledger's side of what differs from the journal) -------
    @contextlib.asynccontextmanager
    async def exclusive(self, experiment: str, store: str) -> AsyncIterator[None]:
        """Nothing to hold: processes share the experiment's cells by claims (each cell's work is
        fenced by its claim), so one more process joins the sweep instead of being refused."""
        yield

    def committed_up_front(self, experiment: str) -> float:
        return 0.0  # each create's reservation holds the cap, across processes (charges.py)

    def claims(self) -> PgLedger:
        return self

    def close(self) -> None:
        self._stop.set()
        self._heartbeat.join(5)
        if self._listening is not None:
            self._listening.join(5)
        try:  # one try: a ledger that is away must not hold an interrupted or failed sweep
            self._call(self._give_up_all, patient=False)
        except JournalError:
            pass  # unreachable: the leases run out by themselves
        with self._lock:
            self._drop()

    def _give_up_all(self, cur: Any) -> None:
        cur.execute("DELETE FROM claims WHERE owner=%s", (self.owner,))
        cur.execute("DELETE FROM slots WHERE owner=%s", (self.owner,))
        _notify(cur, "claim")
        _notify(cur, "slot")

    # -- money (charges.py, ChargeBook): the cap is the experiment's, whichever process reserves -----
    def _transact(self, fn: Callable[[Any], T]) -> T:
        return self._call(fn)

    _read = _transact

    def _lock_budget(self, cur: Any, experiment: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"budget\n{experiment}",))

    # -- seeds ---------------------------------------------------------------------------------------
    def agree_seeds(self, experiment: str, count: int, proposed: list[int]) -> list[int]:
        """The experiment's {random: count} seeds: the first draw stored here is everyone's (the
        insert and the read are one transaction; a draw proposed later is dropped)."""
        def agree(cur: Any) -> list[int]:
            cur.execute("INSERT INTO seeds VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        (experiment, count, json.dumps(proposed)))
            cur.execute("SELECT seeds FROM seeds WHERE experiment=%s AND n=%s", (experiment, count))
            return [int(s) for s in json.loads(cur.fetchone()[0])]
        return self._call(agree)

    # -- claims --------------------------------------------------------------------------------------
    def claim(self, experiment: str, key: str) -> bool:
        """Take the cell if nobody holds it, or its holder's lease has run out. Atomic."""
        return self._call(lambda cur: self._take_claim(cur, experiment, key))

    def claim_next(self, experiment: str, keys: list[str]) -> str | None:
        """The first of `keys` (in their order) that nobody else holds, claimed; None when others
        hold them all. One transaction, whatever the number of keys: the cells others hold are
        passed over in the database instead of being tried one round trip each."""
        def take(cur: Any) -> str | None:
            while True:
                cur.execute("SELECT k FROM unnest(%s::text[]) WITH ORDINALITY AS wanted(k, i) WHERE NOT EXISTS "
                            "(SELECT 1 FROM claims c WHERE c.experiment=%s AND c.cell_key=wanted.k "
                            "AND c.lease_until >= now() AND c.owner <> %s) ORDER BY i LIMIT 8",
                            (list(keys), experiment, self.owner))
                free = [k for (k,) in cur.fetchall()]
                if not free:
                    return None
                # Each is taken by the same atomic upsert as claim(); one another process took
                # between the look and the take is passed over, and the rest looked at again.
                for key in free:
                    if self._take_claim(cur, experiment, key):
                        return key
        return self._call(take)

    def _take_claim(self, cur: Any, experiment: str, key: str) -> bool:
        cur.execute("INSERT INTO claims VALUES (%s, %s, %s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (experiment, cell_key) DO UPDATE SET owner=EXCLUDED.owner, "
                    "lease_until=EXCLUDED.lease_until "
                    "WHERE claims.lease_until < now() OR claims.owner = EXCLUDED.owner RETURNING owner",
                    (experiment, key, self.owner, self.lease_s))
        return cur.fetchone() is not None

    def release(self, experiment: str, key: str) -> None:
        def give_up(cur: Any) -> None:
            cur.execute("DELETE FROM claims WHERE experiment=%s AND cell_key=%s AND owner=%s", (experiment, key, self.owner))
            _notify(cur, "claim")
        self._call(give_up)

    # -- slots ---------------------------------------------------------------------------------------
    def take_slot(self, account: str, model: str, key: str, limit: int) -> bool:
        """One task in flight for `model` on the account, if fewer than `limit` are (all processes)."""
        def take(cur: Any) -> bool:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{account}\n{model}",))
            # A cell's slot follows its claim: whoever takes up a killed holder's cell (its task still in
            # flight at the provider) takes up the lapsed slot that task holds, so no other create fills it.
            cur.execute("UPDATE slots SET owner=%s, lease_until=now() + make_interval(secs => %s) "
                        "WHERE account=%s AND model=%s AND cell_key=%s AND owner<>%s AND lease_until < now() "
                        "AND NOT EXISTS (SELECT 1 FROM slots m WHERE m.account=%s AND m.owner=%s AND m.cell_key=%s) "
                        "RETURNING owner", (self.owner, self.lease_s, account, model, key, self.owner,
                                            account, self.owner, key))
            if cur.fetchone() is not None:
                return True
            # A lapsed slot frees itself, except one whose cell has a task out (sending or created): that
            # task is still in flight, so its slot waits one more lease for the process that takes the cell
            # up. (Nobody taking it up, it frees then: the provider queues a create past its limit.)
            cur.execute("DELETE FROM slots s WHERE account=%s AND model=%s AND lease_until < now() AND ("
                        "lease_until < now() - make_interval(secs => %s) OR NOT EXISTS (SELECT 1 FROM cells c "
                        "WHERE c.cell_key = s.cell_key AND c.state = ANY(%s)))",
                        (account, model, self.lease_s, _TASK_OUT))
            cur.execute("SELECT count(*) FROM slots WHERE account=%s AND model=%s", (account, model))
            if cur.fetchone()[0] >= limit:
                return False
            cur.execute("INSERT INTO slots VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
                        "ON CONFLICT DO NOTHING", (account, model, self.owner, key, self.lease_s))
            return True
        return self._call(take)

    def give_slot(self, account: str, key: str) -> None:
        def give_back(cur: Any) -> None:
            cur.execute("DELETE FROM slots WHERE account=%s AND owner=%s AND cell_key=%s", (account, self.owner, key))
            _notify(cur, "slot")
        self._call(give_back)

    # -- waking the processes that wait ----------------------------------------------------------------
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """listener(what) is called, from a thread of the ledger's, each time any process gives up a
        claim or a slot ("claim", "slot"), and with "" after the ledger was away (what was said
        meanwhile is lost: look again). Listening starts at the first subscriber."""
        with self._lock:
            self._listeners.append(listener)
            if self._listening is None:
                self._listening = threading.Thread(target=self._listen, name="v2v-ledger-listen", daemon=True)
                self._listening.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own (autocommit: a notification arrives between statements)
        until the ledger closes; a dropped connection is opened again."""
        while not self._stop.is_set():
            try:
                with self._psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._tell("")  # anything given up before the LISTEN took hold: look once now
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):  # returns every 0.5 s to see the stop
                            self._tell(note.payload)
            except self._psycopg.Error:
                self._stop.wait(1.0)

    def _tell(self, what: str) -> None:
        for listener in list(self._listeners):
            listener(what)

    def _beat(self) -> None:
        """Renew this process's claims and slots while it lives."""
        while not self._stop.wait(self.lease_s / 4):
            try:
                self._call(lambda cur: (
                    cur.execute("UPDATE claims SET lease_until = now() + make_interval(secs => %s) WHERE owner=%s",
                                (self.lease_s, self.owner)),
                    cur.execute("UPDATE slots SET lease_until = now() + make_interval(secs => %s) WHERE owner=%s",
                                (self.lease_s, self.owner))))
            except JournalError:
                continue  # the database is away: try again at the next beat


def _notify(cur: Any, what: str) -> None:
    """Say on the ledger's channel that a claim or a slot was given up (sent when the transaction commits)."""
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))
