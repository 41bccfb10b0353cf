"""Running a metric's own code so that whatever it does is its own failure: an exception, a result
that is not a MetricResult, or a call that never returns ends as a message for that metric alone,
never as a crash or a hang of the caller (a sweep that has paid for the output, `score`, rescore).

Why a thread and not a subprocess: a metric reads the sampled frames (tens of MB per cell) and the
cache the other metrics filled (the source's flow, SSIM moments), and a plugin may hold a model in
memory; a subprocess would copy the frames for every metric of every cell and load the model in
each child. A thread shares all of it. The price: Python cannot stop a thread, so a call past its
time limit is abandoned: left to finish alone on a daemon thread (it never holds the process at
exit, and the caller's Ctrl-C is never blocked by it), and that metric is not started again in
this process, so a hung plugin costs one wait, not one per cell and a pile of stuck copies.
"""

from __future__ import annotations

import concurrent.futures
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

from ..errors import InputError

__all__ = ["DEFAULT_TIME_LIMIT_S", "MetricFailed", "check_time_limit", "run_guarded"]

# Generous for a learned metric on a CPU (a few seconds is typical); a hung one costs this once.
DEFAULT_TIME_LIMIT_S = 120.0
_IDLE_S = 30.0  # how often an idle worker looks whether the thread it serves still exists

_OVERRAN: dict[str, float] = {}  # metric name -> the limit it overran, in this process
_OVERRAN_LOCK = threading.Lock()


class MetricFailed(Exception):
    """One metric's failure, as its run records it (the message names what went wrong)."""


def check_time_limit(seconds: Any, field: str = "metric_time_limit_s") -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise InputError(field, seconds, "a number of seconds above 0 (each metric's time limit)")
    return float(seconds)


class _Worker:
    """A daemon thread running one caller thread's metric calls, one at a time. Each answer is
    boxed as ("ok", value) or ("error", exception), so a wait that times out is never confused
    with a metric that raised TimeoutError itself."""

    def __init__(self, owner: threading.Thread):
        self._owner = owner
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="v2v-metric", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                fn, box = self._jobs.get(timeout=_IDLE_S)
            except queue.Empty:
                if not self._owner.is_alive():
                    return  # the thread it served is gone: nobody can hand it work again
                continue
            try:
                box.set_result(("ok", fn()))
            except BaseException as exc:  # noqa: BLE001 - even SystemExit from a plugin is its failure
                box.set_result(("error", exc))

    def call(self, fn: Callable[[], Any], limit_s: float) -> tuple[str, Any]:
        box: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, box))
        return box.result(timeout=limit_s)  # interruptible: Ctrl-C in the caller ends the wait


_LOCAL = threading.local()  # .worker: the caller thread's _Worker


def run_guarded(name: str, fn: Callable[[], Any], limit_s: float) -> Any:
    """fn() for the metric `name`, or MetricFailed saying why there is no result."""
    with _OVERRAN_LOCK:
        overran = _OVERRAN.get(name)
    if overran is not None:
        raise MetricFailed(f"not run: it overran its time limit of {overran:g} s earlier in this process "
                           "(that call may still be running)")
    worker = getattr(_LOCAL, "worker", None)
    if worker is None:
        worker = _LOCAL.worker = _Worker(threading.current_thread())
    try:
        kind, value = worker.call(fn, limit_s)
    except concurrent.futures.TimeoutError:
        _LOCAL.worker = None  # that worker is stuck in the call: the next metric gets a new one
        with _OVERRAN_LOCK:
            _OVERRAN[name] = limit_s
        raise MetricFailed(f"did not finish within its time limit of {limit_s:g} s: abandoned "
                           "(scoring: metric_time_limit_s raises the limit)") from None
    if kind == "error":
        raise MetricFailed(f"raised {type(value).__name__}: {_first_line(value)}") from None
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
