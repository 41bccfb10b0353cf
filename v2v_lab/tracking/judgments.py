"""Human judgments in the experiment's own MLflow store, beside the runs they judge.

Each rater has a ratings run in the experiment (tag v2v.kind = ratings); each judgment is one tag on
it, `v2v.judgment.<id>`, holding the judgment as JSON. Why tags: a tag is written by one call and
stored as one row, so a judgment is durable the moment `save_judgment` returns (a kernel killed a
second later loses nothing); two raters, or one rater in two windows, write different rows and never
overwrite each other; and any MLflow store works, a colleague's server included, with nothing to
install. MLflow keeps no annotations on runs of its own (its issues #19059, #18325 and #23003 ask).
"""

from __future__ import annotations

import json
import re
import socket
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd
from mlflow.entities import RunTag
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from ..errors import InputError, escape_controls
from .paging import iter_runs
from .reader import existing_experiment, missing_experiment
from .schema import JUDGMENT_TAG_PREFIX, KIND_RATINGS, KIND_TAG, RATER_TAG, WRITER_TAG
from .store import client as make_client
from .store import tracking_uri as resolve_uri

__all__ = ["CHOICES", "Judgment", "RatingsLog", "check_rater", "load_judgments"]

CHOICES = ("left", "right", "tie", "skip")
_RATER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}")


@dataclass(frozen=True)
class Judgment:
    """One choice between two outputs, as it was shown: which run was on the left, which on the right."""

    id: str
    rater: str
    question: str
    by: str  # the column the two runs differ in (model, seed...)
    left_run: str
    right_run: str
    left_value: str  # the `by` value of each side, kept so rankings need not read the runs again
    right_value: str
    choice: str  # left | right | tie | skip
    at: str  # when it was made, ISO 8601 UTC
    seconds: float  # from the pair being shown to the choice

    @property
    def winner(self) -> str | None:
        return {"left": self.left_run, "right": self.right_run}.get(self.choice)


COLUMNS = tuple(f.name for f in fields(Judgment))


def check_rater(rater: object) -> str:
    if not isinstance(rater, str) or not _RATER.fullmatch(rater):
        raise InputError("rater", rater, "a name of 1 to 64 letters, digits, spaces or _ . @ - "
                         "(starting with a letter or digit)")
    return rater


class RatingsLog:
    """Where one rater's judgments on one experiment go. The ratings run is found or made on the first save."""

    def __init__(self, experiment: str, rater: str, *, tracking_uri: str | None = None):
        self.experiment, self.rater = experiment, check_rater(rater)
        self.uri = resolve_uri(tracking_uri)
        found = existing_experiment(experiment, self.uri)  # never a store made by asking
        if found is None:
            raise missing_experiment(experiment, self.uri)
        self.client, exp = found
        self.experiment_id = exp.experiment_id
        self._run_id: str | None = None

    def run_id(self) -> str:
        """The rater's ratings run in the experiment, found or made on first use."""
        if self._run_id is None:
            found = self.client.search_runs([self.experiment_id], max_results=1, filter_string=(
                f"tags.`{KIND_TAG}` = '{KIND_RATINGS}' and tags.`{RATER_TAG}` = '{self.rater}'"))
            if found:
                self._run_id = found[0].info.run_id
            else:  # two first saves at once may make two runs for one rater: reading takes them all
                tags = {KIND_TAG: KIND_RATINGS, RATER_TAG: self.rater, MLFLOW_RUN_NAME: f"ratings by {self.rater}",
                        WRITER_TAG: socket.gethostname()}
                self._run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        return self._run_id

    @staticmethod
    def tag(judgment: Judgment) -> RunTag:
        return RunTag(f"{JUDGMENT_TAG_PREFIX}{judgment.id}", json.dumps(asdict(judgment), separators=(",", ":")))

    def save(self, judgment: Judgment) -> None:
        """Durable when this returns: one tag, one row."""
        self.client.log_batch(self.run_id(), tags=[self.tag(judgment)])


def load_judgments(experiment: str, *, tracking_uri: str | None = None,
                   warned: set[str] | None = None) -> pd.DataFrame:
    """Every judgment on the experiment, from every rater, oldest first (columns: Judgment's fields and winner).
    warned: the tags already said to be no judgment ("run_id/tag"), for a caller that reads again and
    again (RateView, before every pair): each is said once per set, and the ones said now are added."""
    client = make_client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    rows: list[dict[str, Any]] = []
    if exp is not None:
        for run in iter_runs(client, exp.experiment_id, f"tags.`{KIND_TAG}` = '{KIND_RATINGS}'"):
            rows += _parse(run.info.run_id, run.data.tags.items(), set() if warned is None else warned)
    return judgments_frame(rows)


def _parse(run_id: str, tags: Iterable[tuple[str, str]], warned: set[str]) -> list[dict[str, Any]]:
    """The judgments among one ratings run's tags. A tag that is not a judgment's JSON object (written
    by hand, by another tool, cut short) is skipped with one warning naming it (unless in `warned`):
    the others still count."""
    out = []
    for key, value in tags:
        if not key.startswith(JUDGMENT_TAG_PREFIX):
            continue
        record = _json_object(value)
        if record is not None:
            out.append({c: record.get(c) for c in COLUMNS})
        elif f"{run_id}/{key}" not in warned:
            warned.add(f"{run_id}/{key}")
            warnings.warn(escape_controls(f"ratings run {run_id}: tag {key} is not a judgment (not a JSON object); "
                                          "skipped"), stacklevel=3)
    return out


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def judgments_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["seconds"] = pd.to_numeric(df["seconds"], errors="coerce").astype(float)
    df["at"] = pd.to_datetime(df["at"], utc=True, errors="coerce")
    df["winner"] = df["left_run"].where(df["choice"] == "left", df["right_run"].where(df["choice"] == "right"))
    return df.sort_values(["at", "id"], kind="stable").reset_index(drop=True)
