"""The retry policy, as data: for each way a request or a task can fail, what may be tried again.
The one home of these rules: the client's request loop, uploads, downloads, waiting, the errors'
`retryable`, `classify_failure`, a sweep cell's own retry and `--retry-failed` all read them here.

Actions:
  RETRY_REQUEST       send the same request again (the client's backoff loop; a failed cell's
                      rerun sends it again too: no task is made twice by it)
  NEW_TASK_SAME_SEED  the task definitely failed inside the service: a new task for the same
                      request, seed included, is no double charge and may succeed
  NEW_TASK_NEW_SEED   the failure depends on the seed: only a different seed is worth paying for
  NEVER               the same request fails again (or may already have made a task): not resent

SAFETY.OUTPUT (the output filter refused what was generated) is NEW_TASK_NEW_SEED: the refusal
depends on what the seed produced, and Runway's own advice is another seed. A sweep cell's seed is
part of what the cell is (its key, what it measures), so a sweep never changes it: the cell ends
failed, not retryable, with the advice as its note, and `--retry-failed` does not resend it (the
same seed would most likely be refused again, and paid). A different seed is a different cell:
add it to the spec's seeds. A library caller can read the action (Task.retry_rule) and send a new
seed itself.

`retryable` (Action.retryable, V2VError.retryable, Task.retryable) means "trying the same thing
again may succeed": RETRY_REQUEST or NEW_TASK_SAME_SEED.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "CREATE_STATUS_RULES", "ERROR_CODE_RULES", "EXPIRED_OUTPUT_STATUSES", "FAILURE_CODE_RULES", "STATUS_RULES",
    "TRANSPORT_RULES", "Action", "Rule", "Transport", "failure_rule", "output_status_rule", "resent_by_retry_failed",
    "status_rule", "transport_rule",
]


class Action(str, Enum):
    RETRY_REQUEST = "retry the request"
    NEW_TASK_SAME_SEED = "a new task with the same seed"
    NEW_TASK_NEW_SEED = "a new task with a new seed"
    NEVER = "never"

    @property
    def retryable(self) -> bool:
        """Trying the same thing again (the request, or a task with the same seed) may succeed."""
        return self in (Action.RETRY_REQUEST, Action.NEW_TASK_SAME_SEED)


@dataclass(frozen=True)
class Rule:
    action: Action
    why: str  # the sentence a user is shown (a failed cell's note, a journal's "why")
    task_may_exist: bool = False  # a create that got this: a task may have been made (and billed)


class Transport(str, Enum):
    """A request that got no HTTP status back."""

    NOT_SENT = "not sent"  # refused or timed out while connecting: not a byte of it left this machine
    NO_ANSWER = "no answer"  # sent, then the connection failed or timed out: it may have been acted on


_R, _SAME, _NEW, _NEVER = Action.RETRY_REQUEST, Action.NEW_TASK_SAME_SEED, Action.NEW_TASK_NEW_SEED, Action.NEVER

# An API request's HTTP status: reads, deletes, uploads and the storage POST (Runway's error table).
STATUS_RULES: Mapping[int, Rule] = {
    408: Rule(_R, "request timeout"),
    429: Rule(_R, "too many requests or the daily quota spent: back off (Retry-After wins)"),
    500: Rule(_R, "server error"),
    502: Rule(_R, "the endpoint is shedding load"),
    503: Rule(_R, "the endpoint is shedding load"),
    504: Rule(_R, "the endpoint is overloaded"),
}
_REFUSED = Rule(_NEVER, "the endpoint refused the request: the same request is refused again")

# A create differs: there is no idempotency key, so an answer that does not say "no task was made"
# leaves a task that may exist and be billed. Only a 429 refuses before any task is made.
_MAY_EXIST = Rule(_NEVER, "a task may exist and may be billed: the cell is `unknown`, resent only with "
                         "--retry-unknown", task_may_exist=True)
CREATE_STATUS_RULES: Mapping[int, Rule] = {
    **{code: _MAY_EXIST for code in STATUS_RULES},
    429: Rule(_R, "too many requests or the daily quota spent: no task was made, back off"),
}

TRANSPORT_RULES: Mapping[Transport, Rule] = {
    Transport.NOT_SENT: Rule(_R, "could not connect: nothing was sent"),
    Transport.NO_ANSWER: Rule(_R, "no answer: a read or delete may be sent again"),
}
_CREATE_TRANSPORT_RULES: Mapping[Transport, Rule] = {
    Transport.NOT_SENT: TRANSPORT_RULES[Transport.NOT_SENT],
    Transport.NO_ANSWER: _MAY_EXIST,
}

# An output URL (a download, no API key): these mean it expired, and reading the task again gives
# a fresh one at once; any other error status is tried again after the backoff.
EXPIRED_OUTPUT_STATUSES = frozenset({403, 404, 410})

# A task's failureCode (Runway's task-failures page), by prefix: the first that matches wins.
FAILURE_CODE_RULES: tuple[tuple[str, Rule], ...] = (
    ("SAFETY.INPUT", Rule(_NEVER, "input blocked by moderation: change the input")),
    ("INPUT_PREPROCESSING.SAFETY", Rule(_NEVER, "input blocked by moderation: change the input")),
    ("SAFETY.OUTPUT", Rule(_NEW, "output blocked by moderation: another seed may pass (a sweep keeps each "
                                 "cell's seed and does not resend it: add seeds to the spec)")),
    ("INPUT_PREPROCESSING.INTERNAL", Rule(_SAME, "the moderation system failed: retryable")),
    ("INTERNAL", Rule(_SAME, "internal failure: retryable")),
    ("ASSET", Rule(_NEVER, "invalid asset: fix the input")),
)

# v2v_lab's own failure codes (V2VError.failure_code); HTTP_<status> reads STATUS_RULES.
ERROR_CODE_RULES: Mapping[str, Rule] = {
    "RATE_LIMITED": STATUS_RULES[429],
    "CONNECTION_FAILED": TRANSPORT_RULES[Transport.NOT_SENT],
    "WAIT_TIMEOUT": Rule(_R, "the task goes on: wait for it again"),
    "DOWNLOAD_FAILED": Rule(_R, "read the task again for its output (its task was paid once, not again)"),
    "CREATE_OUTCOME_UNKNOWN": _MAY_EXIST,
    "INVALID_INPUT": Rule(_NEVER, "bad input: fix it"),
    "CANCELLED": Rule(_NEVER, "cancelled"),
}
_NO_CODE = Rule(_NEVER, "no failureCode: not retried automatically")
_UNKNOWN_CODE = Rule(_NEVER, "unknown failure code: not retried automatically")
_HTTP_CODE = re.compile(r"HTTP_(\d{3})")


def status_rule(status: int, *, create: bool = False) -> Rule:
    """What an error status on an API request allows (create: the request was a create)."""
    return (CREATE_STATUS_RULES if create else STATUS_RULES).get(status, _REFUSED)


def transport_rule(outcome: Transport, *, create: bool = False) -> Rule:
    return (_CREATE_TRANSPORT_RULES if create else TRANSPORT_RULES)[outcome]


def output_status_rule(status: int) -> Rule:
    """An output URL's error status: always tried again; an expired one after a fresh read of the task."""
    if status in EXPIRED_OUTPUT_STATUSES:
        return Rule(_R, f"output URL answered {status} (expired?): read the task for a fresh URL")
    return Rule(_R, f"output URL answered {status}")


def failure_rule(code: str | None) -> Rule:
    """What a failure code allows: a task's failureCode, v2v_lab's own code, or HTTP_<status>."""
    if not code:
        return _NO_CODE
    if code in ERROR_CODE_RULES:
        return ERROR_CODE_RULES[code]
    http = _HTTP_CODE.fullmatch(code)
    if http:
        return status_rule(int(http.group(1)))
    for prefix, rule in FAILURE_CODE_RULES:
        if code.startswith(prefix):
            return rule
    return _UNKNOWN_CODE


def resent_by_retry_failed(code: str | None) -> bool:
    """Whether `--retry-failed` sends a cell that failed with this code again (with its own seed,
    which is part of the cell): only when that may succeed. Read from the code, not from what an
    older journal recorded, so a cell journaled under an earlier rule follows this one."""
    return failure_rule(code).action.retryable
