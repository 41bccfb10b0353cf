"""RunwayClient: the synchronous face of AsyncRunwayClient, method for method, typed. Its event
loop lives in a private thread (v2v_lab._sync.LoopThread, the bridge the sweep and the monitor
use too), so it works inside Jupyter as well, where the kernel's loop is already running."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from .._sync import LoopThread
from ._secret import Secret
from .catalog import Catalog
from .client import AsyncRunwayClient
from .polling import ProgressCallback
from .providers import Provider
from .responses import Organization
from .task import CreatedTask, Task
from .validation import GenerationRequest

__all__ = ["RunwayClient"]

T = TypeVar("T")


class RunwayClient:
    """Every AsyncRunwayClient call, blocking. Takes the same arguments (provider, base_url,
    api_key, timeout, max_retries, poll_interval, catalog, transport)."""

    def __init__(self, provider: str | None = None, **kwargs: Any):
        self._loop: LoopThread | None = LoopThread("v2v-client")

        async def build() -> AsyncRunwayClient:
            return AsyncRunwayClient(provider, **kwargs)

        try:
            self._async: AsyncRunwayClient = self._loop.call(build)
        except BaseException:
            self._loop.close()
            raise

    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        if self._loop is None:
            raise RuntimeError("this RunwayClient is closed")
        return self._loop.call(lambda: fn(*args, **kwargs))

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncRunwayClient", "RunwayClient")

    # -- what it is ---------------------------------------------------------------------------
    @property
    def provider(self) -> Provider:
        return self._async.provider

    @property
    def catalog(self) -> Catalog:
        return self._async.catalog

    @property
    def poll_interval(self) -> float:
        """Seconds between reads of a task: the provider's floor, a chosen interval, or the pace an
        emulator on this machine says its tasks move at."""
        return self._async.poll_interval

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def secrets(self) -> tuple[Secret, ...]:
        return self._async.secrets

    @property
    def requests_sent(self) -> int:
        return self._async.requests_sent

    # -- calls that need no request -----------------------------------------------------------
    def validate(self, request: GenerationRequest) -> float | None:
        return self._async.validate(request)

    def build_body(self, request: GenerationRequest, video_uri: str, reference_uris: list[str]) -> dict[str, Any]:
        return self._async.build_body(request, video_uri, reference_uris)

    def forget_uploads(self) -> None:
        self._async.forget_uploads()

    # -- the API -------------------------------------------------------------------------------
    def upload(self, path: str | os.PathLike[str]) -> str:
        return self._call(self._async.upload, path)

    def create(self, request: GenerationRequest, *, on_sending: Callable[[], None] | None = None) -> str:
        return self._call(self._async.create, request, on_sending=on_sending)

    def create_task(self, request: GenerationRequest, *, on_sending: Callable[[], None] | None = None
                    ) -> CreatedTask:
        """The task's id and the server's estimatedCost (the most it may charge)."""
        return self._call(self._async.create_task, request, on_sending=on_sending)

    def get_task(self, task_id: str) -> Task:
        return self._call(self._async.get_task, task_id)

    def cancel(self, task_id: str) -> None:
        self._call(self._async.cancel, task_id)

    delete = cancel

    def wait(self, task_id: str, *, on_progress: ProgressCallback | None = None, timeout: float | None = 900.0,
             not_exist_grace_s: float = 30.0) -> Task:
        return self._call(self._async.wait, task_id, on_progress=on_progress, timeout=timeout,
                          not_exist_grace_s=not_exist_grace_s)

    def download(self, task: Task | str, dest: str | os.PathLike[str], *, attempts: int | None = None) -> Path:
        return self._call(self._async.download, task, dest, attempts=attempts)

    def generate(self, request: GenerationRequest, out: str | os.PathLike[str], *,
                 on_progress: ProgressCallback | None = None, timeout: float | None = 900.0) -> Task:
        return self._call(self._async.generate, request, out, on_progress=on_progress, timeout=timeout)

    def organization(self) -> Organization:
        return self._call(self._async.organization)

    def usage(self, start_date: dt.date | str | None = None, before_date: dt.date | str | None = None) -> Any:
        return self._call(self._async.usage, start_date, before_date)

    # -- its life --------------------------------------------------------------------------------
    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            try:
                loop.call(self._async.aclose)
            finally:
                loop.close()

    def __enter__(self) -> RunwayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
