"""The one bridge from synchronous code to v2v-lab's async core.

Everything async here (the client, a sweep) runs on an asyncio loop. Synchronous callers reach it
three ways, all through LoopThread, a loop of its own on a private thread:
- run_blocking: run one coroutine to its end. With no loop running in this thread (a script, the
  CLI) that is plain asyncio.run, which keeps Ctrl-C's usual meaning; inside a running loop (a
  Jupyter kernel) the coroutine runs on a LoopThread and its result or error comes back here.
- run_in_background: the same on a LoopThread, returning at once with a Future (SweepMonitor).
- a long-lived LoopThread whose loop keeps objects bound to it between calls (RunwayClient: its
  httpx connections belong to one loop).

And the other way, blocking calls made from the loop (asyncio.to_thread) run on DaemonExecutor
threads, and a writer's calls on a DaemonWorker: a call that never returns (a plugin past its time
limit, a store that does not answer) is abandoned when the run ends, never waited for, and never
holds the process at exit. Ctrl-C on a run in the main thread: see _Interrupts.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["DaemonExecutor", "DaemonWorker", "LoopThread", "pause", "request_stop", "run_blocking",
           "run_in_background", "stopping"]

# Ctrl-C: the loop has this long to take the request to stop (it cannot while a call blocks it),
# and the run this long to end in order, before Ctrl-C is raised where the main thread is.
TAKE_S = 1.0
GRACE_S = 10.0


_STOPPING = threading.Event()


def request_stop() -> None:
    """This process is being stopped (Ctrl-C or SIGTERM): waits for a part of the store to come
    back give up at once (stopping()), so nothing holds the stop for a retry window."""
    _STOPPING.set()


def stopping() -> bool:
    return _STOPPING.is_set()


def pause(seconds: float) -> None:
    """time.sleep for a retry loop, cut short when the process is being stopped."""
    _STOPPING.wait(seconds)


def _call_into(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
        future.set_exception(exc)


class DaemonExecutor(ThreadPoolExecutor):
    """The default executor of every loop v2v-lab runs (what asyncio.to_thread uses): each call on
    a daemon thread of its own. shutdown waits for the threads whose call has returned, never for
    a call still running: that one is abandoned (a ThreadPoolExecutor's workers are joined when
    the loop closes and again at exit, so one stuck call held Ctrl-C and the process forever)."""

    def __init__(self, name: str = "v2v-call"):
        super().__init__(max_workers=1)  # its own pool is never used: submit starts a thread per call
        self._name = name
        self._lock = threading.Lock()
        self._calls: dict[threading.Thread, Future[Any]] = {}

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        thread = threading.Thread(target=self._run, args=(future, fn, args, kwargs), name=self._name, daemon=True)
        with self._lock:
            self._calls[thread] = future
        thread.start()
        return future

    def _run(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> None:
        try:
            _call_into(future, fn, args, kwargs)
        finally:
            with self._lock:
                self._calls.pop(threading.current_thread(), None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            calls = list(self._calls.items())
        for thread, future in calls:
            if wait and future.done():
                thread.join()  # its call has returned: the thread is ending
        super().shutdown(wait=False)


class DaemonWorker:
    """One daemon thread running the calls submitted to it, in order (one writer for a store).
    close() lets a call still running go on alone instead of waiting for it."""

    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._busy.set()
            try:
                _call_into(*job)
            finally:
                self._busy.clear()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        if not self._busy.is_set() and threading.current_thread() is not self._thread:
            self._thread.join()

MakeCoroutine = Callable[[], Coroutine[Any, Any, T]]


class LoopThread:
    """An asyncio loop running on a daemon thread of its own until close()."""

    def __init__(self, name: str = "v2v-loop"):
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(DaemonExecutor())
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
        return _run_here(make)
    with LoopThread(thread_name) as worker:
        return worker.call(make)


def _run_here(make: MakeCoroutine[T]) -> T:
    """asyncio.run on this thread, with v2v-lab's executor and, on the main thread, its Ctrl-C."""
    owns_ctrl_c = (threading.current_thread() is threading.main_thread()
                   and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    interrupts = _Interrupts()

    async def main() -> T:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(DaemonExecutor())
        current = asyncio.current_task()
        assert current is not None
        interrupts.watch(loop, current)
        return await make()

    if not owns_ctrl_c:  # a thread of its own, or a caller that handles Ctrl-C itself
        return asyncio.run(main())
    with interrupts.installed():
        try:
            return asyncio.run(main())
        except BaseException as exc:
            # Once Ctrl-C was pressed, the run ends as interrupted, whatever the stop ran into
            # (the cancellation itself, a store it no longer waited for).
            if interrupts.requested and not isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise


class _Interrupts:
    """Ctrl-C on a run in the main thread. The first asks the run to stop: its task is cancelled,
    so every `except` and `finally` of the sweep runs (the journal kept, the parent run KILLED).
    When the loop cannot take that request within TAKE_S (a call blocks it: the [y/N] question
    reading the terminal, a store that does not answer) or the run has not ended within GRACE_S,
    Ctrl-C is raised where the main thread is, as a second Ctrl-C is at once. (asyncio.run on
    3.11+ only cancels, and waits for a blocked loop for ever.)"""

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._taken = threading.Event()
        self._ended = threading.Event()
        self._woken: socket.socket | None = None  # the wakeup fd's other end, while installed

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Our SIGINT handler, and a wakeup fd: a signal the kernel hands to another thread (any
        thread may get a process's SIGINT or SIGTERM) then wakes the loop too, so the main thread
        runs the handler at once instead of sleeping on in its select."""
        wakeup, self._woken = socket.socketpair()
        for sock in (wakeup, self._woken):
            sock.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wakeup.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self.on_sigint)
        try:
            yield
        finally:
            self._ended.set()
            _STOPPING.clear()  # the run is over: a caller that goes on (a notebook) waits for stores again
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.set_wakeup_fd(previous_fd)
            wakeup.close()
            self._woken.close()
            self._woken = None

    def watch(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self._loop, self._task = loop, task
        if self._woken is not None:
            loop.add_reader(self._woken.fileno(), self._drain)

    def _drain(self) -> None:
        """The loop woke for a signal: the handler itself runs in the main thread, now."""
        woken = self._woken
        if woken is not None:
            with contextlib.suppress(OSError):
                woken.recv(4096)

    def on_sigint(self, signum: int, frame: Any) -> None:
        if self.requested or self._loop is None or self._loop.is_closed():
            raise KeyboardInterrupt
        self.requested = True
        request_stop()
        self._loop.call_soon_threadsafe(self._cancel)
        threading.Thread(target=self._escalate, name="v2v-interrupt", daemon=True).start()

    def _cancel(self) -> None:
        self._taken.set()
        if self._task is not None:
            self._task.cancel()

    def _escalate(self) -> None:
        if self._taken.wait(TAKE_S) and self._ended.wait(GRACE_S):
            return
        # A real signal to the main thread: it also ends a blocking read or sleep there. Again
        # every GRACE_S: what runs after one (a `finally` waiting for a store) may block too.
        while not self._ended.is_set():
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            self._ended.wait(GRACE_S)

