"""Sending local inputs: a file uploaded once per client and its runway:// URI reused while it
lives, or, where a provider has no uploads, the file inline as a data URI within its size limit."""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from ..errors import ConnectionFailedError, InputError
from ._retry import TRANSPORT_ERRORS, RetryLater, RetryPolicy, with_retries
from ._secret import Secret
from .providers import Provider
from .responses import status_error
from .retry_policy import Action, status_rule

__all__ = ["UPLOAD_REUSE_S", "UploadCache", "as_data_uri", "post_to_storage"]

UPLOAD_REUSE_S = 23 * 3600  # runway:// URIs live 24 h; a reused one keeps an hour to spare


class UploadCache:
    """Upload a file once and reuse its runway:// URI while it lives.

    A sweep sends the same source with every cell; uploading it each time costs a request and
    the bytes per cell. Concurrent cells wait for one upload. The key includes mtime and size,
    so an edited file is uploaded again.
    """

    def __init__(self) -> None:
        self._uris: dict[tuple[str, int, int], tuple[str, float]] = {}
        self._locks: dict[tuple[str, int, int], asyncio.Lock] = {}

    async def uri_of(self, path: str, upload: Callable[[str], Awaitable[str]]) -> str:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit = self._uris.get(key)
            if hit is not None and time.monotonic() - hit[1] < UPLOAD_REUSE_S:
                return hit[0]
            uri = await upload(path)
            self._uris[key] = (uri, time.monotonic())
            return uri

    def forget(self) -> None:
        """After the endpoint refused a held URI (expired, or an emulator restarted)."""
        self._uris.clear()


async def as_data_uri(path: str, provider: Provider, field: str, kind: str) -> str:
    size = os.path.getsize(path)
    if size > provider.max_data_uri_bytes:
        raise InputError(field, path, f"a file of at most {provider.max_data_uri_bytes // 1_000_000} MB "
                         f"as a data URI on {provider.name} (no uploads there); or an https URL")
    mime = mimetypes.guess_type(path)[0] or ("video/mp4" if kind == "video" else "image/png")
    data = await asyncio.to_thread(Path(path).read_bytes)
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def post_to_storage(http: httpx.AsyncClient, slot: dict, filename: str, data: bytes, mime: str,
                          retry: RetryPolicy, key: Secret) -> None:
    """The second step of an upload: the bytes to the storage URL the slot names (no API key there).
    Transient failures are retried within the policy; storage keeps nothing billable."""

    async def attempt(n: int) -> None:
        try:
            resp = await http.post(slot["uploadUrl"], data=slot.get("fields") or {},
                                   files={"file": (filename, data, mime)})
        except TRANSPORT_ERRORS:
            raise RetryLater(ConnectionFailedError("upload: the storage POST failed")) from None
        if resp.status_code < 300:
            return
        if status_rule(resp.status_code).action is Action.RETRY_REQUEST:
            raise RetryLater(status_error(resp, key))
        raise status_error(resp, key)

    await with_retries(retry, attempt)
