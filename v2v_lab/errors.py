"""Typed errors shared by every layer: bad input (exit 2), API status errors, task failures, unknown creates."""

from __future__ import annotations

import reprlib
from typing import Any

from ._net import mask_credentials
from .api.retry_policy import Rule, failure_rule

__all__ = [
    "APIError", "AuthenticationError", "BadRequestError", "BudgetError", "ConnectionFailedError",
    "CreateOutcomeUnknownError", "DownloadError", "InputError", "MediaError", "ModelNotAvailableError",
    "NotFoundError", "PermissionDeniedError", "RateLimitError", "ServerError", "TaskFailedError", "V2VError",
    "WaitTimeoutError", "escape_controls",
]

# An error names the value it refuses, but never builds a huge text for it: a YAML alias bomb
# expands to millions of items, and repr() of that alone exhausts memory.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40


def escape_controls(text: str) -> str:
    """Text as it may go to a terminal: what is not printable (escape codes, BEL, newlines, bidi
    overrides, lone surrogates) shown escaped, never sent raw; printable text, accents included, as is.
    The one home of this rule: progress lines, sweep tables, errors, every line the CLI prints."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def _short(value: Any, limit: int = 80) -> str:
    text = escape_controls(_REPR.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class V2VError(Exception):
    """Base of every error v2v_lab raises on purpose. Each class says what a sweep records for it:
    its failure code, and what the retry policy (api/retry_policy.py) allows for that code:
    retry_rule, and retryable (sending again may succeed)."""

    code: str | None = None  # the failure code a sweep records; None: the class name

    @property
    def failure_code(self) -> str:
        return self.code or type(self).__name__.upper()

    @property
    def retry_rule(self) -> Rule:
        return failure_rule(self.failure_code)

    @property
    def retryable(self) -> bool:
        return self.retry_rule.action.retryable


class InputError(V2VError, ValueError):
    """Bad input caught before anything was sent. Its message names the field, the value and what is allowed."""

    code = "INVALID_INPUT"

    def __init__(self, field: str, value: Any, allowed: str, *, line: int | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.line = line
        where = f" (line {line})" if line else ""
        # A refused store or ledger URL is named as typed, but never with its password.
        super().__init__(mask_credentials(f"{field}{where}: got {_short(value)}; allowed: {allowed}"))


class BudgetError(InputError):
    """The estimate is over the budget, the credit balance or a daily limit, or the spend was not
    confirmed: nothing was sent."""


class MediaError(InputError):
    """A file that is missing, empty, not a video or image, or outside the model's limits."""


class APIError(V2VError):
    """The endpoint answered with an error status."""

    @property
    def failure_code(self) -> str:
        return self.code or f"HTTP_{self.status_code}"

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None):
        self.status_code = status_code
        self.body = body
        super().__init__(message)


class BadRequestError(APIError):
    """HTTP 400. Runway's body is {"error": "<field>: <reason>"}; both parts are parsed."""

    def __init__(self, message: str, *, status_code: int | None = 400, body: Any = None):
        super().__init__(message, status_code=status_code, body=body)
        field, sep, reason = message.partition(": ")
        self.field = field if sep else None
        self.reason = reason if sep else message


class AuthenticationError(APIError):
    """HTTP 401: missing, wrong or disabled key (the key itself is never in the message)."""


class PermissionDeniedError(APIError):
    """HTTP 403: the organization has no access to this model."""


ModelNotAvailableError = PermissionDeniedError


class NotFoundError(APIError):
    """HTTP 404: no such task, upload or output (also a cancelled or deleted task)."""


class RateLimitError(APIError):
    """HTTP 429: daily generation quota spent, or too many requests."""

    code = "RATE_LIMITED"


class ServerError(APIError):
    """HTTP 5xx: the endpoint is shedding load or failed."""


class ConnectionFailedError(V2VError):
    """The endpoint could not be reached (or a read timed out) after the retries allowed."""

    code = "CONNECTION_FAILED"


class CreateOutcomeUnknownError(V2VError):
    """A create was sent and no answer came back: a task may exist and may be billed.

    The client never resends such a create by itself; the sweep journal marks the cell `unknown`.
    """

    code = "CREATE_OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, cause: str):
        self.cause = cause
        super().__init__(f"{message} (cause: {cause}); a task may exist and may be billed")


class TaskFailedError(V2VError):
    """A task ended FAILED or CANCELLED."""

    def __init__(self, task: Any):
        self.task = task
        code = task.failure_code or "no failureCode"
        super().__init__(f"task {task.id} {task.status}: {code}")

    @property
    def retry_rule(self) -> Rule:
        return self.task.retry_rule  # the task's failureCode (or its cancellation) decides


class WaitTimeoutError(V2VError):
    """The wait ran out of time; the task goes on. Call wait(task_id) again to take it up."""

    code = "WAIT_TIMEOUT"

    def __init__(self, task_id: str, waited_s: float, last_status: str | None):
        self.task_id = task_id
        self.waited_s = waited_s
        self.last_status = last_status
        super().__init__(
            f"task {task_id} still {last_status or 'unknown'} after {waited_s:.0f}s; "
            f"resume with wait({task_id!r})"
        )


class DownloadError(V2VError):
    """An output could not be downloaded whole, or is not a decodable video."""

    code = "DOWNLOAD_FAILED"
