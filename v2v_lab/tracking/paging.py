"""Every run an MLflow search matches, page after page: the one home of search_runs' page_token
loop (a store answers at most one page per call; a loop that forgets the token reads the first
page only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["iter_runs"]


def iter_runs(client: Any, experiment_id: str, filter_string: str = "", *, page_size: int = 1000) -> Iterator[Any]:
    """The experiment's active runs matching `filter_string` (MLflow's search syntax; "" for all),
    in the store's order, fetched `page_size` at a time as they are consumed."""
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=page_size,
                                  page_token=token)
        yield from page
        token = page.token
        if not token:
            return
