"""The journal as a state machine (states.TRANSITIONS): every declared step is taken, every other is
refused naming both states, on the local SQLite journal and on the team's PostgreSQL ledger; and a
journal written with the words of earlier versions ("succeeded" for a paid task) resumes paying
for nothing."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from v2v_lab.emulator import Emulator
from v2v_lab.sweeps import Journal, JournalState, run_sweep
from v2v_lab.sweeps.states import TRANSITIONS, IllegalTransitionError

from . import _helpers
from .conftest import DEMO

SPEC = {"experiment": "words", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
        "prompts": ["neon city", "watercolor"], "seeds": [1, 2], "ratios": ["1280:720"],
        "emulator": {"render_scale": 0.25}, "scoring": {"frames": 4, "size": 64}}

# Sorted: TRANSITIONS holds sets, whose order differs between processes (pytest-xdist collects in each)
LEGAL = [(was, to) for was, nexts in TRANSITIONS.items() for to in sorted(nexts)]
ILLEGAL = [(was, to) for was in TRANSITIONS for to in JournalState if to not in TRANSITIONS[was]]


def _name(pair: tuple[JournalState | None, JournalState]) -> str:
    was, to = pair
    return f"{was or 'none'}->{to}"


def _put_row(path: Path, key: str, word: str | None, **columns: object) -> None:
    """A row as a journal on disk holds it, written straight into the file (any version's words)."""
    if word is None:
        return
    names = ["experiment", "cell_key", "state", "updated", *columns]
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT OR REPLACE INTO cells ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                   ("e", key, word, time.time(), *columns.values()))


def _stored_word(path: Path, key: str) -> str | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT state FROM cells WHERE experiment='e' AND cell_key=?", (key,)).fetchone()
    return row[0] if row else None


def test_the_table_names_every_state_and_paid_is_never_failed():
    assert set(TRANSITIONS) == {None, *JournalState}
    assert all(state in TRANSITIONS[state] for state in JournalState)  # a row may be written again
    # The money rule as a step: a paid task never becomes failed (its output is fetched by id).
    assert JournalState.FAILED not in TRANSITIONS[JournalState.PAID]
    assert {was for was, nexts in TRANSITIONS.items() if JournalState.CREATED in nexts} == {
        JournalState.SENDING, JournalState.CREATED}


@pytest.mark.parametrize("pair", LEGAL, ids=_name)
def test_every_declared_step_is_taken_by_the_journal(tmp_path, pair):
    was, to = pair
    journal = Journal(tmp_path / "journal.sqlite")
    _put_row(journal.path, "k", was and was.value)
    journal.set("e", "k", to, task_id="task-1")
    assert journal.get("e", "k").state is to and _stored_word(journal.path, "k") == to.value
    journal.close()


@pytest.mark.parametrize("pair", ILLEGAL, ids=_name)
def test_every_other_step_is_refused_naming_both_states(tmp_path, pair):
    was, to = pair
    journal = Journal(tmp_path / "journal.sqlite")
    _put_row(journal.path, "k", was and was.value, task_id="task-0")
    with pytest.raises(IllegalTransitionError) as refused:
        journal.set("e", "k", to, task_id="task-1")
    assert f"from {was.value if was else 'no row'} to {to.value}" in str(refused.value)
    assert (refused.value.was, refused.value.to) == (was, to)
    # Refused in the write's own transaction: the row and the task audit trail are as they were.
    assert _stored_word(journal.path, "k") == (was.value if was else None)
    assert journal.task_ids("e") == {}
    journal.close()


