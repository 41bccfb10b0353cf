"""Every run an MLflow search matches, page after page: the one home of search_runs' page_token
loop (a store answers at most one page per call; a loop that forgets the token reads the first
page only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["iter_run_pages", "iter_runs"]


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


RUNS_SEARCH = "/api/2.0/mlflow/runs/search"  # MLflow's REST API, as MlflowClient itself calls it


def iter_run_pages(uri: str, experiment_id: str, filter_string: str = "", *, page_size: int = 5000,
                   order_by: tuple[str, ...] = (), limit: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The same search through a tracking server's REST API (runs/search), one page of runs at a
    time as the server's JSON ({"info": ..., "data": {"params": [...], ...}}): MlflowClient turns
    every value of every run into a protobuf message and then an entity, which at 10,000 runs
    costs more than the request itself. The client's own request helper and credentials (token,
    user and password, TLS settings from MLFLOW_TRACKING_*). limit: stop after that many runs."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request_safe

    creds = get_default_host_creds(uri)
    token, seen = None, 0
    while True:
        size = page_size if limit is None else min(page_size, limit - seen)
        body: dict[str, Any] = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": size,
                                "run_view_type": "ACTIVE_ONLY", "order_by": list(order_by)}
        if token:
            body["page_token"] = token
        page = http_request_safe(creds, RUNS_SEARCH, "POST", json=body).json()
        runs = page.get("runs", [])
        seen += len(runs)
        yield runs
        token = page.get("next_page_token")
        if not token or (limit is not None and seen >= limit):
            return
