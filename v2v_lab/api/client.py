"""AsyncRunwayClient: the generic flow on httpx (validate, upload, send with the retry policy, wait,
download) for every provider; what differs between providers is their adapter (providers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import math
import mimetypes
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._net import EMULATOR_TASK_PACE_S, TASK_DUE_HEADER, TASK_PACE_HEADER, is_loopback_host
from ..errors import (
    APIError,
    BadRequestError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    InputError,
    MediaError,
    TaskFailedError,
)
from ._retry import (
    NOT_SENT_ERRORS,
    TRANSPORT_ERRORS,
    RetryLater,
    RetryPolicy,
    retry_after_seconds,
    with_retries,
)
from ._secret import Secret
from .catalog import Catalog, load_catalog
from .download import download_output
from .polling import ProgressCallback, wait_for_task
from .providers import Provider, get_provider
from .responses import Organization, parse_organization, received_json, status_error
from .retry_policy import Action, Transport, status_rule, transport_rule
from .task import CreatedTask, Task, TaskStatus
from .uploads import UploadCache, as_data_uri, post_to_storage
from .validation import GenerationRequest, check_model, is_local_path, validate_request

__all__ = ["DEFAULT_TIMEOUT", "AsyncRunwayClient"]


DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class AsyncRunwayClient:
    """Async client for Runway's video_to_video API, CometAPI's proxy of it, and the local emulator.

    provider: a name in provider_names.py, or None (the provider whose key is set, else local).
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
        key = self.provider.bearer_key(api_key)
        self.base_url = self.provider.endpoint(base_url).rstrip("/")
        self._key = Secret(key)
        self.poll_interval = max(self.provider.min_poll_interval_s, poll_interval or self.provider.min_poll_interval_s)
        # An emulator on this machine may say its tasks move faster (_net.TASK_PACE_HEADER): taken
        # unless the caller chose an interval; an endpoint elsewhere is never believed.
        self._pace_from_server = poll_interval is None and is_loopback_host(urlsplit(self.base_url).hostname)
        self.retry: RetryPolicy = self.provider.retry_policy(max_retries)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=5.0)
        self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=transport, headers={
            **self.provider.default_headers(), "User-Agent": "v2v-lab"})
        # For URLs that take no API key (upload storage, outputs): the key is never sent there.
        self.http_plain = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=transport)
        self.requests_sent = 0
        self._uploads = UploadCache()
        self._due: dict[str, float] = {}  # task id -> when the endpoint said it next changes (monotonic)

    def __repr__(self) -> str:
        return f"AsyncRunwayClient(provider={self.provider.name!r}, base_url={self.base_url!r}, api_key=***)"

    # -- plumbing -------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return self.provider.auth_headers(self._key.reveal())

    @property
    def account(self) -> str:
        """Who this client spends for: provider, endpoint, a hash of the key (never the key itself)."""
        digest = hashlib.sha256(self._key.reveal().encode()).hexdigest()[:16]
        return f"{self.provider.name}|{self.base_url}|{digest}"

    @property
    def secrets(self) -> tuple[Secret, ...]:
        """What a writer must redact from anything it stores (the key, kept wrapped)."""
        return (self._key,)

    async def _send(self, method: str, path: str, *, json: Any = None, create: bool = False) -> httpx.Response:
        """One API call, retried as the retry policy says (retry_policy.py): reads and deletes
        retry transient failures; a create only when it provably made no task (not sent, or a 429)."""
        url = f"{self.base_url}{path}"

        async def attempt(n: int) -> httpx.Response:
            self.requests_sent += 1
            try:
                response = await self._http.request(method, url, json=json, headers=self._auth())
            except NOT_SENT_ERRORS as exc:
                raise RetryLater(ConnectionFailedError(
                    f"{method} {path}: could not connect ({type(exc).__name__})")) from None
            except TRANSPORT_ERRORS as exc:
                if transport_rule(Transport.NO_ANSWER, create=create).task_may_exist:
                    raise CreateOutcomeUnknownError(f"POST {path}: no answer", cause=type(exc).__name__) from None
                raise RetryLater(ConnectionFailedError(
                    f"{method} {path}: {type(exc).__name__} after {n + 1} tries")) from None
            code = response.status_code
            if code < 400:
                self._note_pace(response)
                return response
            error = status_error(response, self._key, f"{method} {urlsplit(url).path}")
            rule = status_rule(code, create=create)
            if rule.action is Action.RETRY_REQUEST:
                raise RetryLater(error, retry_after_seconds(response))
            if rule.task_may_exist:  # a create's 5xx or 408
                raise CreateOutcomeUnknownError(f"POST {path}: HTTP {code}", cause=f"HTTP {code}")
            raise error

        return await with_retries(self.retry, attempt)

    def _note_pace(self, response: httpx.Response) -> None:
        said = response.headers.get(TASK_PACE_HEADER) if self._pace_from_server else None
        if said is not None:
            with contextlib.suppress(ValueError):
                pace = float(said)
                if math.isfinite(pace):
                    self.poll_interval = min(self.poll_interval, max(EMULATOR_TASK_PACE_S, pace))

    def _note_due(self, task_id: str, response: httpx.Response) -> None:
        """What an emulator on this machine said of when the task next changes (TASK_DUE_HEADER)."""
        said = response.headers.get(TASK_DUE_HEADER) if self._pace_from_server else None
        due = None
        if said is not None:
            with contextlib.suppress(ValueError):
                seconds = float(said)
                if math.isfinite(seconds) and seconds >= 0:
                    due = time.monotonic() + seconds
        if due is None:
            self._due.pop(task_id, None)
        else:
            self._due[task_id] = due

    def task_due(self, task_id: str) -> float | None:
        """When the endpoint said, at its last read of the task, that the task next changes status
        (monotonic time); None when it did not say (every provider but an emulator on loopback)."""
        return self._due.get(task_id)

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._parsed(method, path, await self._send(method, path, **kw))

    def _parsed(self, method: str, path: str, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return received_json(response, self._key)
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
        info = await self._json("POST", self.provider.uploads_path(), json={"filename": p.name, "type": "ephemeral"})
        mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        data = await asyncio.to_thread(p.read_bytes)
        await post_to_storage(self.http_plain, info, p.name, data, mime, self.retry, self._key)
        return str(info["runwayUri"])

    def forget_uploads(self) -> None:
        self._uploads.forget()

    async def _materialize(self, value: str, field: str, kind: str) -> str:
        """A local path becomes a runway:// upload, or a data URI where the provider has no uploads."""
        if not is_local_path(value):
            return value
        if self.provider.has_uploads:
            return await self._uploads.uri_of(value, self.upload)
        return await as_data_uri(value, self.provider, field, kind)

    def validate(self, request: GenerationRequest) -> float | None:
        """All checks that cost no request; raises InputError naming the field. Returns input seconds."""
        return validate_request(request, self.catalog, self.provider)

    def build_body(self, request: GenerationRequest, video_uri: str, reference_uris: list[str]) -> dict[str, Any]:
        spec = check_model(self.catalog, request.model, self.provider)
        return self.provider.build_body(request, spec, video_uri, reference_uris)

    # -- tasks -----------------------------------------------------------------------------------
    async def create(self, request: GenerationRequest, *, on_sending: Callable[[], None] | None = None) -> str:
        """Validate, upload local inputs, then POST once. Returns the task id (create_task: its
        estimatedCost too)."""
        return (await self.create_task(request, on_sending=on_sending)).id

    async def create_task(self, request: GenerationRequest, *, on_sending: Callable[[], None] | None = None
                          ) -> CreatedTask:
        """Validate, upload local inputs, then POST once. Returns the task id and the server's
        estimatedCost.

        on_sending runs right before the create is sent (a journal marks the cell 'sending' there).
        Raises CreateOutcomeUnknownError when the create was sent and no clear answer came back.
        """
        await asyncio.to_thread(self.validate, request)
        uses_uploads = self.provider.has_uploads and any(
            is_local_path(v) for v in (request.video, *request.references, *(kf["uri"] for kf in request.keyframes)))
        path = self.provider.create_path(request)
        for attempt in (1, 2):
            body = await self._request_body(request)
            if on_sending:
                on_sending()
            try:
                answer = await self._json("POST", path, json=body, create=True)
                break
            except BadRequestError as exc:
                # A reused runway:// URI the server no longer knows (Runway's 24 h have passed,
                # whatever the cause): the 400 means no task was made, so upload afresh and send
                # once more. This is the upload's rule on every provider; what a free endpoint that
                # forgot a task means for a cell is decided in one place, sweeps/cell.py.
                if attempt == 2 or not uses_uploads or "runway://" not in str(exc):
                    raise
                self.forget_uploads()
        created = self.provider.parse_created(answer)
        if created is None:
            raise CreateOutcomeUnknownError(f"POST {path}: answer has no task id", cause="bad body")
        return created

    async def _request_body(self, request: GenerationRequest) -> dict[str, Any]:
        video = await self._materialize(request.video, "video", "video")
        refs = [await self._materialize(r, f"references[{k}]", "image") for k, r in enumerate(request.references)]
        kfs = []
        for k, kf in enumerate(request.keyframes):
            kfs.append({**kf, "uri": await self._materialize(kf["uri"], f"keyframes[{k}].uri", "image")})
        options = dict(request.options)
        spec = self.catalog[request.model]
        for name, value in request.options.items():
            if spec.fields[name].type == "list":  # a local reference video or audio goes as the source does
                kind = "video" if spec.fields[name].items == "video" else "media"
                options[name] = [await self._materialize_item(v, f"{name}[{k}]", kind) for k, v in enumerate(value)]
        request = GenerationRequest(**{**request.__dict__, "keyframes": tuple(kfs), "options": options})
        return self.build_body(request, video, refs)

    async def _materialize_item(self, item: Any, field: str, kind: str) -> Any:
        if isinstance(item, dict):
            return {**item, "uri": await self._materialize(item["uri"], field, kind)}
        return await self._materialize(item, field, kind)

    async def get_task(self, task_id: str) -> Task:
        path = self.provider.task_path(task_id)
        response = await self._send("GET", path)
        self._note_due(task_id, response)
        return self.provider.parse_task(self._parsed("GET", path, response), task_id)

    async def cancel(self, task_id: str) -> None:
        """DELETE: cancels a queued or running task, deletes a finished one."""
        await self._json("DELETE", self.provider.task_path(task_id))

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
        return await wait_for_task(self, task_id, on_progress=on_progress, timeout=timeout,
                                   not_exist_grace_s=not_exist_grace_s)

    async def download(self, task: Task | str, dest: str | os.PathLike[str], *, attempts: int | None = None) -> Path:
        """Stream the first output to dest at once (URLs expire), check its length, prove it decodes.
        A truncated transfer is retried; an expired URL is refreshed by reading the task again."""
        return await download_output(self, task, dest, attempts=attempts)

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
        return parse_organization(await self._json("GET", self.provider.organization_path()))

    async def usage(self, start_date: dt.date | str | None = None, before_date: dt.date | str | None = None) -> Any:
        body: dict[str, str] = {}
        if start_date:
            body["startDate"] = str(start_date)
        if before_date:
            body["beforeDate"] = str(before_date)
        return await self._json("POST", self.provider.usage_path(), json=body)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.http_plain.aclose()

    async def __aenter__(self) -> AsyncRunwayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
