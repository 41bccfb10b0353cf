"""The Task type, parsed from Runway's bare shape (parse_runway_task) or also CometAPI's wrapper
(parse_task), and failure classification (by the retry policy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .retry_policy import Rule, failure_rule

__all__ = ["CreatedTask", "Task", "TaskStatus", "classify_failure", "credits_of", "is_task_not_exist", "parse_runway_task",
           "parse_task"]


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
    """Whether a failureCode is worth retrying as it is (the same seed), and the sentence saying
    what to do: the retry policy's rule for it (api/retry_policy.py, which also says why
    SAFETY.OUTPUT is not retryable as it is: only another seed may pass)."""
    rule = failure_rule(code)
    return rule.action.retryable, rule.why


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
    def retry_rule(self) -> Rule:
        """What the retry policy allows after this task (a cancelled one: never)."""
        return failure_rule(TaskStatus.CANCELLED.value if self.status is TaskStatus.CANCELLED else self.failure_code)

    @property
    def retryable(self) -> bool:
        return self.retry_rule.action.retryable

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


def parse_runway_task(body: Any) -> Task:
    """One Task from Runway's bare task object; ValueError for anything else."""
    if not (isinstance(body, dict) and "status" in body and "id" in body):
        raise ValueError("task body is not a Runway task (no id and status)")
    return _parse_bare(body)


def parse_task(body: dict[str, Any], task_id: str | None = None) -> Task:
    """One Task from Runway's bare task or CometAPI's {code, message, data: {..., data: {task}}}."""
    if isinstance(body, dict) and "status" in body and "id" in body:
        return _parse_bare(body)
    data = body.get("data") if isinstance(body, dict) else None
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
