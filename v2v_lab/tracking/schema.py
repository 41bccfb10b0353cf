"""Every name v2v-lab gives to things in MLflow, in one place (as MLflow keeps its own tags in
mlflow.utils.mlflow_tags): tags, parameters, metric columns and artifact paths. The writer, the
reader, the dashboards and the record builders read them from here; nothing else spells them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ..cell_fields import PARAM_COLUMNS as _PARAM_COLUMNS

__all__ = [
    "ARTIFACT_CONTACT_SHEET", "ARTIFACT_FRAMES", "ARTIFACT_OUTPUT", "ARTIFACT_POSTER", "ARTIFACT_PROMPT",
    "ARTIFACT_SEARCH", "ARTIFACT_SEEDS", "ARTIFACT_SPEC", "ARTIFACT_TASK", "CELL_ARTIFACTS", "CELL_KEY_TAG", "CONTINUES_TAG", "CREDITS_SOURCE_TAG",
    "EXPERIMENT_KIND", "EXPERIMENT_KIND_TAG", "EXPERIMENT_TAG", "FAILURE_CODE_TAG", "FAILURE_TAG", "KIND_CELL",
    "KIND_SWEEP", "KIND_TAG", "LOGGING", "METRIC_ERROR_PREFIX", "PARAM_COLUMNS", "PROMPT_PARAM_CHARS", "PROVIDER_TAG", "SCORE_PARAM_PREFIX",
    "SCORING_ERROR_TAG", "SEARCH_BEST_TAG", "SEEDS_TAG", "SERIES_PREFIX", "SOURCE_TAG", "STATUS_FAILED", "STATUS_SUCCEEDED", "STATUS_TAG", "TAG_COLUMNS", "TASK_ID_TAG",
    "TIMING_METRICS", "USER_TAG_PREFIX", "WRITER_TAG", "user_tag", "OUTPUT_ARTIFACT_STEM", "is_output_artifact",
    "output_artifact", "output_artifact_of",
    "KIND_RATINGS", "RATER_TAG", "JUDGMENT_TAG_PREFIX", "LEASE_TAG_PREFIX",
]

# -- tags on every run --------------------------------------------------------------------------
KIND_TAG: Final = "v2v.kind"  # KIND_SWEEP (the parent) or KIND_CELL (a child)
KIND_SWEEP: Final = "sweep"
KIND_CELL: Final = "cell"
KIND_RATINGS: Final = "ratings"  # a rater's judgments: one run per rater, one tag per judgment
WRITER_TAG: Final = "v2v.writer"  # host:pid of the process that logged the run
USER_TAG_PREFIX: Final = "v2v.tag."  # the spec's `tags:`, one MLflow tag each

# -- a sweep's parent run -----------------------------------------------------------------------
PROVIDER_TAG: Final = "v2v.provider"
SEEDS_TAG: Final = "v2v.seeds_random"  # how many {random: N} seeds its seeds.json holds
CONTINUES_TAG: Final = "v2v.continues"  # the interrupted sweep run it takes over from
ARTIFACT_SPEC: Final = "spec.yaml"
ARTIFACT_SEEDS: Final = "seeds.json"
# A search's parent (spec key search:): the winner's value on the searched axis, and every round
# (candidates, seeds, means, intervals, who was dropped and why, credits) as JSON.
SEARCH_BEST_TAG: Final = "v2v.search.best"
ARTIFACT_SEARCH: Final = "search.json"

# -- a cell's run -------------------------------------------------------------------------------
CELL_KEY_TAG: Final = "v2v.cell_key"
TASK_ID_TAG: Final = "v2v.task_id"
STATUS_TAG: Final = "v2v.status"  # STATUS_SUCCEEDED | failed | unknown; LOGGING until the run is complete
STATUS_SUCCEEDED: Final = "succeeded"  # a cell with its output (its other ends keep the sweep's word)
STATUS_FAILED: Final = "failed"  # a cell whose task failed or whose create was refused: a result, not pending
LOGGING: Final = "logging"
FAILURE_CODE_TAG: Final = "v2v.failure_code"
FAILURE_TAG: Final = "v2v.failure"
SCORING_ERROR_TAG: Final = "v2v.scoring_error"
METRIC_ERROR_PREFIX: Final = "v2v.metric_error."  # + a metric's name: why that metric has no value on the run
EXPERIMENT_TAG: Final = "v2v.experiment"
SOURCE_TAG: Final = "v2v.source"  # where the source clip is, so dashboards can play it beside the output

# -- a ratings run (KIND_RATINGS) ----------------------------------------------------------------
RATER_TAG: Final = "v2v.rater"
# One tag per judgment, `v2v.judgment.<id>` = its JSON. A tag is one row written in one statement:
# a judgment lands whole the moment it is made, and raters writing at once never touch the same row.
JUDGMENT_TAG_PREFIX: Final = "v2v.judgment."

# -- an experiment's sweep lease on a tracking server (lease.py) ------------------------------------
# One tag per process that holds or tries to take the experiment, `v2v.lease.<id>` = its JSON
# (holder, state, expiry): each process writes only its own, so no write ever overwrites another's.
LEASE_TAG_PREFIX: Final = "v2v.lease."

# The experiment's kind, read by MLflow 3's UI: a tracking experiment opens on its runs table.
EXPERIMENT_KIND_TAG: Final = "mlflow.experimentKind"
EXPERIMENT_KIND: Final = "custom_model_development"

PROMPT_PARAM_CHARS: Final = 250  # params are capped (6000 now, 250/500 on older stores); the full text is prompt.txt
PARAM_COLUMNS: Final = _PARAM_COLUMNS  # a cell's fields, each an MLflow param
SCORE_PARAM_PREFIX: Final = "score."  # a metric's defining parameters (frames, size, crop...)
SERIES_PREFIX: Final = "per_frame."  # a metric's per-frame series, one step per sampled frame
# credits: what the cell's task cost, as the server said (an integer) or, from a provider that sends
# no cost, the estimate standing in (CREDITS_SOURCE_TAG says which); credits_estimated: the estimate
# made before its create.
TIMING_METRICS: Final = ("latency_s", "queue_s", "credits", "credits_estimated")
CREDITS_SOURCE_TAG: Final = "v2v.credits_source"
# Tag -> the column load_runs gives it.
TAG_COLUMNS: Final = {CELL_KEY_TAG: "cell_key", TASK_ID_TAG: "task_id", STATUS_TAG: "status",
                      FAILURE_CODE_TAG: "failure_code", FAILURE_TAG: "failure",
                      SCORING_ERROR_TAG: "scoring_error", SOURCE_TAG: "source", CREDITS_SOURCE_TAG: "credits_source"}

# The output keeps its own suffix: `output` + .mp4 (H.264, 10-bit HEVC), .mov (ProRes, QuickTime) or
# .zip (PNG frames). ARTIFACT_OUTPUT is the H.264 mp4's name, the one every run logged before
# output formats has; readers find the output under any suffix (output_artifact_of).
OUTPUT_ARTIFACT_STEM: Final = "output"
ARTIFACT_OUTPUT: Final = "output.mp4"
ARTIFACT_POSTER: Final = "poster.png"
ARTIFACT_CONTACT_SHEET: Final = "contact_sheet.png"
ARTIFACT_FRAMES: Final = "frames.csv"
ARTIFACT_TASK: Final = "task.json"
ARTIFACT_PROMPT: Final = "prompt.txt"
CELL_ARTIFACTS: Final = (ARTIFACT_OUTPUT, ARTIFACT_POSTER, ARTIFACT_CONTACT_SHEET, ARTIFACT_FRAMES, ARTIFACT_TASK,
                         ARTIFACT_PROMPT)


def user_tag(name: str) -> str:
    return f"{USER_TAG_PREFIX}{name}"


def output_artifact(suffix: str) -> str:
    """The artifact name of an output file with this suffix (".mov" -> "output.mov"); no suffix: output.mp4."""
    return f"{OUTPUT_ARTIFACT_STEM}{suffix.lower()}" if suffix.startswith(".") and len(suffix) > 1 else ARTIFACT_OUTPUT


def is_output_artifact(name: str) -> bool:
    """Whether a run's artifact path is its output: `output.<suffix>` at the top of the run's artifacts."""
    stem, dot, suffix = name.partition(".")
    return stem == OUTPUT_ARTIFACT_STEM and bool(dot) and bool(suffix) and "." not in suffix and "/" not in suffix


def output_artifact_of(names: Iterable[str]) -> str | None:
    """The output among a run's artifact paths: output.mp4 where a run has it (every run logged
    before output formats), else its one `output.<suffix>`; None when it has no output."""
    found = sorted(n for n in names if is_output_artifact(n))
    return ARTIFACT_OUTPUT if ARTIFACT_OUTPUT in found else (found[0] if found else None)
