"""The read side: runs back from MLflow as a typed DataFrame, and their artifacts."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

from ..api.catalog import load_catalog, option_names
from ..errors import InputError
from ..metrics.base import REGISTRY
from .paging import iter_runs
from .runs_rest import server_runs
from .runs_sql import is_database, read_runs, read_series
from .schema import (
    ARTIFACT_OUTPUT,
    ARTIFACT_SEEDS,
    CELL_KEY_TAG,
    KIND_CELL,
    KIND_RATINGS,
    KIND_SWEEP,
    KIND_TAG,
    PARAM_COLUMNS,
    SEARCH_BEST_TAG,
    SEEDS_TAG,
    SERIES_PREFIX,
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    STATUS_TAG,
    TAG_COLUMNS,
    TIMING_METRICS,
    output_artifact_of,
)
from .store import client as make_client
from .store import is_server, store_name
from .store import tracking_uri as resolve_uri

__all__ = [
    "METRIC_COLUMNS", "artifact_address", "cell_scores", "done_cells", "existing_experiment", "list_experiments", "missing_experiment", "load_artifact", "load_runs", "load_series",
    "option_columns", "recorded_done_cells", "recorded_search_winners", "recorded_seeds", "study_columns", "varied_columns",
]

METRIC_COLUMNS = (*REGISTRY, *TIMING_METRICS)


def recorded_seeds(experiment: str, count: int, tracking_uri: str | None = None) -> list[int] | None:
    """The {random: N} seeds an earlier sweep of the experiment drew, as its parent run keeps them
    (seeds.json), newest sweep first; None when the store has no such record (or no such store)."""
    found = existing_experiment(experiment, tracking_uri)
    if found is None:
        return None
    client, exp = found
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


def done_cells(client: Any, experiment_id: str, cell_key: str | None = None) -> dict[str, str]:
    """cell key -> run id of the cell runs complete with an output (the first found per cell);
    with cell_key, that cell's only. The one query both a sweep and its dry run ask."""
    query = f"tags.`{STATUS_TAG}` = '{STATUS_SUCCEEDED}'"
    if cell_key is not None:
        query += f" and tags.`{CELL_KEY_TAG}` = '{cell_key}'"
    out: dict[str, str] = {}
    for run in iter_runs(client, experiment_id, query):
        key = run.data.tags.get(CELL_KEY_TAG)
        if key:
            out.setdefault(key, run.info.run_id)
    return out


def cell_scores(client: Any, experiment_id: str, metric: str) -> dict[str, float | None]:
    """cell key -> its value of `metric` on its complete cell run, None for a run that ended without
    one (failed, or scored without it). A cell with a succeeded run is read from that run (the one
    started first: the same answer at every read); a cell whose only runs failed is None. What a
    search decides from, so the same store gives the same decisions."""
    found: dict[str, tuple[bool, int, float | None]] = {}
    for run in iter_runs(client, experiment_id, f"tags.`{KIND_TAG}` = '{KIND_CELL}'"):
        key, status = run.data.tags.get(CELL_KEY_TAG), run.data.tags.get(STATUS_TAG)
        if not key or status not in (STATUS_SUCCEEDED, STATUS_FAILED):
            continue  # half-logged, or an unknown create: not a result yet
        value = run.data.metrics.get(metric) if status == STATUS_SUCCEEDED else None
        rank = (status == STATUS_SUCCEEDED, -run.info.start_time)
        if key not in found or rank > found[key][:2]:
            found[key] = (*rank, value if value is not None and np.isfinite(value) else None)
    return {key: value for key, (_, _, value) in found.items()}


def recorded_search_winners(client: Any, experiment_id: str) -> set[str]:
    """The winners finished searches of the experiment recorded (their parent runs' SEARCH_BEST_TAG)."""
    return {run.data.tags[SEARCH_BEST_TAG] for run in iter_runs(
        client, experiment_id, f"tags.`{KIND_TAG}` = '{KIND_SWEEP}' and attributes.status = 'FINISHED'")
        if SEARCH_BEST_TAG in run.data.tags}


def recorded_done_cells(experiment: str, tracking_uri: str | None = None) -> dict[str, str]:
    """done_cells of an experiment, read only: a store or experiment that does not exist yet has
    none, and asking creates neither (a dry run writes nothing)."""
    found = existing_experiment(experiment, tracking_uri)
    return {} if found is None else done_cells(found[0], found[1].experiment_id)


def _local_store_missing(uri: str) -> bool:
    """A local store (SQLite file, file store) that is not there yet: asking MLflow would make an
    empty one, so read-only callers ask this first."""
    from .store import local_store_path

    local = local_store_path(uri)
    return local is not None and not local.exists()


