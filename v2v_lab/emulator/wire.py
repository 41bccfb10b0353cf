"""What the emulator says on the wire, apart from its routes: error bodies, request bodies it
refuses, route names for fault injection and stats, CometAPI's envelope, streamed and broken
responses."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["COMETAPI_PREFIX", "route_of"]


def _error(status: int, message: str) -> JSONResponse:
    # A message may quote what the client sent (an unknown key, a ratio): a lone surrogate in it is
    # sent escaped, never a failure to encode the answer (a 500).
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": safe}, status_code=status)


class _BadBody(Exception):
    def __init__(self, response: JSONResponse):
        self.response = response


async def _object_body(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON object, or a 400 as the real API gives: invalid JSON, JSON nested too
    deep to parse (RecursionError, which was a 500), or JSON that is not an object."""
    raw = await request.body()
    if not raw and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _BadBody(_error(400, "body: Invalid JSON")) from None
    if not isinstance(body, dict):
        raise _BadBody(_error(400, "body: Expected object"))
    return body


def route_of(method: str, path: str) -> str | None:
    if path == "/v1/video_to_video" and method == "POST":
        return "create"
    if path.startswith("/v1/tasks/"):
        return "delete" if method == "DELETE" else "task"
    if path == "/v1/uploads" or path.startswith("/_uploads/"):
        return "upload"
    if path == "/v1/organization":
        return "organization"
    if path == "/v1/organization/usage":
        return "usage"
    if path.startswith("/_outputs/"):
        return "output"
    return None


COMETAPI_PREFIX = "/runwayml"
# CometAPI's task wrapper speaks its own status words (see reference/runway-api.md).
_COMETAPI_STATUS = {"PENDING": "QUEUED", "THROTTLED": "QUEUED", "RUNNING": "IN_PROGRESS", "SUCCEEDED": "SUCCESS",
                    "FAILED": "FAILURE", "CANCELLED": "FAILURE"}


def _cometapi_wrapper(task: dict[str, Any]) -> dict[str, Any]:
    """A Runway task inside CometAPI's envelope (times in unix seconds, progress as "40%")."""
    created = dt.datetime.fromisoformat(task["createdAt"].replace("Z", "+00:00")).timestamp()
    done = task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")
    progress = 100 if done else round(100 * float(task.get("progress") or 0))
    return {"code": "success", "message": "", "data": {
        "task_id": task["id"], "action": "VIDEO_TO_VIDEO", "status": _COMETAPI_STATUS[task["status"]],
        "fail_reason": task.get("failure") or "", "submit_time": int(created), "start_time": int(created),
        "finish_time": int(time.time()) if done else 0, "progress": f"{progress}%", "data": task}}


async def _chunks(data: bytes, truncate: bool, slow_s: float):
    end = len(data) // 2 if truncate else len(data)
    step = 256 * 1024
    n = max(1, (end + step - 1) // step)
    for k in range(0, end, step):
        if slow_s:
            await asyncio.sleep(slow_s / n)
        yield data[k : min(end, k + step)]
    if truncate:
        raise ConnectionAbortedError("emulated truncated download")


async def _swallow(message) -> None:
    return None


async def _broken_response(send) -> None:
    """Answer with headers that promise a body, then die: the client sees a dropped connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
    raise ConnectionAbortedError("emulated dropped connection")
