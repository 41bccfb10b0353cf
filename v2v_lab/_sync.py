"""Running a coroutine to its end from synchronous code, also where an event loop already runs
(a Jupyter kernel): there it runs on a private thread, and its result or error comes back here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_blocking"]


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]], thread_name: str = "v2v-sync") -> T:
    """make: builds the coroutine (called on the thread that runs it, so it binds to that loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=thread_name)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
