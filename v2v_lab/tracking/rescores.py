"""The MLflow side of rescoring (v2v_lab/rescoring.py knows scoring, this module the store): the
succeeded cell runs of a study with what each holds, its output artifact and its prompt, the
output fetched for a worker, and the values measured again written back into the run with how
they were measured (`score.<key>.*` params)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from .paging import iter_runs
from .schema import (
    ARTIFACT_OUTPUT,
    ARTIFACT_PROMPT,
    KIND_CELL,
    KIND_TAG,
    PROMPT_PARAM_CHARS,
    SCORE_PARAM_PREFIX,
    SOURCE_TAG,
    STATUS_SUCCEEDED,
    STATUS_TAG,
    output_artifact_of,
)
from .writer import log_values

__all__ = ["KeptCell", "cell_prompt", "fetched_output", "kept_cells", "log_rescored", "output_uri",
           "rescored_params", "study_id"]


@dataclass(frozen=True)
class KeptCell:
    """A succeeded cell run, as rescoring plans from it."""

    run_id: str
    source: str  # the source video's path (tag SOURCE_TAG; "" when the run has none)
    params: dict[str, str]
    metrics: frozenset[str]  # the keys of the values it already holds
    artifact_uri: str


def study_id(client: Any, experiment: str, uri: str) -> str:
    """The experiment's id; an InputError naming the store's experiments when it is not there."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = ", ".join(e.name for e in client.search_experiments() if e.name != "Default") or "none"
        raise InputError("experiment", experiment, f"an experiment in {uri} (there: {known})")
    return str(exp.experiment_id)


def kept_cells(client: Any, experiment_id: str) -> Iterator[KeptCell]:
    """The experiment's cell runs that succeeded (a failed generation has no output; a run still
    logging is not complete)."""
    for run in iter_runs(client, experiment_id, page_size=5000):
        tags = run.data.tags
        if tags.get(KIND_TAG) != KIND_CELL or tags.get(STATUS_TAG) != STATUS_SUCCEEDED:
            continue
        yield KeptCell(run.info.run_id, tags.get(SOURCE_TAG, ""), dict(run.data.params),
                       frozenset(run.data.metrics), run.info.artifact_uri)


def output_uri(client: Any, cell: KeptCell) -> str:
    """The URI of the run's output artifact, whatever its suffix; output.mp4's (reported gone
    when fetched) when it has none."""
    name = output_artifact_of(a.path for a in client.list_artifacts(cell.run_id)) or ARTIFACT_OUTPUT
    return f"{cell.artifact_uri.rstrip('/')}/{name}"


def cell_prompt(client: Any, cell: KeptCell) -> str | None:
    """The run's prompt: the param, or prompt.txt when the param may have been cut short."""
    prompt = cell.params.get("prompt")
    if prompt is None or len(prompt) < PROMPT_PARAM_CHARS:
        return prompt
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return Path(client.download_artifacts(cell.run_id, ARTIFACT_PROMPT, tmp)).read_text()
        except Exception:  # noqa: BLE001 - no prompt.txt: the param is what there is
            return prompt


def _local_path(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return parts.path
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return uri
    return None


@contextmanager
def fetched_output(uri: str, tracking_uri: str) -> Iterator[str]:
    """A local path of the output artifact at `uri`: a local store's file itself, a server's or
    S3's downloaded into a temporary folder for as long as the block runs (so a Dask worker on
    another machine needs only the tracking URI). FileNotFoundError when it is gone."""
    local = _local_path(uri)
    if local is not None:
        if not os.path.isfile(local):
            raise FileNotFoundError(f"output artifact not found ({local})")
        yield local
        return
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="v2v-rescore-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri)
        except Exception as exc:  # noqa: BLE001 - whatever the artifact store says, the output is gone
            raise FileNotFoundError(f"output artifact not downloadable: {type(exc).__name__}: {exc}") from None
        yield path


def rescored_params(keys: dict[str, str], measured: dict[str, Any], run_params: dict[str, str]) -> dict[str, str]:
    """How each value was measured, as params under its key: the sampling (frames, analysis_size,
    ...) as `score.<param>` for a value under the metric's own name, `score.<key>.<param>` for one
    under another name, and the metric's own params as `score.<key>.<param>`. Params the run
    already has are not sent again (MLflow refuses a changed param; the same value is a wasted call).
    keys: metric -> the key its value goes under; measured: ScoreReport.params."""
    params: dict[str, str] = {}
    sampling = {k: v for k, v in measured.items() if "." not in k}
    for metric, key in keys.items():
        if key == metric:
            params.update({f"{SCORE_PARAM_PREFIX}{k}": str(v) for k, v in sampling.items()})
        else:
            params.update({f"{SCORE_PARAM_PREFIX}{key}.{k}": str(v) for k, v in sampling.items()})
        own = f"{metric}."
        params.update({f"{SCORE_PARAM_PREFIX}{key}.{k[len(own):]}": str(v) for k, v in measured.items()
                       if k.startswith(own)})
    return {k: v for k, v in params.items() if k not in run_params}


def log_rescored(client: Any, run_id: str, keys: dict[str, str], *, values: dict[str, float],
                 series: dict[str, list[float]], measured: dict[str, Any], run_params: dict[str, str]) -> None:
    """One output's values measured again, into its run: params first, then every value with its
    per-frame series in one batch (log_values), so a run holds all of them or none; each under
    the key `keys` gives its metric."""
    log_values(client, run_id, params=rescored_params(keys, measured, run_params),
               metrics={keys[m]: v for m, v in values.items()}, series={keys[m]: v for m, v in series.items()})
