"""The narrow interface waiting (polling.py) and downloading (download.py) take: a task read, the
provider it goes to, the pace and retry policy, and an HTTP client for URLs that take no key.
AsyncRunwayClient is one; they never import the client, so the client imports them one way."""

from __future__ import annotations

from typing import Protocol

import httpx

from ._retry import RetryPolicy
from .providers import Provider
from .task import Task

__all__ = ["TaskSource"]


class TaskSource(Protocol):
    @property
    def provider(self) -> Provider: ...

    @property
    def poll_interval(self) -> float:
        """Seconds between reads of one task (the provider's floor, or more)."""

    def task_due(self, task_id: str) -> float | None:
        """When the endpoint said the task next changes status (monotonic time), if it said so."""

    @property
    def retry(self) -> RetryPolicy: ...

    @property
    def http_plain(self) -> httpx.AsyncClient:
        """For URLs that take no API key (outputs): the key is never sent there."""

    async def get_task(self, task_id: str) -> Task: ...
