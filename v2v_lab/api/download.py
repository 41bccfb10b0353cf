"""Getting a task's output: streamed to disk at once (output URLs expire), its length checked,
proven to decode before it takes its final name; a truncated transfer is retried and an expired
URL refreshed by reading the task again."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import httpx

from .._failpoints import failpoint
from ..errors import DownloadError, MediaError
from ..media.probe import probe_video
from ._retry import TRANSPORT_ERRORS, RetryLater, with_retries
from .retry_policy import EXPIRED_OUTPUT_STATUSES, output_status_rule
from .task import Task
from .task_source import TaskSource

__all__ = ["download_output"]


async def download_output(client: TaskSource, task: Task | str, dest: str | os.PathLike[str], *,
                          attempts: int | None = None) -> Path:
    """The first output of task to dest (see the module's docstring); raises DownloadError."""
    current = await client.get_task(task) if isinstance(task, str) else task
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    tries = attempts or max(3, client.retry.max_retries + 1)

    def again(reason: str, at_once: bool = False) -> RetryLater:
        error = DownloadError(f"task {current.id}: output not downloaded after {tries} tries: {reason}")
        return RetryLater(error, 0.0 if at_once else None)

    async def attempt(n: int) -> Path:
        nonlocal current
        current = await _with_output(client, current)
        try:
            async with client.http_plain.stream("GET", current.output[0]) as resp:
                if resp.status_code >= 400:  # the retry policy: always again; an expired URL refreshed at once
                    expired = resp.status_code in EXPIRED_OUTPUT_STATUSES
                    if expired:
                        current = await client.get_task(current.id)
                    raise again(output_status_rule(resp.status_code).why, at_once=expired)
                expected = int(resp.headers.get("content-length", "-1"))
                size = await _stream_to(part, resp)
            if expected >= 0 and size != expected:
                raise again(f"truncated: {size} of {expected} bytes", at_once=True)
            await asyncio.to_thread(probe_video, part, "output")
        except MediaError:
            raise again("downloaded file is not a decodable video") from None
        except TRANSPORT_ERRORS as exc:
            raise again(f"transfer failed ({type(exc).__name__})") from None
        part.replace(dest)
        return dest

    try:
        return await with_retries(client.retry, attempt, tries=tries)
    except DownloadError:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise


async def _with_output(client: TaskSource, task: Task) -> Task:
    """The task with an output URL, read again if it has none yet; DownloadError if it has none."""
    if not task.output:
        task = await client.get_task(task.id)
        if not task.output:
            raise DownloadError(f"task {task.id} ({task.status.value}) has no output to download")
    return task


async def _stream_to(part: Path, resp: httpx.Response) -> int:
    """The body to part, synced; returns the bytes written."""
    size = 0
    with open(part, "wb") as fh:
        async for chunk in resp.aiter_bytes():
            fh.write(chunk)
            size += len(chunk)
            failpoint("download_partial")  # crash tests: killed mid-download
        fh.flush()
        os.fsync(fh.fileno())
    return size