def existing_experiment(experiment: str, tracking_uri: str | None) -> tuple[Any, Any] | None:
    """(client, experiment) when both exist; None otherwise, without creating a local store
    that is not there yet."""
    uri = resolve_uri(tracking_uri)
    if _local_store_missing(uri):
        return None
    client = make_client(uri)
    exp = client.get_experiment_by_name(experiment)
    return None if exp is None else (client, exp)


def list_experiments(tracking_uri: str | None = None) -> list[str]:
    """The store's experiments by name; none for a local store that is not there (never made by asking)."""
    uri = resolve_uri(tracking_uri)
    if _local_store_missing(uri):
        return []
    client = make_client(uri)
    return sorted(e.name for e in client.search_experiments() if e.name != "Default")


def existing_experiments(tracking_uri: str | None = None) -> list[str] | None:
    """The experiments in the store, or None for a local store that is not there (never made by asking)."""
    uri = resolve_uri(tracking_uri)
    return None if _local_store_missing(uri) else list_experiments(uri)


def missing_experiment(experiment: str, tracking_uri: str | None = None) -> InputError:
    """The one line for an experiment the store does not hold: the store looked in, and what it holds."""
    uri = resolve_uri(tracking_uri)
    names = existing_experiments(uri)
    return InputError("experiment", experiment, f"an experiment in {store_name(uri)}: "
                      + (", ".join(names) if names else "it has none yet"))


def load_runs(experiment: str, *, tracking_uri: str | None = None, include_parents: bool = False,
              **filters: Any) -> pd.DataFrame:
    """One row per cell run: params, tags and metrics as typed columns (seed int, metrics float),
    and a column for each model option some run set (duration, audio, resolution...: integers and
    booleans typed as the catalog types them, else text; NA on runs without it).

    filters: column=value (or a list/tuple of values), e.g. load_runs("quickstart", model="gen4_aleph").
    An experiment the store does not hold is an InputError naming the store and the experiments it
    holds (a local store that is not there is never created by asking).
    """
    uri = resolve_uri(tracking_uri)
    found = existing_experiment(experiment, uri)
    if found is None:  # never an empty frame for a misspelled name, and never a store made by asking
        raise missing_experiment(experiment, uri)
    client, exp = found
    columns = ["run_id", "run_name", "experiment_id", "start_time", *PARAM_COLUMNS, *TAG_COLUMNS.values(), *METRIC_COLUMNS]
    df = _wide_runs(uri, client, exp.experiment_id, include_parents).reset_index(drop=True)
    # A model's own fields, as columns only where some run set one: 12 empty columns on every
    # study of models that take none would bury the ones that matter.
    options = option_columns(df)
    at = columns.index(PARAM_COLUMNS[-1]) + 1
    columns[at:at] = options
    metric_keys = set(METRIC_COLUMNS) | (set(df.columns) - set(columns))  # rescore's versioned keys, plugins'
    for col in columns:
        if col not in df.columns:
            df[col] = np.nan if col in METRIC_COLUMNS else None
    df["start_time"] = pd.to_datetime(df["start_time"], unit="ms")
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["repeat"] = pd.to_numeric(df["repeat"], errors="coerce").astype("Int64")
    kinds = _option_kinds()
    for col in options:
        df[col] = _typed_option(df[col], kinds.get(col, set()))
    for col in metric_keys:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in TAG_COLUMNS.values():  # a missing or empty tag reads as None, whichever way it was read
        values = df[col].astype(object)
        df[col] = values.where(values.notna() & values.astype(bool), None)
    df = df[[*columns, *sorted(metric_keys - set(columns))]]
    for key, value in filters.items():
        if key not in df.columns:
            raise KeyError(f"filter {key!r}: not a column; columns: {', '.join(df.columns)}")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        df = df[df[key].isin(values)]
    # run_id breaks ties: runs started in the same millisecond (a sweep's cells) come in one order
    # whichever path read them (the database's scan and the client's search return them differently).
    return df.sort_values(["start_time", "run_id"], kind="stable").reset_index(drop=True)


def option_columns(runs: pd.DataFrame) -> list[str]:
    """The columns of `runs` that are a model's own fields (the catalog's option names), in the
    catalog's order."""
    return [c for c in option_names() if c in runs.columns]


def varied_columns(runs: pd.DataFrame, candidates: list[str] | tuple[str, ...]) -> list[str]:
    """The candidates (in their order) that take more than one value across `runs`, a run without
    the column's value counting as one value: a study that sets duration on one model only varies it."""
    return [c for c in candidates if c in runs.columns and runs[c].astype(object).fillna("\0none").nunique() > 1]


