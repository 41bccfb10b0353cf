"""Runs of one experiment from a tracking server (`mlflow server`: the team stack), for load_runs.

Why not MlflowClient.search_runs page after page: the client turns each value of each run into a
protobuf message and then an entity, and the pages come one after another while the server's
other workers wait. Here the same public REST search (runs/search, through tracking.paging) is
read as the server's JSON, and the experiment is cut into time slices by start time, each
searched on its own thread, so a server of several workers answers them side by side. Every run
lands in exactly one slice (from <= start_time < to; the last slice includes its end), so the
rows are every run's, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .paging import iter_run_pages

__all__ = ["SLICES", "server_runs"]

# Searches in flight at once: the team stack's server runs 2 workers; a lab's may run more, and
# a slice waiting on the network costs nothing.
SLICES = 4
# Runs per request: a page of 5,000 took a loaded 2-core server longer than the 20 s a request
# may take here (tracking.outage); 1,000 come back in a few seconds even then.
PAGE_SIZE = 1000


def _start_time(uri: str, experiment_id: str, order: str) -> int | None:
    for page in iter_run_pages(uri, experiment_id, order_by=(f"attributes.start_time {order}",), limit=1):
        for run in page:
            return int(run["info"]["start_time"])
    return None


def _slices(first: int, last: int, count: int) -> list[str]:
    """Filters cutting [first, last] into `count` ranges of start time, together covering it once."""
    step = max(1, -(-(last - first + 1) // count))
    bounds = list(range(first, last + 1, step)) + [last + 1]
    return [f"attributes.start_time >= {lo} and attributes.start_time < {hi}" for lo, hi in zip(bounds, bounds[1:], strict=False)]


def server_runs(uri: str, experiment_id: str, slices: int = SLICES) -> Iterator[dict[str, Any]]:
    """Every active run of the experiment, as the REST API's JSON (see tracking.paging)."""
    first, last = _start_time(uri, experiment_id, "ASC"), _start_time(uri, experiment_id, "DESC")
    if first is None or last is None:
        return
    filters = _slices(first, last, slices)
    with ThreadPoolExecutor(max_workers=len(filters), thread_name_prefix="v2v-runs") as pool:
        for runs in pool.map(lambda f: [run for page in iter_run_pages(uri, experiment_id, f, page_size=PAGE_SIZE)
                                          for run in page],
                             filters):
            yield from runs
