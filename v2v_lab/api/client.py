"""RunwayClient (sync) and AsyncRunwayClient: one implementation on httpx for every provider."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import mimetypes
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.from_thread
import httpx

from .._failpoints import failpoint
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    DownloadError,
    InputError,
    MediaError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from ..media.probe import probe_video
from ._retry import NOT_SENT_ERRORS, RETRY_STATUSES, TRANSPORT_ERRORS, RetryPolicy, retry_after_seconds
from ._secret import Secret, redact
from .catalog import RUNWAY_API_VERSION, Catalog, load_catalog
from .providers import BASE_URL_ENV, Provider, get_provider
from .task import Task, TaskStatus, is_task_not_exist, parse_task
from .validation import GenerationRequest, check_model, is_local_path, validate_request

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
UPLOAD_REUSE_S = 23 * 3600  # runway:// URIs live 24 h; a reused one keeps an hour to spare
ProgressCallback = Callable[[Task], None]


@dataclass(frozen=True)
class ModelLimits:
    max_concurrent: int
    max_daily: int
    daily_used: int


UNPARSEABLE_TASK_LIMIT = 10  # task reads in a row whose body is not a task before wait() gives up


@dataclass(frozen=True)
class Organization:
    credit_balance: float
    max_monthly_spend: int | None
    models: dict[str, ModelLimits]


def _status_error(response: httpx.Response, key: Secret | None, request: str = "") -> APIError:
    """The typed error for an error status; its message names the request (method and path, never
    a query string, which may hold a signature) and the endpoint's own words, with any key redacted."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    message = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else str(body)
    message = redact(message or f"HTTP {response.status_code}", key)
    code = response.status_code
    cls: type[APIError]
    if code == 400:
        error = BadRequestError(message, status_code=code, body=body)
        if request:  # the field: reason parse stays on the endpoint's own words
            error.args = (f"{request}: HTTP 400: {message}",)
        return error
    cls = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError, 429: RateLimitError}.get(
        code, ServerError if code >= 500 else APIError)
    where = f"{request}: " if request else ""
    return cls(f"{where}HTTP {code}: {message}", status_code=code, body=body)


