"""The read side: runs back from MLflow as a typed DataFrame, and their artifacts."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..metrics.base import REGISTRY
from .schema import (
    ARTIFACT_SEEDS,
    KIND_CELL,
    KIND_SWEEP,
    KIND_TAG,
    PARAM_COLUMNS,
    SEEDS_TAG,
    SERIES_PREFIX,
    TAG_COLUMNS,
    TIMING_METRICS,
)
from .store import client as make_client

METRIC_COLUMNS = (*REGISTRY, *TIMING_METRICS)


def recorded_seeds(experiment: str, count: int, tracking_uri: str | None = None) -> list[int] | None:
    """The {random: N} seeds an earlier sweep of the experiment drew, as its parent run keeps them
    (seeds.json), newest sweep first; None when the store has no such record (or no such store)."""
    from .store import local_store_path
    from .store import tracking_uri as resolve

    uri = resolve(tracking_uri)
    local = local_store_path(uri)
    if local is not None and not local.exists():
        return None  # asking would create an empty store
    client = make_client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], filter_string=(
        f"tags.`{KIND_TAG}` = '{KIND_SWEEP}' and tags.`{SEEDS_TAG}` = '{count}'"),
        order_by=["attribute.start_time DESC"], max_results=20)
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run.info.run_id, ARTIFACT_SEEDS, tmp)
                seeds = json.loads(Path(path).read_text())
            except Exception:  # noqa: BLE001 - a run without a readable record: try the next one
                continue
        if isinstance(seeds, list) and len(seeds) == count:
            return [int(x) for x in seeds]
    return None


def list_experiments(tracking_uri: str | None = None) -> list[str]:
    client = make_client(tracking_uri)
    return sorted(e.name for e in client.search_experiments() if e.name != "Default")


def load_runs(experiment: str, *, tracking_uri: str | None = None, include_parents: bool = False,
              **filters: Any) -> pd.DataFrame:
    """One row per cell run: params, tags and metrics as typed columns (seed int, metrics float).

    filters: column=value (or a list/tuple of values), e.g. load_runs("quickstart", model="gen4_aleph").
    """
    client = make_client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    columns = ["run_id", "run_name", "experiment_id", "start_time", *PARAM_COLUMNS, *TAG_COLUMNS.values(), *METRIC_COLUMNS]
    if exp is None:
        return pd.DataFrame(columns=columns)
    rows = []
    metric_keys: set[str] = set(METRIC_COLUMNS)
    token = None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=5000, page_token=token)
        for run in page:
            tags = run.data.tags
            if tags.get(KIND_TAG) != KIND_CELL and not include_parents:
                continue
            row: dict[str, Any] = {"run_id": run.info.run_id, "run_name": run.info.run_name,
                                   "experiment_id": run.info.experiment_id, "start_time": pd.to_datetime(run.info.start_time, unit="ms")}
            row.update({k: run.data.params.get(k) for k in PARAM_COLUMNS})
            row.update({col: tags.get(tag) or None for tag, col in TAG_COLUMNS.items()})
            summary = {k: v for k, v in run.data.metrics.items() if not k.startswith(SERIES_PREFIX)}
            metric_keys.update(summary)
            row.update(summary)
            rows.append(row)
        token = page.token
        if not token:
            break
    df = pd.DataFrame(rows, columns=None if rows else columns)
    for col in columns:
        if col not in df.columns:
            df[col] = np.nan if col in METRIC_COLUMNS else None
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["repeat"] = pd.to_numeric(df["repeat"], errors="coerce").astype("Int64")
    for col in metric_keys:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for key, value in filters.items():
        if key not in df.columns:
            raise KeyError(f"filter {key!r}: not a column; columns: {', '.join(df.columns)}")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        df = df[df[key].isin(values)]
    return df.sort_values("start_time").reset_index(drop=True)


def load_artifact(run: str | pd.Series | dict, name: str, *, tracking_uri: str | None = None,
                  dest: str | os.PathLike[str] | None = None) -> Path | None:
    """Download one artifact of a run (run id or a row of load_runs); None when the run has none by that name."""
    run_id = run if isinstance(run, str) else run["run_id"]
    client = make_client(tracking_uri)
    names = {a.path for a in client.list_artifacts(run_id)}
    if name not in names:
        return None
    target = Path(dest) if dest else Path(tempfile.gettempdir()) / "v2v-lab-artifacts" / run_id
    target.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(target)))


def load_series(run_id: str, metric: str, *, tracking_uri: str | None = None) -> list[float]:
    """A per-frame series (logged as steps) in step order."""
    client = make_client(tracking_uri)
    history = client.get_metric_history(run_id, f"{SERIES_PREFIX}{metric}")
    return [m.value for m in sorted(history, key=lambda m: m.step)]
