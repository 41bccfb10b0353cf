"""Getting a task's output: streamed to disk at once (output URLs expire), its length checked,
proven to decode before it takes its final name; a truncated transfer is retried and an expired
URL refreshed by reading the task again."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._failpoints import failpoint
from ..errors import DownloadError, MediaError
from ..media.probe import probe_video
from ._retry import TRANSPORT_ERRORS
from .task import Task

if TYPE_CHECKING:
    from .client import AsyncRunwayClient

__all__ = ["download_output"]


async def download_output(client: AsyncRunwayClient, task: Task | str, dest: str | os.PathLike[str], *,
                          attempts: int | None = None) -> Path:
    """The first output of task to dest (see the module's docstring); raises DownloadError."""
    if isinstance(task, str):
        task = await client.get_task(task)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempts = attempts or max(3, client.retry.max_retries + 1)
    last_error = "no output URL"
    for attempt in range(attempts):
        if not task.output:
            task = await client.get_task(task.id)
            if not task.output:
                raise DownloadError(f"task {task.id} ({task.status.value}) has no output to download")
        try:
            async with client.http_plain.stream("GET", task.output[0]) as resp:
                if resp.status_code in (403, 404, 410):
                    last_error = f"output URL answered {resp.status_code} (expired?)"
                    task = await client.get_task(task.id)
                    continue
                if resp.status_code >= 400:
                    last_error = f"output URL answered {resp.status_code}"
                    await asyncio.sleep(client.retry.delay(attempt))
                    continue
                expected = int(resp.headers.get("content-length", "-1"))
                size = 0
                with open(part, "wb") as fh:
                    async for chunk in resp.aiter_bytes():
                        fh.write(chunk)
                        size += len(chunk)
                        failpoint("download_partial")  # crash tests: killed mid-download
                    fh.flush()
                    os.fsync(fh.fileno())
            if expected >= 0 and size != expected:
                last_error = f"truncated: {size} of {expected} bytes"
                continue
            await asyncio.to_thread(probe_video, part, "output")
            part.replace(dest)
            return dest
        except MediaError:
            last_error = "downloaded file is not a decodable video"
        except TRANSPORT_ERRORS as exc:
            last_error = f"transfer failed ({type(exc).__name__})"
        await asyncio.sleep(client.retry.delay(attempt))
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    raise DownloadError(f"task {task.id}: output not downloaded after {attempts} tries: {last_error}")
