"""The words a sweep keeps and reports, each set in one enum, and the journal's state machine.

JournalState: a cell's row in the journal (or the team's ledger), step by step, and TRANSITIONS, the
steps a row may take. CellState: where a cell ended in one sweep, as the result reports it. Group:
what a sweep does with a cell, decided from its row and the store before anything is sent. All three
are str enums: a member equals its word ("done"), so results still count and compare as the strings
users write, and the journal stores the bare word.

One word, one meaning: "succeeded" is a cell whose run is logged (CellState.DONE: the summary, the
runs' v2v.status tag), and never a journal row's word any more; a row whose task succeeded and was
paid for, not yet logged, says "paid" (journals written before said "succeeded": read as "paid").
A task's own status (api/task.py: Runway's SUCCEEDED, FAILED, ...) is the provider's word for a task,
never a cell's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

__all__ = ["TRANSITIONS", "CellState", "Group", "IllegalTransitionError", "JournalState", "check_transition"]


class _Word(str, Enum):
    """A str enum that prints as its word on every Python we support (enum.StrEnum is 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JournalState(_Word):
    """A cell's row, in the word the journal stores:

    - sending: a create is about to go out (after a kill: it may or may not have arrived).
    - created: the create was answered; the row holds its task id (durable before anything else).
    - paid: the task succeeded, so it is paid for; its output is kept once the row has its
      output_path. Never paid for again: taken up by id to fetch its output, or scored and logged.
    - done: the cell's run is logged to MLflow (its output kept, where the row says).
    - failed: the task failed, or the create was refused (retryable says whether --retry-failed
      tries again).
    - unknown: the create was sent and no answer came back (resent only with --retry-unknown).
    """

    SENDING = "sending"
    CREATED = "created"
    PAID = "paid"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> JournalState | None:
        # Journals written before "paid" was its word: their "succeeded" rows are paid tasks.
        return cls.PAID if value == "succeeded" else None


_S = JournalState

# The steps a row may take: from its state (None: no row yet) to the states it may be set to next.
# Every state may be written again with its own word (a detail added, an output path recorded, a
# ledger write whose answer was lost written again). Why each other step exists:
TRANSITIONS: Mapping[JournalState | None, frozenset[JournalState]] = {
    # A new cell is sent; or refused before anything left (an input that cannot be uploaded).
    None: frozenset({_S.SENDING, _S.FAILED}),
    # Answered (created), refused (failed), no answer (unknown); sending again: the client's second
    # send of one create, or --retry-unknown after a kill mid-send; done: the store has its run (a
    # --force sweep killed mid-send over a cell logged before: the run is the proof).
    _S.SENDING: frozenset({_S.SENDING, _S.CREATED, _S.FAILED, _S.UNKNOWN, _S.DONE}),
    # Its task succeeded (paid) or failed; sending: a free emulator forgot the task (a restart),
    # or --force; done: a team member took the cell over and found its run in the store.
    _S.CREATED: frozenset({_S.CREATED, _S.SENDING, _S.PAID, _S.FAILED, _S.DONE}),
    # Logged (done), from this sweep's download or from its kept output on a rerun; sending: only
    # --force pays again, or a free emulator that forgot the task makes a new one. Never failed:
    # a paid task whose output could not be fetched stays paid, so no rerun pays for it again.
    _S.PAID: frozenset({_S.PAID, _S.SENDING, _S.DONE}),
    # Logged again from its kept output into a store that lacks it; sending or failed: --force.
    _S.DONE: frozenset({_S.DONE, _S.SENDING, _S.FAILED}),
    # Retried: within max_task_retries, or with --retry-failed (sending; failed again before
    # anything left); paid: its task had in fact succeeded (a journal of before a failed download
    # was kept as paid), taken up by id; done: its run is in the store.
    _S.FAILED: frozenset({_S.FAILED, _S.SENDING, _S.PAID, _S.DONE}),
    # --retry-unknown sends again (or fails before anything left); done: its run is in the store.
    _S.UNKNOWN: frozenset({_S.UNKNOWN, _S.SENDING, _S.FAILED, _S.DONE}),
}


class IllegalTransitionError(RuntimeError):
    """A row asked to take a step TRANSITIONS does not declare: a bug in v2v-lab, not bad input (so
    not a V2VError: no cell records it as its failure; the sweep stops with the row untouched)."""

    def __init__(self, key: str, was: JournalState | None, to: JournalState):
        self.was, self.to = was, to
        super().__init__(f"journal: cell {key[:12]} cannot go from {was.value if was else 'no row'} to {to.value} "
                         f"(allowed from {was.value if was else 'no row'}: "
                         f"{', '.join(sorted(s.value for s in TRANSITIONS[was]))})")


def check_transition(key: str, was: JournalState | None, to: JournalState) -> None:
    """IllegalTransitionError unless a row in state `was` (None: no row) may be set to `to`."""
    if to not in TRANSITIONS[was]:
        raise IllegalTransitionError(key, was, to)


class CellState(_Word):
    """Where a cell ended in this sweep, in the word a person reads everywhere (the summary, the
    progress bar, the monitor, the runs' v2v.status tag, `v2v-lab runs`):

    - succeeded: its task succeeded and its run is logged ("done" before, still accepted).
    - failed: its task failed, or its create was refused.
    - unknown: its create was sent and no answer came back (resent only with --retry-unknown).
    - missing: paid for, its output gone (done in the journal but not in this store and its kept
      file gone, or its task no longer readable): paid again only with --force.
    - planned: a dry run's cell that a run would work on.
    - not started: the budget's cap had no room left for it (nothing sent; a rerun with a higher
      cap takes it up).
    """

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
