"""Runs of one experiment straight from MLflow's database, for stores that are a database (SQLite,
PostgreSQL, MySQL) and reachable from here.

Why: MlflowClient.search_runs builds an ORM object for every param, tag and metric of every run and
then an entity for each; at 10,000 runs that is 300,000 objects and takes seconds. Four SELECTs over
the same tables (MLflow's own table definitions, imported, never retyped) give the same values as
columns, in a fraction of the time. Only the columns load_runs shows are read. A store that is a
server, or a database whose driver is missing, goes through the client as before;
tests/test_dashboard.py checks both paths give the same frame.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

__all__ = ["is_database", "read_runs", "read_series"]

_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def is_database(uri: str) -> bool:
    return urlsplit(uri).scheme.split("+", 1)[0] in _DATABASES


@functools.lru_cache(maxsize=8)
def _engine(uri: str):
    import sqlalchemy

    return sqlalchemy.create_engine(uri, pool_pre_ping=True)


def read_runs(uri: str, experiment_id: str, *, params: Iterable[str], tags: Iterable[str], series_prefix: str,
              kind_tag: str, kinds: Iterable[str] | None = None, not_kinds: Iterable[str] = ()
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """(runs, params, tags, metrics): the experiment's active runs whose `kind_tag` is one of `kinds`
    (any, when None) and none of `not_kinds`, and the long tables of the experiment's active runs
    (the caller keeps the rows of those runs: filtering 100,000 run ids here cost seconds);
    metrics without the per-frame series (`series_prefix`). None when this store cannot be read this way (the caller then asks the client)."""
    try:
        import sqlalchemy as sa
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag

        engine = _engine(uri)
    except Exception:  # noqa: BLE001 - no driver for this database here: the client's way still works
        return None
    run, tag, metric = SqlRun.__table__, SqlTag.__table__, SqlLatestMetric.__table__
    in_experiment = (run.c.experiment_id == int(experiment_id), run.c.lifecycle_stage == "active")

    def key_of(table):
        # SQLite searches the (key, run) index once per run for `key IN (...)`: at 100,000 runs
        # that took ten times as long as reading the table in order, which a unary + on the
        # column makes it do. Other databases plan this themselves.
        return sa.literal_column(f'+{table.name}."key"') if engine.dialect.name == "sqlite" else table.c.key

    def long(table, *extra):
        return (sa.select(table.c.run_uuid, table.c.key, table.c.value, *extra)
                .where(table.c.run_uuid.in_(sa.select(run.c.run_uuid).where(*in_experiment))))

    param = SqlParam.__table__
    queries = {
        "runs": sa.select(run.c.run_uuid, run.c.name, run.c.experiment_id, run.c.start_time).where(*in_experiment),
        "params": long(param).where(key_of(param).in_(list(params))),
        "tags": long(tag).where(key_of(tag).in_([*tags, kind_tag])),
        "metrics": long(metric, metric.c.is_nan).where(~key_of(metric).startswith(series_prefix, autoescape=True)),
    }
    frames = {}
    with engine.connect() as conn:
        for name, query in queries.items():
            # The driver's own cursor: SQLAlchemy's row objects cost as much as the reading itself.
            compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            cursor = conn.connection.cursor()
            try:
                cursor.execute(str(compiled))
                frames[name] = _frame(cursor.fetchall(), [c.name for c in query.selected_columns])
            finally:
                cursor.close()
    metrics = frames["metrics"]
    metrics.loc[metrics["is_nan"].astype(bool), "value"] = float("nan")
    runs, tag_rows = frames["runs"], frames["tags"]
    kind = runs["run_uuid"].map(tag_rows[tag_rows["key"] == kind_tag].set_index("run_uuid")["value"])
    wanted = ~kind.isin(list(not_kinds))  # a run without the tag is of no kind: kept unless kinds are asked
    if kinds is not None:
        wanted &= kind.isin(list(kinds))
    runs = runs[wanted.to_numpy()].reset_index(drop=True)
    tag_rows = tag_rows[tag_rows["key"].isin(list(tags))]
    return runs, frames["params"], tag_rows, metrics


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """The cursor's rows as columns of Python objects: DataFrame.from_records and pandas' own
    text columns (Arrow) each cost more than the reading at 100,000 runs, and the caller only
    looks values up by run id."""
    table = np.empty((len(rows), len(columns)), dtype=object)
    if rows:
        table[:] = rows  # one C loop over the tuples (numpy reads each as a row of the table)
    return pd.DataFrame({name: pd.Series(table[:, i], dtype=object, copy=True) for i, name in enumerate(columns)})


def read_series(uri: str, run_id: str, key: str) -> list[float] | None:
    """The run's values of metric `key` in step order (then the order they were logged in), as
    MlflowClient.get_metric_history gives them; None when this store cannot be read this way.

    Why: SQLite answers MLflow's own query through the (key, ...) index, reading every run's values
    of that key: about a second at 100,000 runs of 16 steps, for each series a selected run shows.
    A unary + on the key column makes it use the (run, key, step) index."""
    try:
        import sqlalchemy as sa
        from mlflow.store.tracking.dbmodels.models import SqlMetric

        engine = _engine(uri)
    except Exception:  # noqa: BLE001 - no driver for this database here: the client's way still works
        return None
    metric = SqlMetric.__table__
    key_column = sa.literal_column('+metrics."key"') if engine.dialect.name == "sqlite" else metric.c.key
    query = (sa.select(metric.c.value, metric.c.is_nan)
             .where(metric.c.run_uuid == run_id, key_column == key)
             .order_by(metric.c.step, metric.c.timestamp))
    with engine.connect() as conn:
        return [float("nan") if is_nan else float(value) for value, is_nan in conn.execute(query)]
