"""The words a sweep keeps and reports, each set in one enum.

JournalState: a cell's row in the journal (or the team's ledger), step by step. CellState: where
a cell ended in one sweep, as the result reports it. Group: what a sweep does with a cell, decided
from its row and the store before anything is sent. All three are str enums: a member equals its
word ("done"), so results still count and compare as the strings users write, and the journal
stores the bare word.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CellState", "Group", "JournalState"]


class _Word(str, Enum):
    """A str enum that prints as its word on every Python we support (enum.StrEnum is 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JournalState(_Word):
    """sending (a create is about to go out) -> created (task id known) -> succeeded (the task
    succeeded and was paid; its output on disk once the row has its path) -> done (logged to
    MLflow); failed and unknown are ends of their own. A 'sending' row after a kill means the
    create may or may not have arrived; a 'succeeded' row is never paid for again."""

    SENDING = "sending"
    CREATED = "created"
    SUCCEEDED = "succeeded"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


class CellState(_Word):
    """Where a cell ended in this sweep, in the word a person reads everywhere (the summary, the
    progress bar, the monitor, the runs' v2v.status tag, `v2v-lab runs`): succeeded: its task
    succeeded and its run is logged ("done" before, still accepted). unknown: its create was sent and no answer came back
    (resent only with --retry-unknown); missing: paid for, its output gone (done in the journal but
    not in this store and its kept file gone, or its task no longer readable: paid again only with
    --force); planned: a dry run's cell that a run would work on; not started: the budget's cap had
    no room left for it (nothing sent; a rerun with a higher cap takes it up)."""

    DONE = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    MISSING = "missing"
    PLANNED = "planned"
    NOT_STARTED = "not started"

    @classmethod
    def _missing_(cls, value: object) -> CellState | None:
        return cls.DONE if value == "done" else None  # the word of earlier versions, and the journal's


class Group(_Word):
    """What this sweep does with a cell: NEW (create), RESUME (take up its task by id), FINISH
    (score and log its kept output); or leaves it: DONE, FAILED, UNKNOWN, MISSING."""

    NEW = "new"
    RESUME = "resume"
    FINISH = "finish"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"
    MISSING = "missing"
