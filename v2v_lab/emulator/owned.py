"""An emulator owned by the caller that needs one: a sweep or `generate` on provider "local"
with no endpoint named starts one for its own life. The API client never starts one itself: it
only ever talks to a base URL (or an httpx transport) it is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._env import env_text
from ..api.providers import BASE_URL_ENV, get_provider
from .server import Emulator

__all__ = ["local_endpoint", "start_local_emulator"]


def start_local_emulator(provider: str | None, base_url: str | None, **options: Any) -> Emulator | None:
    """A started emulator when provider is local and no endpoint is named (argument or
    V2V_LAB_BASE_URL); None otherwise. The caller stops it."""
    if get_provider(provider).name != "local" or base_url or env_text(BASE_URL_ENV):
        return None
    return Emulator(**options).start()


@contextmanager
def local_endpoint(provider: str | None, base_url: str | None, **options: Any) -> Iterator[str | None]:
    """The base URL to use for the block: the one named, or an emulator's started for the block."""
    emulator = start_local_emulator(provider, base_url, **options)
    try:
        yield emulator.base_url if emulator else base_url
    finally:
        if emulator is not None:
            emulator.stop()
