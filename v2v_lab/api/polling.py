"""Waiting for a task: polls at the provider's pace, backing off while it is queued, riding out
transient read failures, until it ends or the timeout passes (the task id goes with the timeout,
so a later wait takes it up). An endpoint that says when a task next changes (the emulator on this
machine, _net.TASK_DUE_HEADER) has it read right then, and not once before."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import APIError, V2VError, WaitTimeoutError
from .retry_policy import Action
from .task import Task, TaskStatus
from .task_source import TaskSource

__all__ = ["UNPARSEABLE_TASK_LIMIT", "ProgressCallback", "wait_for_task"]

ProgressCallback = Callable[[Task], None]
UNPARSEABLE_TASK_LIMIT = 10  # task reads in a row whose body is not a task before a wait gives up
# The longest wait between two reads of a task whose endpoint said when it ends: the real API's
# pace, so a progress bar still moves on a long task.
DUE_READ_MAX_S = 5.0


@dataclass
class _Polling:
    """What a wait keeps between reads of one task."""

    task_id: str
    since: float  # monotonic time the wait began
    grace_s: float  # how long "task does not exist" is taken for "not yet visible"
    last: Task | None = None
    bad_bodies: int = 0  # reads in a row whose body was not a task


async def wait_for_task(client: TaskSource, task_id: str, *, on_progress: ProgressCallback | None,
                        timeout: float | None, not_exist_grace_s: float) -> Task:
    """AsyncRunwayClient.wait (see there)."""
    start = time.monotonic()
    interval = client.poll_interval
    polling = _Polling(task_id, start, not_exist_grace_s)
    while True:
        task = await _poll(client, polling)
        if task is not None:
            last = polling.last
            if on_progress and (last is None or (task.status, task.progress) != (last.status, last.progress)):
                on_progress(task)
            polling.last = task
            if task.terminal:
                return task
            if task.status is TaskStatus.RUNNING:
                interval = client.poll_interval
        waited = time.monotonic() - start
        if timeout is not None and waited >= timeout:
            raise WaitTimeoutError(task_id, waited, polling.last.status.value if polling.last else None)
        sleep = _next_read_in(client, task_id, interval)
        if timeout is not None:
            sleep = min(sleep, max(0.0, timeout - waited))
        await asyncio.sleep(sleep)
        interval = min(interval * 1.5, client.poll_interval * 4)


def _next_read_in(client: TaskSource, task_id: str, interval: float) -> float:
    """Seconds until the task is read again: when the endpoint said it next changes (never sooner
    than the pace allows, never later than DUE_READ_MAX_S); else the pace, backed off and jittered."""
    due = client.task_due(task_id)
    if due is not None:
        return min(max(client.poll_interval, due - time.monotonic()), max(client.poll_interval, DUE_READ_MAX_S))
    return max(client.poll_interval, interval * random.uniform(0.8, 1.2))


async def _poll(client: TaskSource, polling: _Polling) -> Task | None:
    """One read: the task; or, after a failure worth waiting out, the last one seen."""
    try:
        task = await client.get_task(polling.task_id)
    except V2VError as exc:
        # A provider may not show a task for a few seconds after its create (CometAPI).
        if client.provider.task_not_visible_yet(exc) and time.monotonic() - polling.since < polling.grace_s:
            return Task(polling.task_id, TaskStatus.PENDING)
        if exc.retry_rule.action is Action.RETRY_REQUEST:  # the retry policy's: 5xx, 429, no connection
            return polling.last
        raise
    except ValueError as exc:
        # A body that is not a task: once may be a proxy's hiccup; again and again is an
        # endpoint that will never answer with one, and polling it forever helps nobody.
        polling.bad_bodies += 1
        if polling.bad_bodies >= UNPARSEABLE_TASK_LIMIT:
            raise APIError(f"GET {client.provider.task_path(polling.task_id)}: {polling.bad_bodies} answers in a row are "
                           f"not a task ({exc})") from None
        return polling.last
    polling.bad_bodies = 0
    return task
