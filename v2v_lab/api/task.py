"""The Task type, parsed from Runway's bare shape or CometAPI's wrapper, and failure classification."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["CreatedTask", "Task", "TaskStatus", "classify_failure", "credits_of", "is_task_not_exist", "parse_task"]


class TaskStatus(str, Enum):
    PENDING = "PENDING"
    THROTTLED = "THROTTLED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def queued(self) -> bool:
        return self in (TaskStatus.PENDING, TaskStatus.THROTTLED)


# CometAPI's wrapper speaks its own status words; map them onto Runway's.
_COMETAPI_STATUS = {
    "QUEUED": TaskStatus.PENDING,
    "NOT_START": TaskStatus.PENDING,
    "SUBMITTED": TaskStatus.PENDING,
    "IN_PROGRESS": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
}


def classify_failure(code: str | None) -> tuple[bool, str]:
    """Whether a failureCode is worth retrying, and how (see Runway's task-failures page).

    SAFETY.INPUT.* and input-preprocessing safety blocks: never (the same input is blocked again).
    SAFETY.OUTPUT.*: retry with another seed. INTERNAL.* and INTERNAL: retry as is.
    ASSET.INVALID: fix the input. Unknown or missing codes: not retried automatically.
    """
    if not code:
        return False, "no failureCode: not retried automatically"
    if code.startswith("SAFETY.INPUT") or code.startswith("INPUT_PREPROCESSING.SAFETY"):
        return False, "input blocked by moderation: change the input"
    if code.startswith("SAFETY.OUTPUT"):
        return True, "output blocked by moderation: retry with another seed"
    if code.startswith("INTERNAL") or code == "INPUT_PREPROCESSING.INTERNAL":
        return True, "internal failure: retryable"
    if code.startswith("ASSET"):
        return False, "invalid asset: fix the input"
    return False, "unknown failure code: not retried automatically"


@dataclass(frozen=True)
class Task:
    id: str
    status: TaskStatus
    created_at: str | None = None
    progress: float | None = None
    output: tuple[str, ...] = ()
    failure: str | None = None
    failure_code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # What the server says of money: the most this task may charge (while it runs), and what it did
    # charge once it ended (an integer; 0 = refunded). None where the provider says nothing.
    estimated_cost: float | None = None
    cost: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def retryable(self) -> bool:
        if self.status is TaskStatus.CANCELLED:
            return False
        return classify_failure(self.failure_code)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "createdAt": self.created_at,
            "progress": self.progress,
            "output": list(self.output),
            "failure": self.failure,
            "failureCode": self.failure_code,
        }


def _progress(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        try:
            return float(text) / 100.0
        except ValueError:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 100.0 if number > 1.0 else number


def parse_task(body: dict[str, Any], task_id: str | None = None) -> Task:
    """One Task from Runway's bare task or CometAPI's {code, message, data: {..., data: {task}}}."""
    if "status" in body and "id" in body:
        return _parse_bare(body)
    data = body.get("data")
    if isinstance(data, dict):
        inner = data.get("data")
        if isinstance(inner, dict) and "status" in inner and "id" in inner:
            task = _parse_bare(inner)
            if task.progress is None and not task.status.terminal:
                task = _with_progress(task, _progress(data.get("progress")))
            return task
        status_word = str(data.get("status", "")).upper()
        status = _COMETAPI_STATUS.get(status_word) or _status_or_none(status_word)
        if status is not None:
            return Task(
                id=str(data.get("task_id") or task_id or ""),
                status=status,
                created_at=str(data.get("submit_time")) if data.get("submit_time") else None,
                progress=_progress(data.get("progress")),
                failure=data.get("fail_reason") or None,
                failure_code=None,
                raw=body,
            )
    raise ValueError("task body has neither a Runway task nor a CometAPI task wrapper")


def _status_or_none(word: str) -> TaskStatus | None:
    try:
        return TaskStatus(word)
    except ValueError:
        return None


def _with_progress(task: Task, progress: float | None) -> Task:
    return Task(task.id, task.status, task.created_at, progress, task.output, task.failure,
                task.failure_code, task.raw)


def _parse_bare(body: dict[str, Any]) -> Task:
    status = _status_or_none(str(body["status"]).upper())
    if status is None:
        raise ValueError(f"unknown task status {body['status']!r}")
    output = body.get("output") or ()
    if isinstance(output, str):
        output = (output,)
    return Task(
        id=str(body["id"]),
        status=status,
        created_at=body.get("createdAt"),
        progress=_progress(body.get("progress")),
        output=tuple(str(u) for u in output),
        failure=body.get("failure"),
        failure_code=body.get("failureCode"),
        raw=body,
        estimated_cost=credits_of(body.get("estimatedCost")),
        cost=credits_of(body.get("cost")),
    )


@dataclass(frozen=True)
class CreatedTask:
    """A create's answer: the task's id and the server's estimatedCost ("the maximum credits this
    task may charge"; None from a provider that sends none)."""

    id: str
    estimated_cost: float | None = None


def credits_of(value: Any) -> float | None:
    """`{credits: N}` as Runway sends estimatedCost and cost; None for anything else (a provider
    that sends no money fields, or a malformed one, is priced by the estimate instead)."""
    if not isinstance(value, dict):
        return None
    credits = value.get("credits")
    if isinstance(credits, bool) or not isinstance(credits, (int, float)):
        return None
    return float(credits) if math.isfinite(credits) and credits >= 0 else None


def is_task_not_exist(body: Any) -> bool:
    """CometAPI answers this for a few seconds right after a create."""
    text = str(body).lower()
    return "task_not_exist" in text or "task not exist" in text