def study_columns(runs: pd.DataFrame) -> list[str]:
    """The design columns a table of these runs shows, in the grid's order (video, model with the
    model's own fields, prompt, seed, ratio, reference, repeat): model, prompt, seed and ratio always
    (every study has them), the others where the study varies them."""
    shown = ["model", *varied_columns(runs, option_columns(runs)), "prompt", "seed", "ratio"]
    return [*varied_columns(runs, ["video"]), *shown, *varied_columns(runs, ["reference", "repeat"])]


_INTEGER = r"-?[0-9]+"
_BOOLEANS = {"true": True, "false": False}  # MLflow writes str(True); JSON and YAML write true


def _option_kinds() -> dict[str, set[str]]:
    """Option name -> the types the catalog's models give it (one name may be typed apart by two models)."""
    kinds: dict[str, set[str]] = {}
    for model in load_catalog().values():
        for name, spec in model.fields.items():
            kinds.setdefault(name, set()).add(spec.type)
    return kinds


def _typed_option(values: pd.Series, kinds: set[str]) -> pd.Series:
    """An option column as params read back (text): integers where the catalog types the field an
    integer and every value is a whole number (seedance2's duration also takes "auto": then text),
    booleans likewise, else the text (prores_profile "422" stays text); a run without it holds NA."""
    present = values.dropna().astype(str)
    if present.empty:
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    if kinds == {"integer"} and present.str.fullmatch(_INTEGER).all():
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    if kinds == {"boolean"} and present.str.lower().isin(list(_BOOLEANS)).all():
        return values.map(lambda v: _BOOLEANS[str(v).lower()] if isinstance(v, str) else None).astype("boolean")
    return values.astype(object).where(values.notna(), None)


def _wanted(kind: str | None, include_parents: bool) -> bool:
    """Cells; with include_parents, the sweeps' parent runs too (never the raters' runs)."""
    return kind == KIND_CELL or (include_parents and kind != KIND_RATINGS)


def _wide_runs(uri: str, client: Any, experiment_id: str, include_parents: bool) -> pd.DataFrame:
    """The runs' rows, read the fastest way the store allows: its database's tables (runs_sql), a
    server's REST search (runs_rest), else MlflowClient."""
    wide = _runs_from_database(uri, experiment_id, include_parents) if is_database(uri) else None
    if wide is None and is_server(uri):
        wide = _runs_from_server(uri, experiment_id, include_parents)
    if wide is None:
        wide = _runs_from_client(client, experiment_id, include_parents)
    return wide


def _row(info: dict[str, Any], params: dict[str, str], tags: dict[str, str], metrics: dict[str, float],
         options: set[str]) -> dict[str, Any]:
    """One run's row, however it was read (client entities or the server's JSON)."""
    row: dict[str, Any] = {"run_id": info["run_id"], "run_name": info.get("run_name"),
                           "experiment_id": str(info["experiment_id"]), "start_time": info.get("start_time")}
    row.update({k: params.get(k) for k in PARAM_COLUMNS})
    row.update({k: v for k, v in params.items() if k in options})  # only those the run set
    row.update({col: tags.get(tag) for tag, col in TAG_COLUMNS.items()})
    row.update({k: v for k, v in metrics.items() if not k.startswith(SERIES_PREFIX)})
    return row


def _runs_from_client(client: Any, experiment_id: str, include_parents: bool) -> pd.DataFrame:
    rows = []
    options = set(option_names())
    for run in iter_runs(client, experiment_id, page_size=5000):
        tags = run.data.tags
        if _wanted(tags.get(KIND_TAG), include_parents):
            info = {"run_id": run.info.run_id, "run_name": run.info.run_name,
                    "experiment_id": run.info.experiment_id, "start_time": run.info.start_time}
            rows.append(_row(info, run.data.params, tags, run.data.metrics, options))
    return pd.DataFrame(rows)


def _pairs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: item.get("value") for item in items or ()}


def _runs_from_server(uri: str, experiment_id: str, include_parents: bool) -> pd.DataFrame:
    """The client's rows through the server's REST search as JSON (runs_rest): int64 fields come as
    text there, and a metric that is not finite as "NaN" or "Infinity", which float() reads."""
    rows = []
    options = set(option_names())
    for run in server_runs(uri, experiment_id):
        data = run.get("data", {})
        tags = _pairs(data.get("tags"))
        if _wanted(tags.get(KIND_TAG), include_parents):
            info = dict(run["info"])
            info["start_time"] = int(info["start_time"]) if info.get("start_time") is not None else None
            metrics = {k: float(v) for k, v in _pairs(data.get("metrics")).items()}
            rows.append(_row(info, _pairs(data.get("params")), tags, metrics, options))
    return pd.DataFrame(rows)


