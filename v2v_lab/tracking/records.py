"""What a sweep's runs say: the parameters, tags, metrics and artifacts of a cell's run and of the
sweep's parent run, shaped from plain values. The sweep hands over what happened; this module
decides how it reads in MLflow (names from schema.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..api.validation import uri_kind
from .schema import (
    ARTIFACT_CONTACT_SHEET,
    ARTIFACT_OUTPUT,
    ARTIFACT_POSTER,
    CELL_KEY_TAG,
    CONTINUES_TAG,
    CREDITS_SOURCE_TAG,
    EXPERIMENT_TAG,
    FAILURE_CODE_TAG,
    FAILURE_TAG,
    METRIC_ERROR_PREFIX,
    PARAM_COLUMNS,
    PROMPT_PARAM_CHARS,
    PROVIDER_TAG,
    SCORE_PARAM_PREFIX,
    SCORING_ERROR_TAG,
    SOURCE_TAG,
    STATUS_TAG,
    TASK_ID_TAG,
    user_tag,
)

__all__ = ["CellRecord", "CellFacts", "cell_record", "option_params", "source_ref", "sweep_params", "sweep_tags", "spec_yaml"]

TEXT_TAG_CHARS = 4000
OPTION_PARAM_CHARS = 500  # the smallest cap an older store puts on a param value


class CellFacts(Protocol):
    """What a record needs to know of a cell (sweeps.plan.Cell has it; tracking does not import sweeps)."""

    @property
    def key(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def prompt_sha(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def ratio(self) -> str | None: ...
    @property
    def video(self) -> str: ...
    @property
    def video_sha(self) -> str: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def repeat(self) -> int: ...
    @property
    def options(self) -> dict[str, Any]: ...


@dataclass
class CellRecord:
    """Everything one cell's run holds, ready for SweepWriter.log_cell."""

    name: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    series: dict[str, list[float]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    frames_csv: list[dict[str, Any]] | None = None


def _prompt_param(cell: CellFacts, _name: str) -> str:
    return cell.prompt if len(cell.prompt) <= PROMPT_PARAM_CHARS else cell.prompt[: PROMPT_PARAM_CHARS - 3] + "..."


def _video_param(cell: CellFacts, _name: str) -> str:
    return os.path.basename(cell.video) if uri_kind(cell.video) == "path" else source_ref(cell.video)[:500]


# How a cell field is written as a param where it is not simply the cell's value (cell_fields.FIELDS).
_PARAM_TEXT: dict[str, Callable[[CellFacts, str], Any]] = {
    "prompt": _prompt_param,
    "video": _video_param,
    "video_sha": lambda cell, _name: cell.video_sha[:16],
    "ratio": lambda cell, _name: cell.ratio or "none",
    "reference": lambda cell, _name: os.path.basename(cell.reference) if cell.reference else "none",
}


def cell_record(cell: CellFacts, *, experiment: str, provider: str, api_version: str, user_tags: dict[str, str],
                status: str, task_id: str | None, failure_code: str | None = None, failure: str | None = None,
                timing: dict[str, float] | None = None, credits: float = 0.0, credits_estimated: float | None = None,
                credits_source: str | None = None, report: Any = None,
                scoring_error: str | None = None, output: Path | None = None, poster: Path | None = None,
                contact_sheet: Path | None = None) -> CellRecord:
    """One cell's run. report: a metrics ScoreReport (values, series, params, times_s) or None."""
    of_sweep = {"provider": provider, "api_version": api_version}
    params: dict[str, Any] = {name: of_sweep[name] if name in of_sweep else _PARAM_TEXT.get(name, getattr)(cell, name)
                              for name in PARAM_COLUMNS}
    params |= option_params(cell.options)
    tags = {CELL_KEY_TAG: cell.key, TASK_ID_TAG: task_id or "", STATUS_TAG: status,
            FAILURE_CODE_TAG: failure_code or "", EXPERIMENT_TAG: experiment, SOURCE_TAG: source_ref(cell.video)}
    tags |= {user_tag(k): v for k, v in user_tags.items()}
    if failure:
        tags[FAILURE_TAG] = failure[:TEXT_TAG_CHARS]
    if scoring_error:
        tags[SCORING_ERROR_TAG] = scoring_error[:TEXT_TAG_CHARS]
    if credits_source:
        tags[CREDITS_SOURCE_TAG] = credits_source
    metrics = {**(timing or {}), "credits": credits}
    if credits_estimated is not None:
        metrics["credits_estimated"] = credits_estimated
    record = CellRecord(name=run_name(cell), params=params, tags=tags, metrics=metrics)
    if report is not None:
        tags |= {f"{METRIC_ERROR_PREFIX}{name}": why[:TEXT_TAG_CHARS] for name, why in report.errors.items()}
        record.metrics.update(report.values)
        record.series = report.series
        params.update({f"{SCORE_PARAM_PREFIX}{k}": v for k, v in report.params.items()})
        record.frames_csv = [{"step": i, "time_s": round(t, 4), **{m: s[i] for m, s in report.series.items()}}
                             for i, t in enumerate(report.times_s)]
    if output is not None:
        record.artifacts = {ARTIFACT_OUTPUT: str(output), ARTIFACT_POSTER: str(poster) if poster else "",
                            ARTIFACT_CONTACT_SHEET: str(contact_sheet) if contact_sheet and contact_sheet.exists()
                            else ""}
    return record


def option_params(options: dict[str, Any]) -> dict[str, str]:
    """The model's own fields a cell set (duration, resolution, target_aspect_ratio...) as params
    under their catalog names: text as it is, other values as JSON (true, 5, a list), capped as
    MLflow caps a param. Fields left at their default are not set, so not logged."""
    out = {}
    for name, value in sorted(options.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        out[name] = text if len(text) <= OPTION_PARAM_CHARS else text[: OPTION_PARAM_CHARS - 3] + "..."
    return out


def run_name(cell: CellFacts) -> str:
    return f"{cell.model} s{cell.seed} {cell.ratio or ''} {cell.prompt[:40]}".strip()


def source_ref(video: str) -> str:
    """The source as the dashboards can find it: a local file's absolute path, a URL without its
    query and user info (presigned URLs carry signatures there, some URLs a password), or just the
    kind for inline data."""
    kind = uri_kind(video)
    if kind == "path":
        return os.path.abspath(video)
    if kind == "data":
        return "(inline data URI)"
    parts = urlsplit(video)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"[:TEXT_TAG_CHARS]


def sweep_params(*, experiment: str, provider: str, models: list[str], cells_planned: int, cells_to_run: int,
                 seeds: list[int], api_version: str, concurrency: int, estimate_credits: float) -> dict[str, Any]:
    return {"experiment": experiment, "provider": provider, "models": ",".join(models),
            "cells_planned": cells_planned, "cells_to_run": cells_to_run,
            "seeds": ",".join(str(s) for s in seeds)[:5000], "api_version": api_version,
            "concurrency": concurrency, "estimate_credits": round(estimate_credits, 3)}


def sweep_tags(*, provider: str, user_tags: dict[str, str], continues: str | None) -> dict[str, str]:
    tags = {user_tag(k): v for k, v in user_tags.items()} | {PROVIDER_TAG: provider}
    if continues:
        tags[CONTINUES_TAG] = continues
    return tags


def spec_yaml(spec_json: str) -> str:
    """The spec as the parent run keeps it (spec.yaml): readable, in the order it was written."""
    import yaml

    return yaml.safe_dump(json.loads(spec_json), sort_keys=False, allow_unicode=True)
