"""The one bridge from synchronous code to v2v-lab's async core.

Everything async here (the client, a sweep) runs on an asyncio loop. Synchronous callers reach it
three ways, all through LoopThread, a loop of its own on a private thread:
- run_blocking: run one coroutine to its end. With no loop running in this thread (a script, the
  CLI) that is plain asyncio.run, which keeps Ctrl-C's usual meaning; inside a running loop (a
  Jupyter kernel) the coroutine runs on a LoopThread and its result or error comes back here.
- run_in_background: the same on a LoopThread, returning at once with a Future (SweepMonitor).
- a long-lived LoopThread whose loop keeps objects bound to it between calls (RunwayClient: its
  httpx connections belong to one loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread", "run_blocking", "run_in_background"]

MakeCoroutine = Callable[[], Coroutine[Any, Any, T]]


class LoopThread:
    """An asyncio loop running on a daemon thread of its own until close()."""

    def __init__(self, name: str = "v2v-loop"):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # As asyncio.run ends: what is left is cancelled and awaited, then the executors and
            # async generators are shut down, so no thread of ours outlives the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def submit(self, make: MakeCoroutine[T]) -> Future[T]:
        """Start make() on this loop (it is called there, so what it builds binds to this loop)."""

        async def on_loop() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop)

    def call(self, make: MakeCoroutine[T]) -> T:
        """make()'s result, waited for; its exception is raised here."""
        return self.submit(make).result()

    def stop(self) -> None:
        """Ask the loop to end after what it is doing now; callable from any thread, its own too."""
        with contextlib.suppress(RuntimeError):  # already closed: nothing to stop
            self._loop.call_soon_threadsafe(self._loop.stop)

    def close(self) -> None:
        """Stop the loop and wait for its thread to end."""
        self.stop()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_in_background(make: MakeCoroutine[T], thread_name: str = "v2v-background") -> Future[T]:
    """make() run to its end on a LoopThread of its own; the thread ends with it."""
    worker = LoopThread(thread_name)
    future = worker.submit(make)
    future.add_done_callback(lambda _: worker.stop())
    return future


def run_blocking(make: MakeCoroutine[T], thread_name: str = "v2v-sync") -> T:
    """make() run to its end from synchronous code (see the module's docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with LoopThread(thread_name) as worker:
        return worker.call(make)