def _runs_from_database(uri: str, experiment_id: str, include_parents: bool) -> pd.DataFrame | None:
    # The same SELECT on the params table, with the option names in its IN list: no query per run.
    tables = read_runs(uri, experiment_id, params=(*PARAM_COLUMNS, *option_names()), tags=TAG_COLUMNS,
                       series_prefix=SERIES_PREFIX, kind_tag=KIND_TAG, kinds=None if include_parents else (KIND_CELL,),
                       not_kinds=(KIND_RATINGS,) if include_parents else ())
    if tables is None:
        return None
    runs, params, tags, metrics = tables
    wide = runs.rename(columns={"run_uuid": "run_id", "name": "run_name"}).infer_objects()  # text columns as the client has them
    wide["experiment_id"] = wide["experiment_id"].astype(str)
    at = pd.Index(wide["run_id"])
    columns = {**_pivot(params, at, object), **_pivot(tags, at, object, TAG_COLUMNS), **_pivot(metrics, at, float)}
    return pd.concat([wide.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def _pivot(long: pd.DataFrame, runs: pd.Index, dtype: type, rename: dict[str, str] | None = None
           ) -> dict[str, np.ndarray]:
    """(run_uuid, key, value) rows -> one array per key, in the order of `runs` (a run without
    the key: None, or NaN for floats); rows of other runs are left out, and so is a key only they
    have. What DataFrame.pivot and a join give, without building a MultiIndex over every row."""
    if long.empty:
        return {}
    rows = runs.get_indexer(long["run_uuid"])
    codes, keys = pd.factorize(long["key"])
    codes[rows < 0] = -1
    values = long["value"].to_numpy(dtype=dtype)
    out = {}
    for k, key in enumerate(keys):
        picked = codes == k
        if not picked.any():
            continue
        column: np.ndarray = np.full(len(runs), np.nan if dtype is float else None, dtype=dtype)
        column[rows[picked]] = values[picked]
        out[(rename or {}).get(key, key)] = column
    return out


def load_artifact(run: str | pd.Series | dict, name: str, *, tracking_uri: str | None = None,
                  dest: str | os.PathLike[str] | None = None) -> Path | None:
    """Download one artifact of a run (run id or a row of load_runs); None when the run has none by that name.
    The name ARTIFACT_OUTPUT stands for the run's output whatever its suffix (output.mov, output.zip)."""
    run_id = run if isinstance(run, str) else run["run_id"]
    client = make_client(tracking_uri)
    found = _artifact_named(client, run_id, name)
    if found is None:
        return None
    name = found
    target = Path(dest) if dest else Path(tempfile.gettempdir()) / "v2v-lab-artifacts" / run_id
    target.mkdir(parents=True, exist_ok=True)
    with _no_progress_bars():
        return Path(client.download_artifacts(run_id, name, str(target)))


def artifact_address(run_id: str, name: str, *, tracking_uri: str | None = None) -> tuple[str, str] | None:
    """(the artifact's name, the address a browser fetches it from) on a tracking server: MLflow's
    /get-artifact route, which answers Range requests, so a page streams a video from the server
    instead of the kernel downloading it. None for a store that is not an http(s) server, or a run
    without the artifact (ARTIFACT_OUTPUT stands for the output whatever its suffix). The address
    never carries the tracking URI's user or password: a browser that needs them asks its user."""
    uri = resolve_uri(tracking_uri)
    if not is_server(uri):
        return None
    found = _artifact_named(make_client(uri), run_id, name)
    if found is None:
        return None
    parts = urlsplit(uri)
    server = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", ""))
    return found, f"{server}/get-artifact?{urlencode({'path': found, 'run_uuid': run_id})}"


def _artifact_named(client: Any, run_id: str, name: str) -> str | None:
    """The run's artifact path by that name (ARTIFACT_OUTPUT: its output whatever the suffix), or None."""
    names = {a.path for a in client.list_artifacts(run_id)}
    if name == ARTIFACT_OUTPUT:
        name = output_artifact_of(names) or name
    return name if name in names else None


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """MLflow draws a "Downloading artifacts" bar per download; in a dashboard they pile up in the
    widget's output. Its own switch, set for the download only."""
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous


_PROGRESS_BAR = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name


def load_series(run_id: str, metric: str, *, tracking_uri: str | None = None) -> list[float]:
    """A per-frame series (logged as steps) in step order."""
    uri = resolve_uri(tracking_uri)
    if is_database(uri):
        values = read_series(uri, run_id, f"{SERIES_PREFIX}{metric}")
        if values is not None:
            return values
    client = make_client(tracking_uri)
    history = client.get_metric_history(run_id, f"{SERIES_PREFIX}{metric}")
    return [m.value for m in sorted(history, key=lambda m: m.step)]