def test_a_row_of_earlier_versions_reads_as_paid_and_is_written_with_the_new_word(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    _put_row(journal.path, "k", "succeeded", task_id="task-1")
    assert journal.get("e", "k").state is JournalState.PAID
    with pytest.raises(IllegalTransitionError, match="from paid to failed"):
        journal.set("e", "k", JournalState.FAILED)
    journal.set("e", "k", JournalState.PAID, output_path="/kept/output.mp4")
    assert _stored_word(journal.path, "k") == "paid"
    journal.close()


def test_a_journal_written_with_the_old_words_resumes_without_creating_anything(tmp_path, monkeypatch):
    """A study run by an earlier version: its journal says "succeeded" for tasks paid but not
    logged (one with its output kept, one whose download never finished), "created" and "done".
    After the upgrade, a sweep into a store that has none of its runs logs every cell and pays for
    nothing: the kept outputs are scored, the others fetched again by their task ids."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'first.db'}")
    monkeypatch.setenv("V2V_LAB_HOME", str(tmp_path / "state"))
    spec = _helpers.write_spec(tmp_path, SPEC)
    with Emulator(render_scale=0.25, queue_s=0.02) as emu:
        assert run_sweep(spec, progress=False, base_url=emu.base_url).counts == {"succeeded": 4}
        paid = len(emu.tasks())
        path = tmp_path / "state" / "journal.sqlite"
        with sqlite3.connect(path) as db:
            keys = [k for (k,) in db.execute("SELECT cell_key FROM cells WHERE experiment='words' ORDER BY cell_key")]
            # What the earlier version left: kept output, a download cut short, a task still running, logged.
            db.execute("UPDATE cells SET state='succeeded' WHERE cell_key=?", (keys[0],))
            db.execute("UPDATE cells SET state='succeeded', output_path=NULL WHERE cell_key=?", (keys[1],))
            db.execute("UPDATE cells SET state='created', output_path=NULL WHERE cell_key=?", (keys[2],))
        for output in (tmp_path / "state" / "outputs").rglob("output.mp4"):  # those two never kept theirs
            if output.parent.name in keys[1:3]:
                output.unlink()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / f'second-{uuid.uuid4().hex[:6]}.db'}")
        result = run_sweep(spec, progress=False, base_url=emu.base_url)
        assert len(emu.tasks()) == paid, "a task paid for under the old words was paid for again"
    assert result.counts == {"succeeded": 4}
    with sqlite3.connect(path) as db:
        assert {w for (w,) in db.execute("SELECT state FROM cells WHERE experiment='words'")} == {"done"}


@pytest.mark.team
def test_the_ledger_takes_the_same_steps_and_refuses_the_others(team):
    """The same table on the team's PostgreSQL ledger, for the claim's holder; and its one exception:
    a task id recorded by a process whose claim passed on is kept over whatever the row says."""
    import psycopg

    from v2v_lab.sweeps.ledger import PgLedger

    url, exp = team["V2V_LAB_LEDGER_URL"], f"steps_{uuid.uuid4().hex[:8]}"
    ledger = PgLedger(url)

    def put(key: str, word: str | None) -> None:
        if word is not None:
            with psycopg.connect(url) as db:
                db.execute("INSERT INTO cells (experiment, cell_key, state, updated) VALUES (%s, %s, %s, %s)",
                           (exp, key, word, time.time()))

    try:
        for i, (was, to) in enumerate(LEGAL):
            put(f"legal{i}", was and was.value)
            assert ledger.claim(exp, f"legal{i}")
            ledger.set(exp, f"legal{i}", to, task_id="task-1")
            assert ledger.get(exp, f"legal{i}").state is to, (was, to)
        for i, (was, to) in enumerate(ILLEGAL):
            put(f"illegal{i}", was and was.value)
            assert ledger.claim(exp, f"illegal{i}")
            with pytest.raises(IllegalTransitionError, match=f"from {was.value if was else 'no row'} to {to.value}"):
                ledger.set(exp, f"illegal{i}", to, task_id="task-2")
            row = ledger.get(exp, f"illegal{i}")
            assert (row.state if row else None) is was
        assert "task-2" not in {t for ids in ledger.task_ids(exp).values() for t in ids}
        # The words of earlier versions: a "succeeded" row is paid, and is written back as "paid".
        put("old", "succeeded")
        assert ledger.claim(exp, "old") and ledger.get(exp, "old").state is JournalState.PAID
        ledger.set(exp, "old", JournalState.PAID, output_path="/kept/output.mp4")
        with psycopg.connect(url) as db:
            assert db.execute("SELECT state FROM cells WHERE experiment=%s AND cell_key='old'", (exp,)).fetchone() == (
                "paid",)
        # A late answer: this process no longer holds the cell another ended; its task id is kept.
        put("late", "done")
        ledger.set(exp, "late", JournalState.CREATED, task_id="task-late")
        assert ledger.get(exp, "late").state is JournalState.CREATED and ledger.task_ids(exp)["late"] == ["task-late"]
    finally:
        ledger.close()
