"""The emulator's HTTP surface: Runway's routes and error shapes on starlette, plus fault injection."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._net import EMULATOR_TASK_PACE_S, TASK_DUE_HEADER, TASK_PACE_HEADER, is_loopback_host
from ..api.catalog import RUNWAY_API_VERSION, ModelSpec
from ..api.limits import DATA_URI_MAX_BYTES
from ..errors import MediaError
from ..media.probe import VideoInfo, probe_image, probe_video
from .files import UUID_RE, FileRoutes
from .state import ACTIVE, EmulatorState, estimated_credits, options_of, task_json, utc_now
from .validate import Rejected, check_body
from .wire import (
    COMETAPI_PREFIX,
    _BadBody,
    _broken_response,
    _cometapi_wrapper,
    _error,
    _object_body,
    _swallow,
    route_of,
)

_PACE = (TASK_PACE_HEADER.encode(), f"{EMULATOR_TASK_PACE_S:g}".encode())  # see _net.TASK_PACE_HEADER

__all__ = ["MAX_DATA_URI_IMAGE", "MAX_DATA_URI_VIDEO", "EmulatorApp"]

MAX_DATA_URI_VIDEO = DATA_URI_MAX_BYTES["video"]
MAX_DATA_URI_IMAGE = DATA_URI_MAX_BYTES["image"]


def _input_limit(kind: str) -> int:
    """The most bytes an input the emulator holds in memory may have, sent inline (a data URI) or
    fetched from a URL alike."""
    return MAX_DATA_URI_VIDEO if kind == "video" else MAX_DATA_URI_IMAGE


class EmulatorApp(FileRoutes):
    """Holds the state and the signing secret; `asgi` is what uvicorn serves.

    flavor "runway": Runway's own API. flavor "cometapi": CometAPI's "official format" proxy of it:
    create and task reads under /runwayml/v1/..., tasks wrapped in {code, message, data: {...}},
    `task_not_exist` for the first `not_exist_s` seconds after a create, X-Runway-Version required on
    create only, and no uploads or organization routes (data URIs and https URLs carry the inputs).
    """

    def __init__(self, state: EmulatorState, key: str | None, max_upload_bytes: int, flavor: str = "runway",
                 not_exist_s: float = 1.0):
        if flavor not in ("runway", "cometapi"):
            raise ValueError(f"flavor: runway or cometapi (got {flavor!r})")
        self.flavor = flavor
        self.not_exist_s = not_exist_s
        self.state = state
        self.key = key
        self.max_upload_bytes = max_upload_bytes
        self.secret = uuid.uuid4().bytes
        self.base_url = ""  # set once the socket is bound
        self.http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        routes = [
            Route("/v1/video_to_video", self.create, methods=["POST"]),
            Route("/v1/tasks/{task_id}", self.get_task, methods=["GET"]),
            Route("/v1/tasks/{task_id}", self.delete_task, methods=["DELETE"]),
            Route("/v1/uploads", self.create_upload, methods=["POST"]),
            Route("/_uploads/{upload_id}", self.receive_upload, methods=["POST"]),
            Route("/v1/organization", self.organization, methods=["GET"]),
            Route("/v1/organization/usage", self.usage, methods=["POST"]),
            Route("/_outputs/{task_id}/{name}", self.output, methods=["GET", "HEAD"]),
        ]
        self.app = Starlette(routes=routes)

    # -- middleware: counters, faults, auth, version header --------------------------------------
    async def asgi(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if self.flavor == "cometapi" and not path.startswith("/_outputs/"):
            inner = path[len(COMETAPI_PREFIX):] if path.startswith(COMETAPI_PREFIX + "/v1/") else ""
            if inner not in ("/v1/video_to_video",) and not inner.startswith("/v1/tasks/"):
                await _error(404, "Not found")(scope, receive, send)
                return
            scope = {**scope, "path": inner}
            path = inner
        route = route_of(method, path)
        state = self.state
        with state.lock:
            state.requests[route or "other"] += 1

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                with state.lock:
                    state.responses[message["status"]] += 1
                if route in ("create", "task"):
                    message = {**message, "headers": [*message.get("headers", []), _PACE]}
            await send(message)

        if await self._injected_fault(route, scope, receive, send, counting_send):
            return
        await self._dispatch(scope, receive, counting_send, route)

    async def _injected_fault(self, route: str | None, scope, receive, send, counting_send) -> bool:
        """The configured faults, rolled for this request: latency, a dropped connection (before or
        after the work was done), a 5xx, a 429 on create. True when a fault has answered."""
        faults, dice = self.state.dice.config, self.state.dice
        if faults.request_latency_s and route not in (None, "output"):
            await asyncio.sleep(faults.request_latency_s)
        if route and route != "output" and dice.roll(faults.drop_rate, f"drop_{route}"):
            if dice.choice(["before", "after"]) == "after":
                await self._dispatch(scope, receive, _swallow, route)
            await _broken_response(send)
            return True
        if route and dice.roll(faults.server_error_rate.get(route, 0.0), f"5xx_{route}"):
            status = 502 if dice.choice(["502", "503"]) == "502" else 503
            await _error(status, "Service unavailable, please retry")(scope, receive, counting_send)
            return True
        if route == "create" and dice.roll(faults.create_429_rate, "429_create"):
            answer = _error(429, "Too many requests")
            if faults.retry_after_s is not None:  # the wait a rate-limited client is told to keep
                answer.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            await answer(scope, receive, counting_send)
            return True
        return False

    async def _dispatch(self, scope, receive, send, route: str | None) -> None:
        if route and route not in ("output",) and not scope["path"].startswith("/_uploads/"):
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            auth = headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not token or (self.key is not None and not hmac.compare_digest(token, self.key)):
                await _error(401, "Invalid API key or authorization header")(scope, receive, send)
                return
            version = headers.get("x-runway-version")
            if version is None and self.flavor == "cometapi" and route != "create":
                version = RUNWAY_API_VERSION  # CometAPI: optional on reads
            if version is None:
                await _error(400, f"X-Runway-Version: header is required (use {RUNWAY_API_VERSION})")(
                    scope, receive, send)
                return
            if version != RUNWAY_API_VERSION:
                await _error(400, f"X-Runway-Version: unsupported version; use {RUNWAY_API_VERSION}")(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)

    # -- generation ------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        try:
            body = await _object_body(request)
        except _BadBody as bad:
            return bad.response
        state = self.state
        model = body.get("model")
        if not isinstance(model, str):
            return _error(400, "model: Invalid enum value. Expected " + " | ".join(sorted(state.models)))
        if model not in state.catalog or model not in state.models:
            # The real API answers an unknown or unavailable model with 403 (runwayml sdk-python #139).
            return _error(403, f"Model variant {model} is not available")
        spec = state.catalog[model]
        try:
            check_body(body, spec)
            video_path, info, ref_path, keyframe_paths = await self._inputs(body, spec)
        except Rejected as rej:
            return _error(rej.status, rej.message)
        except MediaError as err:
            return _error(400, f"{err.field}: Invalid input")
        size = (info.width, info.height)
        estimate = round(estimated_credits(spec, info.duration_s, options_of(body, spec, defaults=True), size), 2)
        with state.lock:
            if state.daily_used(model) >= state.limits.max_daily.get(model, 10**9):
                return _error(429, f"You have exceeded the daily generation limit for {model}")
            if state.limits.credit_balance < estimate:
                return _error(400, "You do not have enough credits to run this task")
        # A model without a seed field draws its own per task (so repeats differ); a seeded one
        # left unseeded draws one too, as Runway does.
        body.setdefault("seed", int.from_bytes(uuid.uuid4().bytes[:4], "little"))
        task = state.add_task(model, body, video_path, ref_path, info.duration_s, self._fail_plan(body),
                              estimate=estimate, keyframe_paths=keyframe_paths, input_size=size)
        # The SDK 5.x VideoToVideoCreateResponse: the id and the most this task may charge.
        return JSONResponse({"id": task.id, "estimatedCost": {"credits": estimate}})

    async def _inputs(self, body: dict[str, Any], spec: ModelSpec
                      ) -> tuple[str, VideoInfo, str | None, tuple[str, ...]]:
        """The request's files, fetched and probed as the service does: the video within the
        model's length and size limits, the reference and keyframes readable images. Returns the
        video's path and facts, the reference's path and the keyframes' paths; raises Rejected or
        MediaError."""
        field = spec.video_field
        video_path = await self._resolve(body[field], field, "video")
        info = probe_video(video_path, field)
        lim = spec.input
        if info.duration_s > lim.max_seconds + 0.05:
            raise Rejected(400, f"{field}: video must be at most {lim.max_seconds:g} seconds long")
        if info.duration_s < lim.min_seconds:
            raise Rejected(400, f"{field}: video must be at least {lim.min_seconds:g} seconds long")
        if max(info.width, info.height) > max(lim.max_width, lim.max_height):
            raise Rejected(400, f"{field}: resolution over {lim.max_width}x{lim.max_height}")
        ref_path = None
        if body.get("references"):
            ref_path = await self._resolve(body["references"][0]["uri"], "references.0.uri", "image")
            probe_image(ref_path, "references.0.uri")
        keyframe_paths = []
        for k, kf in enumerate(body.get("keyframes") or []):
            keyframe_paths.append(await self._resolve(kf["uri"], f"keyframes.{k}.uri", "image"))
            probe_image(keyframe_paths[-1], f"keyframes.{k}.uri")
        return video_path, info, ref_path, tuple(keyframe_paths)

    def _fail_plan(self, body: dict[str, Any]) -> tuple[str, str] | None:
        faults, dice = self.state.dice.config, self.state.dice
        prompt = (body.get("promptText") or "").lower()
        if any(re.search(r"\b" + re.escape(w.lower()) + r"\b", prompt) for w in faults.blocklist if w):
            return "SAFETY.INPUT.TEXT", "The prompt was flagged by content moderation."
        if dice.roll(faults.task_failure_rate, "task_internal"):
            return "INTERNAL.BAD_OUTPUT.CODE01", "An unexpected error occurred while generating."
        if dice.roll(faults.safety_output_rate, "task_safety_output"):
            return "SAFETY.OUTPUT.VIDEO", "The output was flagged by content moderation."
        return None

    async def _resolve(self, uri: str, field: str, kind: str) -> str:
        """A runway:// upload, a data URI or a loopback URL -> a local file path."""
        if uri.startswith("runway://"):
            return self._from_upload(uri, field)
        if uri.startswith("data:"):
            return self._from_data_uri(uri, field, kind)
        if urlsplit(uri).scheme in ("http", "https"):
            return await self._from_url(uri, field, kind)
        raise Rejected(400, f"{field}: Invalid input (expected a runway://, data: or https URI)")

    def _from_upload(self, uri: str, field: str) -> str:
        state = self.state
        upload_id = uri[len("runway://"):].split("/")[-1] if uri.startswith("runway://uploads/") else ""
        with state.lock:
            up = state.uploads.get(upload_id)
        if up is None or up.path is None or time.monotonic() - up.created_mono > state.timing.upload_ttl_s:
            raise Rejected(400, f"{field}: unknown or expired runway:// URI")
        return up.path

    def _from_data_uri(self, uri: str, field: str, kind: str) -> str:
        header, _, payload = uri.partition(",")
        if ";base64" not in header or not header[5:].startswith(kind):
            raise Rejected(400, f"{field}: data URI must be data:{kind}/...;base64,")
        limit = _input_limit(kind)
        if len(payload) * 3 // 4 > limit:
            raise Rejected(400, f"{field}: data URI over {limit // 1_000_000} MB")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(400, f"{field}: Invalid input") from None
        return self._store_input(data, kind)

    async def _from_url(self, uri: str, field: str, kind: str) -> str:
        try:
            parts = urlsplit(uri)
            host, _ = parts.hostname, parts.port  # reading .port checks its range
        except ValueError:
            raise Rejected(400, f"{field}: Invalid input") from None
        if not is_loopback_host(host):
            raise Rejected(400, f"{field}: the emulator has no network; use a runway:// upload, "
                                "a data URI or a loopback URL")
        try:
            data = await self._fetch(uri, field, _input_limit(kind))
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError):
            raise Rejected(400, f"{field}: could not fetch the URL") from None
        return self._store_input(data, kind)

    async def _fetch(self, uri: str, field: str, limit: int) -> bytes:
        """The URL's body, read no further than `limit` bytes: a larger file is refused at the limit
        (before its first byte when its Content-Length says so), never read whole into memory."""
        async with self.http.stream("GET", uri) as resp:
            if resp.status_code != 200:
                raise Rejected(400, f"{field}: fetching the URL answered {resp.status_code}")
            ctype = resp.headers.get("content-type", "")
            if ctype.split(";")[0].strip() in ("application/octet-stream", "binary/octet-stream"):
                raise Rejected(400, f"{field}: Unsupported Content-Type response header")
            too_large = Rejected(400, f"{field}: file over {limit // 1_000_000} MB")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            data = bytearray()
            async for chunk in resp.aiter_bytes():  # decoded bytes: a compressed bomb stops at the limit too
                data += chunk
                if len(data) > limit:
                    raise too_large  # leaving the block closes the connection: the rest is never read
        return bytes(data)

    def _store_input(self, data: bytes, kind: str) -> str:
        digest = hashlib.sha256(data).hexdigest()[:32]
        path = self.state.workdir / "inputs" / f"{digest}.{'mp4' if kind == 'video' else 'img'}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return str(path)

    # -- tasks ---------------------------------------------------------------------------------
    async def get_task(self, request: Request) -> Response:
        task = self._task_or_404(request.path_params["task_id"])
        if self.flavor == "cometapi" and (task is None or time.monotonic() - task.created_mono < self.not_exist_s):
            # CometAPI knows a task only a moment after its create returned.
            return JSONResponse({"code": "task_not_exist", "message": "task_not_exist", "data": None},
                                status_code=400)
        if task is None:
            return _error(404, "Task not found")
        with self.state.lock:
            urls = [self._sign_output(task)] if task.status == "SUCCEEDED" else []
            body = task_json(task, urls)
            due = task.due_mono if task.status in ACTIVE else None
        if self.flavor == "cometapi":
            body = _cometapi_wrapper(body)
        # When this task next changes on its own, so a client reads it then and not before.
        headers = {TASK_DUE_HEADER: f"{max(0.0, due - time.monotonic()):.3f}"} if due is not None else None
        return JSONResponse(body, headers=headers)

    async def delete_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if not UUID_RE.match(task_id) or not self.state.cancel_or_delete(task_id):
            return _error(404, "Task not found")
        return Response(status_code=204)

    async def organization(self, request: Request) -> Response:
        s = self.state
        with s.lock:
            models = {m: {"maxConcurrentGenerations": s.limits.max_concurrent.get(m, 1),
                          "maxDailyGenerations": s.limits.max_daily.get(m, 10**9)} for m in s.models}
            usage = {m: {"dailyGenerations": s.daily_used(m)} for m in s.models}
            return JSONResponse({
                "creditBalance": int(s.limits.credit_balance),
                "tier": {"maxMonthlyCreditSpend": s.limits.max_monthly_spend, "models": models},
                "usage": {"models": usage},
            })

    async def usage(self, request: Request) -> Response:
        try:
            body = await _object_body(request, empty_ok=True)
        except _BadBody as bad:
            return bad.response
        today = utc_now().date()
        try:
            start = dt.date.fromisoformat(body.get("startDate") or (today - dt.timedelta(days=30)).isoformat())
            before = dt.date.fromisoformat(body.get("beforeDate") or (start + dt.timedelta(days=30)).isoformat())
        except (TypeError, ValueError):
            return _error(400, "startDate: expected YYYY-MM-DD")
        if before <= start or (before - start).days > 90:
            return _error(400, "beforeDate: must be after startDate and at most 90 days later")
        s = self.state
        results = []
        with s.lock:
            day = start
            while day < before:
                used = [{"model": m, "amount": round(c)} for (d, m), c in s.credits_used.items() if d == day.isoformat()]
                if used:
                    results.append({"date": day.isoformat(), "usedCredits": used})
                day += dt.timedelta(days=1)
            return JSONResponse({"models": list(s.models), "results": results})
