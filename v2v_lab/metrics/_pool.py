"""The metrics' shared worker threads: per-frame work (SSIM moments, gradients, flow, PIQE blocks)
runs on them, since OpenCV and numpy release the GIL.

Two threads for the whole process, not one pool per metric: the machines this runs on have two
cores, and metrics run one after another on the same frames, so one pool of two keeps both busy
without oversubscribing them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["inline_here", "parallel_map"]

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="v2v-metrics")
_INLINE = threading.local()


def parallel_map(fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
    """map() on the shared threads, in order; inline on a thread inside inline_here()."""
    if getattr(_INLINE, "on", False):
        return list(map(fn, *iterables))
    return list(_POOL.map(fn, *iterables))


@contextlib.contextmanager
def inline_here() -> Iterator[None]:
    """Run parallel_map calls made on this thread inline. For work that overlaps another busy
    thread (the output's decode): two cores, two threads; a third would only slow the decode."""
    _INLINE.on = True
    try:
        yield
    finally:
        _INLINE.on = False
