"""Which MLflow store: MLFLOW_TRACKING_URI, else MLflow's own local default (./mlflow.db)."""

from __future__ import annotations

import os

import mlflow
from mlflow.tracking import MlflowClient


def tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()


def client(uri: str | None = None) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(uri))


def ui_command(uri: str | None = None) -> str:
    uri = tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}   (or: v2v-lab ui)"