class AsyncRunwayClient:
    """Async client for Runway's video_to_video API, CometAPI's proxy of it, and the local emulator.

    provider: "runway" | "cometapi" | "local" | None (None: the provider whose key is set, else local).
    The client only talks to the endpoint it is given (base_url, V2V_LAB_BASE_URL or the
    provider's), or to an httpx transport (in-process use, as the runwayml SDK takes http_client=).
    Provider "local" needs one: Emulator().client(), or an emulator's base_url.
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        poll_interval: float | None = None,
        catalog: Catalog | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.provider: Provider = get_provider(provider)
        self.catalog = catalog or load_catalog()
        base = base_url or os.environ.get(BASE_URL_ENV) or self.provider.base_url
        key = self.provider.require_key(api_key)
        if base is not None:
            field = "base_url" if base_url else (BASE_URL_ENV if os.environ.get(BASE_URL_ENV) else "provider")
            base = self.provider.check_base_url(str(base), field)
        if self.provider.name == "local":
            if base is None:
                raise InputError("base_url", None, "the endpoint of a running emulator for provider local: "
                                 "Emulator().client(), `v2v-lab emulator` and --base-url, or V2V_LAB_BASE_URL")
            key = key or "key_local_emulator"
        if not key:  # a free provider that still needs some bearer key
            raise InputError("api_key", None, f"a key in {self.provider.key_env} (or api_key=...) "
                             f"for provider {self.provider.name}")
        self.base_url = str(base).rstrip("/")
        self._key = Secret(key)
        self.poll_interval = max(self.provider.min_poll_interval_s, poll_interval or self.provider.min_poll_interval_s)
        backoff = 0.5 if self.provider.paid else 0.02
        self.retry = RetryPolicy(max_retries=max_retries, base_s=backoff, cap_s=8.0 if self.provider.paid else 0.5)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=5.0)
        self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=transport, headers={
            "X-Runway-Version": RUNWAY_API_VERSION, "User-Agent": "v2v-lab"})
        self._plain = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=transport)
        self.requests_sent = 0
        self._uploads: dict[tuple[str, int, int], tuple[str, float]] = {}
        self._upload_locks: dict[tuple[str, int, int], asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"AsyncRunwayClient(provider={self.provider.name!r}, base_url={self.base_url!r}, api_key=***)"

    # -- plumbing -------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.reveal()}"}

    @property
    def secrets(self) -> tuple[Secret, ...]:
        """What a writer must redact from anything it stores (the key, kept wrapped)."""
        return (self._key,)

    async def _send(self, method: str, path: str, *, json: Any = None, create: bool = False) -> httpx.Response:
        """One API call with the retry rules: reads and deletes retry transient failures;
        a create retries only when it provably did not reach the server (refused) or got a 429."""
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                self.requests_sent += 1
                response = await self._http.request(method, url, json=json, headers=self._auth())
            except NOT_SENT_ERRORS as exc:
                if attempt < self.retry.max_retries:
                    await asyncio.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise ConnectionFailedError(f"{method} {path}: could not connect ({type(exc).__name__})") from None
            except TRANSPORT_ERRORS as exc:
                if create:
                    raise CreateOutcomeUnknownError(f"POST {path}: no answer", cause=type(exc).__name__) from None
                if attempt < self.retry.max_retries:
                    await asyncio.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise ConnectionFailedError(f"{method} {path}: {type(exc).__name__} after {attempt + 1} tries") from None
            code = response.status_code
            if code < 400:
                return response
            if code in RETRY_STATUSES:
                if create and code != 429:
                    raise CreateOutcomeUnknownError(f"POST {path}: HTTP {code}", cause=f"HTTP {code}")
                if attempt < self.retry.max_retries:
                    await asyncio.sleep(self.retry.delay(attempt, retry_after_seconds(response)))
                    attempt += 1
                    continue
            raise _status_error(response, self._key, f"{method} {urlsplit(url).path}")

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._send(method, path, **kw)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise APIError(f"{method} {path}: answer is not JSON", status_code=response.status_code) from None

    # -- inputs -----------------------------------------------------------------------------------
    async def upload(self, path: str | os.PathLike[str]) -> str:
        """Upload a local file (ephemeral, 24 h) and return its runway:// URI."""
        p = Path(path)
        if not p.is_file():
            raise MediaError("file", str(path), "an existing file")
        if not self.provider.has_uploads:
            raise InputError("file", str(path), f"an https URL or data URI ({self.provider.name} has no uploads)")
        info = await self._json("POST", "/v1/uploads", json={"filename": p.name, "type": "ephemeral"})
        mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        data = await asyncio.to_thread(p.read_bytes)
        for attempt in range(self.retry.max_retries + 1):
            try:
                resp = await self._plain.post(info["uploadUrl"], data=info.get("fields") or {},
                                              files={"file": (p.name, data, mime)})
            except TRANSPORT_ERRORS:
                if attempt == self.retry.max_retries:
                    raise ConnectionFailedError("upload: the storage POST failed") from None
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if resp.status_code < 300:
                return str(info["runwayUri"])
            if resp.status_code in RETRY_STATUSES and attempt < self.retry.max_retries:
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            raise _status_error(resp, self._key)
        raise AssertionError("unreachable")

    async def _cached_upload(self, path: str) -> str:
        """Upload a file once and reuse its runway:// URI while it lives.

        A sweep sends the same source with every cell; uploading it each time costs a request and
        the bytes per cell. Concurrent cells wait for one upload. The key includes mtime and size,
        so an edited file is uploaded again.
        """
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        lock = self._upload_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._uploads.get(key)
            if hit is not None and time.monotonic() - hit[1] < UPLOAD_REUSE_S:
                return hit[0]
            uri = await self.upload(path)
            self._uploads[key] = (uri, time.monotonic())
            return uri

    def forget_uploads(self) -> None:
        self._uploads.clear()

    async def _materialize(self, value: str, field: str, kind: str) -> str:
        """A local path becomes a runway:// upload, or a data URI where the provider has no uploads."""
        if not is_local_path(value):
            return value
        if self.provider.has_uploads:
            return await self._cached_upload(value)
        size = os.path.getsize(value)
        if size > self.provider.max_data_uri_bytes:
            raise InputError(field, value, f"a file of at most {self.provider.max_data_uri_bytes // 1_000_000} MB "
                             f"as a data URI on {self.provider.name} (no uploads there); or an https URL")
        mime = mimetypes.guess_type(value)[0] or ("video/mp4" if kind == "video" else "image/png")
        data = await asyncio.to_thread(Path(value).read_bytes)
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"

    def validate(self, request: GenerationRequest) -> float | None:
        """All checks that cost no request; raises InputError naming the field. Returns input seconds."""
        return validate_request(request, self.catalog, self.provider)

    def build_body(self, request: GenerationRequest, video_uri: str, reference_uris: list[str]) -> dict[str, Any]:
        spec = check_model(self.catalog, request.model, self.provider)
        body: dict[str, Any] = {"model": request.model, spec.video_field: video_uri}
        if request.prompt is not None:
            body["promptText"] = request.prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.ratio is not None:
            body["ratio"] = request.ratio
        if reference_uris:
            body["references"] = [{"type": "image", "uri": u} for u in reference_uris]
        if request.content_moderation:
            body["contentModeration"] = dict(request.content_moderation)
        if request.keyframes:
            body["keyframes"] = [dict(k) for k in request.keyframes]
        if request.target_aspect_ratio:
            body["targetAspectRatio"] = request.target_aspect_ratio
        return body

    # -- tasks -----------------------------------------------------------------------------------
    async def create(self, request: GenerationRequest, *, on_sending: Callable[[], None] | None = None) -> str:
        """Validate, upload local inputs, then POST once. Returns the task id.

        on_sending runs right before the create is sent (a journal marks the cell 'sending' there).
        Raises CreateOutcomeUnknownError when the create was sent and no clear answer came back.
        """
        await asyncio.to_thread(self.validate, request)
        uses_uploads = self.provider.has_uploads and any(
            is_local_path(v) for v in (request.video, *request.references, *(kf["uri"] for kf in request.keyframes)))
        for attempt in (1, 2):
            body = await self._request_body(request)
            if on_sending:
                on_sending()
            try:
                answer = await self._json("POST", "/v1/video_to_video", json=body, create=True)
                break
            except BadRequestError as exc:
                # A reused runway:// URI the server no longer knows (expired, or a restarted
                # emulator): the 400 means no task was made, so upload afresh and send once more.
                if attempt == 2 or not uses_uploads or "runway://" not in str(exc):
                    raise
                self.forget_uploads()
        if not isinstance(answer, dict) or "id" not in answer:
            raise CreateOutcomeUnknownError("POST /v1/video_to_video: answer has no task id", cause="bad body")
        return str(answer["id"])

    async def _request_body(self, request: GenerationRequest) -> dict[str, Any]:
        video = await self._materialize(request.video, "video", "video")
        refs = [await self._materialize(r, f"references[{k}]", "image") for k, r in enumerate(request.references)]
        kfs = []
        for k, kf in enumerate(request.keyframes):
            kfs.append({**kf, "uri": await self._materialize(kf["uri"], f"keyframes[{k}].uri", "image")})
        return self.build_body(GenerationRequest(**{**request.__dict__, "keyframes": tuple(kfs)}), video, refs)

    async def get_task(self, task_id: str) -> Task:
        return parse_task(await self._json("GET", f"/v1/tasks/{task_id}"), task_id)

    async def cancel(self, task_id: str) -> None:
        """DELETE: cancels a queued or running task, deletes a finished one."""
        await self._json("DELETE", f"/v1/tasks/{task_id}")

    delete = cancel

    async def wait(
        self,
        task_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = 900.0,
        not_exist_grace_s: float = 30.0,
    ) -> Task:
        """Poll until SUCCEEDED, FAILED or CANCELLED and return the Task (failed ones too).

        Polls start at the provider's floor (5 s on real providers, as Runway asks) and back off to
        4x while queued, with jitter. Transient poll errors are retried until the timeout. On timeout,
        WaitTimeoutError carries the task id: wait(task_id) again takes it up where it was.
        """
        start = time.monotonic()
        interval = self.poll_interval
        last: Task | None = None
        bad_bodies = 0
        while True:
            task: Task | None
            try:
                task = await self.get_task(task_id)
            except (ServerError, RateLimitError, ConnectionFailedError):
                task = last
            except (NotFoundError, BadRequestError, APIError) as exc:
                # CometAPI says task_not_exist for a few seconds after a create.
                if is_task_not_exist(getattr(exc, "body", "")) and time.monotonic() - start < not_exist_grace_s:
                    task = Task(task_id, TaskStatus.PENDING)
                else:
                    raise
            except ValueError as exc:
                # A body that is not a task: once may be a proxy's hiccup; again and again is an
                # endpoint that will never answer with one, and polling it forever helps nobody.
                bad_bodies += 1
                if bad_bodies >= UNPARSEABLE_TASK_LIMIT:
                    raise APIError(f"GET /v1/tasks/{task_id}: {bad_bodies} answers in a row are not a task "
                                   f"({exc})") from None
                task = last
            else:
                bad_bodies = 0
            if task is not None:
                if on_progress and (last is None or (task.status, task.progress) != (last.status, last.progress)):
                    on_progress(task)
                last = task
                if task.terminal:
                    return task
                if task.status is TaskStatus.RUNNING:
                    interval = self.poll_interval
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise WaitTimeoutError(task_id, waited, last.status.value if last else None)
            sleep = max(self.poll_interval, interval * random.uniform(0.8, 1.2))
            if timeout is not None:
                sleep = min(sleep, max(0.0, timeout - waited))
            await asyncio.sleep(sleep)
            interval = min(interval * 1.5, self.poll_interval * 4)

    async def download(self, task: Task | str, dest: str | os.PathLike[str], *, attempts: int | None = None) -> Path:
        """Stream the first output to dest at once (URLs expire), check its length, prove it decodes.

        A truncated transfer is retried; an expired URL is refreshed by reading the task again.
        """
        if isinstance(task, str):
            task = await self.get_task(task)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        attempts = attempts or max(3, self.retry.max_retries + 1)
        last_error = "no output URL"
        for attempt in range(attempts):
            if not task.output:
                task = await self.get_task(task.id)
                if not task.output:
                    raise DownloadError(f"task {task.id} ({task.status.value}) has no output to download")
            try:
                async with self._plain.stream("GET", task.output[0]) as resp:
                    if resp.status_code in (403, 404, 410):
                        last_error = f"output URL answered {resp.status_code} (expired?)"
                        task = await self.get_task(task.id)
                        continue
                    if resp.status_code >= 400:
                        last_error = f"output URL answered {resp.status_code}"
                        await asyncio.sleep(self.retry.delay(attempt))
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
            await asyncio.sleep(self.retry.delay(attempt))
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise DownloadError(f"task {task.id}: output not downloaded after {attempts} tries: {last_error}")

    async def generate(
        self,
        request: GenerationRequest,
        out: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = 900.0,
    ) -> Task:
        """create + wait + download. A failed task raises TaskFailedError (with the task on it)."""
        task_id = await self.create(request)
        task = await self.wait(task_id, on_progress=on_progress, timeout=timeout)
        if task.status is not TaskStatus.SUCCEEDED:
            raise TaskFailedError(task)
        await self.download(task, out)
        return task

    # -- organization ---------------------------------------------------------------------------
    async def organization(self) -> Organization:
        body = await self._json("GET", "/v1/organization")
        tier_models = (body.get("tier") or {}).get("models") or {}
        usage = (body.get("usage") or {}).get("models") or {}
        models = {
            m: ModelLimits(int(v.get("maxConcurrentGenerations", 1)), int(v.get("maxDailyGenerations", 0)),
                           int((usage.get(m) or {}).get("dailyGenerations", 0)))
            for m, v in tier_models.items()
        }
        return Organization(float(body.get("creditBalance", 0)),
                            (body.get("tier") or {}).get("maxMonthlyCreditSpend"), models)

    async def usage(self, start_date: dt.date | str | None = None, before_date: dt.date | str | None = None) -> Any:
        body: dict[str, str] = {}
        if start_date:
            body["startDate"] = str(start_date)
        if before_date:
            body["beforeDate"] = str(before_date)
        return await self._json("POST", "/v1/organization/usage", json=body)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._plain.aclose()

    async def __aenter__(self) -> AsyncRunwayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RunwayClient:
    """The sync face of AsyncRunwayClient. Its event loop lives in a private thread (an anyio
    blocking portal), so it works inside Jupyter, where the kernel's loop is already running."""

    def __init__(self, provider: str | None = None, **kwargs: Any):
        portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = portal_cm.__enter__()
        try:
            self._async: AsyncRunwayClient = self._portal.call(partial(AsyncRunwayClient, provider, **kwargs))
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        self._portal_cm: contextlib.AbstractContextManager[Any] | None = portal_cm

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncRunwayClient", "RunwayClient")

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._async, name)
        if asyncio.iscoroutinefunction(attr):
            return lambda *a, **k: self._portal.call(partial(attr, *a, **k))
        return attr

    def close(self) -> None:
        portal_cm, self._portal_cm = self._portal_cm, None
        if portal_cm is not None:
            self._portal.call(self._async.aclose)
            portal_cm.__exit__(None, None, None)

    def __enter__(self) -> RunwayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
