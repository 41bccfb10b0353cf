"""One sweep of an experiment at a time on a tracking store that is not a local file (an `mlflow
server`, a database): a lease held in the store itself, as experiment tags, so it works for any
MLflow store and for processes on any machine. (A local store has flocks beside it: store.lock_dir.)

MLflow has no compare-and-set, so the lease is built as a mutex is built from plain registers:
each process writes a tag of its own (`v2v.lease.<id>`, which no other process ever writes), then
reads every tag of the experiment. A process that finds no other live lease once its own is
written holds the experiment. Two processes can never both find none: of their two reads, the
later one came after both writes. Two that find each other while both are still taking it settle
it by a fixed rule, the same in both: the larger id withdraws and is refused at once; the smaller
waits briefly for it to go, then holds. A lease marked held refuses everyone. Nothing in this
depends on timing except liveness (at worst both are refused, and say so).

A lease carries its expiry (wall clock, V2V_LAB_LEASE_S ahead) and is renewed every quarter of
that while the sweep runs, so one left by a process killed with -9 stops counting once it runs
out. The holder keeps its own, stricter, account on the monotonic clock: a process that did not
renew in time (stopped, cut off from the store) may have been overtaken, so it has lost the
lease for good, and `held()` says so before each create and each log (the runner fences them).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import InputError
from .schema import LEASE_TAG_PREFIX
from .store import client as make_client
from .writer import ensure_experiment

__all__ = ["StoreLease"]

SETTLE_S = 5.0  # how long the smaller id of two taking it at once waits for the other to withdraw
_POLL_S = 0.2
_TRUST = 0.8  # the holder counts its lease as lasting this share of its length (room for clock skew)


@dataclass(frozen=True)
class _Seen:
    """Another process's lease as its tag says."""

    token: str
    holder: str
    state: str  # "taking" or "held"
    until: float  # wall clock

    def words(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.until))
        doing = "holds it" if self.state == "held" else "is starting on it"
        return f"another sweep {doing}: {self.holder}, its lease until {when}"


class StoreLease:
    """The experiment's sweep lease on the store at `uri`: acquire() (InputError if another
    sweep holds it), held() while it runs, release() at the end."""

    def __init__(self, uri: str, experiment: str, lease_s: float):
        self.uri, self.experiment, self.lease_s = uri, experiment, lease_s
        self.token = uuid.uuid4().hex
        self.key = LEASE_TAG_PREFIX + self.token
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._client: Any = None
        self._experiment_id = ""
        self._valid_until: float | None = None  # monotonic; None before the first write landed
        self._lost = False
        self._written = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- taking it -----------------------------------------------------------------------------------
    def acquire(self) -> None:
        self._client = make_client(self.uri)
        self._experiment_id = ensure_experiment(self._client, self.uri, self.experiment)
        try:
            self._take()
        except BaseException:
            self._withdraw()
            raise
        self._renewer = threading.Thread(target=self._renew, name="v2v-store-lease", daemon=True)
        self._renewer.start()

    def _take(self) -> None:
        self._write("taking")
        deadline = time.monotonic() + SETTLE_S
        while others := self._others():
            held = [o for o in others if o.state == "held"]
            if held or min(o.token for o in others) < self.token or time.monotonic() > deadline:
                self._refuse((held or others)[0])
            time.sleep(_POLL_S)  # only larger ids, still taking: they withdraw on seeing this one
        self._write("held")
        if not self.held():  # stalled while taking it: another may have seen it expired meanwhile
            self._refuse(None)

    def _refuse(self, other: _Seen | None) -> NoReturn:
        self._withdraw()
        why = other.words() if other else "this process stalled while taking its lease"
        raise InputError("experiment", self.experiment, f"an experiment no other sweep is running right now on this "
                         f"tracking store ({why}; wait for it, or stop it); concurrent sweeps of one experiment "
                         "need a ledger: V2V_LAB_LEDGER_URL")

    def _others(self) -> list[_Seen]:
        """Every other process's live lease on the experiment (expired ones are cleared away)."""
        tags = self._client.get_experiment(self._experiment_id).tags
        now = time.time()
        live = []
        for key, text in tags.items():
            if not key.startswith(LEASE_TAG_PREFIX) or key == self.key:
                continue
            seen = _parse(key[len(LEASE_TAG_PREFIX):], text)
            if seen is not None and seen.until > now:
                live.append(seen)
            else:  # a killed process's: it counts for nothing, and is tidied up
                _quietly(self._client.delete_experiment_tag, self._experiment_id, key)
        return live

    # -- keeping it ----------------------------------------------------------------------------------
    def _write(self, state: str) -> None:
        """This process's tag, with a new expiry. The lease stays this process's only if every
        write landed before the one before it ran out (on this process's own clock)."""
        started = time.monotonic()
        value = json.dumps({"holder": self.holder, "state": state, "until": time.time() + self.lease_s})
        self._client.set_experiment_tag(self._experiment_id, self.key, value)
        self._written = True
        if self._valid_until is not None and time.monotonic() > self._valid_until:
            self._lost = True
        self._valid_until = started + self.lease_s * _TRUST

    def held(self) -> bool:
        """Whether this process still holds the lease: renewed in time, never lapsed."""
        return (not self._lost and self._valid_until is not None and time.monotonic() <= self._valid_until)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            if not self.held():
                self._lost = True  # lapsed once: another may hold it now; never taken back silently
                return
            try:
                self._write("held")
            except Exception:  # noqa: BLE001 - the store is away: try at the next beat, lapse if it stays away
                continue

    # -- letting go ----------------------------------------------------------------------------------
    def _withdraw(self) -> None:
        if self._written:
            _quietly(self._client.delete_experiment_tag, self._experiment_id, self.key)
            self._written = False

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(10)
        self._lost = True
        self._withdraw()  # unreachable store: the lease runs out by itself


def _parse(token: str, text: str) -> _Seen | None:
    try:
        data = json.loads(text)
        return _Seen(token, str(data["holder"]), str(data["state"]), float(data["until"]))
    except (ValueError, KeyError, TypeError):
        return None  # not a lease this version wrote: nothing to honour


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - tidying only: a tag left behind runs out by itself
        pass
