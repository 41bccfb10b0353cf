"""The write side: how a sweep lands in MLflow. All writes go through one thread (one writer),
which keeps a SQLite store consistent with many cells in flight. A part of the store that is away
is waited for, then said in one line (outage.py); an interrupted sweep never waits for it."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlflow.entities import Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from .._failpoints import failpoint
from .._sync import DaemonWorker
from ..api import redact
from .reader import cell_scores, done_cells, recorded_search_winners
from .schema import (
    ARTIFACT_FRAMES,
    ARTIFACT_OUTPUT,
    ARTIFACT_PROMPT,
    ARTIFACT_SEARCH,
    ARTIFACT_SEEDS,
    ARTIFACT_SPEC,
    ARTIFACT_TASK,
    CELL_KEY_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    KIND_CELL,
    KIND_SWEEP,
    KIND_TAG,
    LOGGING,
    SEARCH_BEST_TAG,
    SEEDS_TAG,
    SERIES_PREFIX,
    STATUS_SUCCEEDED,
    STATUS_TAG,
    WRITER_TAG,
    output_artifact,
)
from .store import artifact_location, tracking_uri
from .store import client as make_client

__all__ = ["SweepWriter", "ensure_experiment", "log_values"]


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def log_values(client: Any, rid: str, *, params: dict[str, Any] | None = None,
               metrics: dict[str, float] | None = None, series: dict[str, list[float]] | None = None) -> None:
    """Params, then metrics with their per-frame series (as steps), into one run. Up to 1000
    metric values go in one call, so they land together or not at all (rescore relies on it)."""
    ts = int(time.time() * 1000)
    plist = [Param(k, str(v)[:6000]) for k, v in (params or {}).items() if v is not None]
    mlist = [Metric(k, float(v), ts, 0) for k, v in (metrics or {}).items()
             if v is not None and v == v]  # NaN is not logged: a missing value, not a zero
    for name, values in (series or {}).items():
        mlist += [Metric(f"{SERIES_PREFIX}{name}", float(v), ts, i) for i, v in enumerate(values) if v == v]
    if len(plist) <= 100 and len(mlist) <= 1000:
        # One call, one request to a server: a store applies a batch's params before its metrics.
        client.log_batch(rid, metrics=mlist, params=plist)
        return
    for chunk in _chunks(plist, 100):
        client.log_batch(rid, params=chunk)
    for chunk in _chunks(mlist, 1000):
        client.log_batch(rid, metrics=chunk)


def ensure_experiment(client: Any, uri: str, name: str) -> str:
    """The id of the experiment `name` in the store at `uri`, made (or restored) if needed."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        if EXPERIMENT_KIND_TAG not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    try:
        # MLflow 3's UI opens an experiment by its kind: a tracking one shows its runs table
        # with metric columns, not the GenAI traces page.
        return client.create_experiment(name, artifact_location=artifact_location(uri, name),
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:  # created meanwhile by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class SweepWriter:
    def __init__(self, experiment: str, uri: str | None = None):
        self.uri = tracking_uri(uri)
        self.client = make_client(self.uri)
        self._pool = DaemonWorker("v2v-mlflow")
        self.experiment = experiment
        self.experiment_id = self._pool.submit(ensure_experiment, self.client, self.uri, experiment).result()
        self.parent_run_id: str | None = None

    # -- reads needed by the runner ---------------------------------------------------------------
    def done_cell_keys(self, cell_key: str | None = None) -> dict[str, str]:
        """cell key -> run id of child runs already finished with an output (resume without a journal);
        with cell_key, that cell's only."""
        return self._pool.submit(done_cells, self.client, self.experiment_id, cell_key).result()

    def cell_scores(self, metric: str) -> dict[str, float | None]:
        """cell key -> its recorded value of `metric` (None: its run ended without one): what a search reads."""
        return self._pool.submit(cell_scores, self.client, self.experiment_id, metric).result()

    def search_winners(self) -> set[str]:
        """The winners this experiment's finished searches recorded."""
        return self._pool.submit(recorded_search_winners, self.client, self.experiment_id).result()

    def delete_incomplete_runs(self, cell_key: str | None = None) -> int:
        """Delete (MLflow's soft delete) cell runs left "logging" by a writer that no longer
        exists: a sweep killed while logging. Returns how many. Without cell_key: runs of dead
        processes of this machine. With it (a shared sweep that has just claimed the cell): any
        other writer's, on any machine, since a claim passes on only when its holder is gone."""
        def clean() -> int:
            host = socket.gethostname()
            removed = 0
            query = f"tags.`{STATUS_TAG}` = '{LOGGING}'"
            if cell_key is not None:
                query += f" and tags.`{CELL_KEY_TAG}` = '{cell_key}'"
            for run in self.client.search_runs([self.experiment_id], filter_string=query, max_results=5000):
                gone = (run.data.tags.get(WRITER_TAG) != _writer_id() if cell_key is not None
                        else _left_by_a_dead_process(run, host))
                if gone:
                    self.client.delete_run(run.info.run_id)
                    removed += 1
            return removed
        return self._pool.submit(clean).result()

    def end_interrupted_parents(self) -> list[str]:
        """Sweep runs left RUNNING by a process of this machine that no longer exists (killed):
        marked KILLED. Returns their ids, newest first, so the next sweep can link the one it continues."""
        def end() -> list[str]:
            host = socket.gethostname()
            ended = []
            for run in self.client.search_runs([self.experiment_id], filter_string=(
                    f"tags.`{KIND_TAG}` = '{KIND_SWEEP}' and attributes.status = 'RUNNING'"),
                    order_by=["attribute.start_time DESC"], max_results=1000):
                if _left_by_a_dead_process(run, host):
                    self.client.set_terminated(run.info.run_id, status="KILLED")
                    ended.append(run.info.run_id)
            return ended
        return self._pool.submit(end).result()

    # -- parent run ----------------------------------------------------------------------------------
    def start_parent(self, name: str, params: dict[str, Any], tags: dict[str, str], spec_text: str,
                     seeds: list[int] | None = None) -> str:
        """The sweep's run. seeds: {random: N} seeds drawn for it, kept so a rerun that lost its
        state folder draws none anew (and so pays for nothing again)."""
        def start() -> str:
            run_tags = {**tags, KIND_TAG: KIND_SWEEP, MLFLOW_RUN_NAME: name, WRITER_TAG: _writer_id()}
            if seeds is not None:
                run_tags[SEEDS_TAG] = str(len(seeds))
            run = self.client.create_run(self.experiment_id, run_name=name, tags=run_tags)
            rid = run.info.run_id
            self._log_batch(rid, params=params)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / ARTIFACT_SPEC
                path.write_text(spec_text)
                self.client.log_artifact(rid, str(path))
                if seeds is not None:
                    (Path(tmp) / ARTIFACT_SEEDS).write_text(json.dumps(seeds))
                    self.client.log_artifact(rid, str(Path(tmp) / ARTIFACT_SEEDS))
            return rid
        self.parent_run_id = self._pool.submit(start).result()
        return self.parent_run_id

    def record_search(self, best: str | None, rounds: dict[str, Any]) -> None:
        """A search's outcome on its parent: the winner (tag, when there is one) and every round
        (search.json). Written before the parent finishes: a finished search parent holds both."""
        def record() -> None:
            rid = self.parent_run_id
            assert rid is not None
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / ARTIFACT_SEARCH
                path.write_text(json.dumps(rounds, indent=2, default=str))
                self.client.log_artifact(rid, str(path))
            if best is not None:
                self.client.set_tag(rid, SEARCH_BEST_TAG, best[:5000])
        if self.parent_run_id is not None:
            self._pool.submit(record).result()

    def finish_parent(self, totals: dict[str, float], status: str = "FINISHED") -> None:
        if self.parent_run_id is not None:
            self._pool.submit(self._finish, self.parent_run_id, totals, status).result()

    def abandon_parent(self, totals: dict[str, float], wait_s: float = 3.0) -> None:
        """The sweep was interrupted or failed: its parent says KILLED if the store takes it within
        wait_s. Never raises and never waits longer: a store that is away (or a write still stuck
        ahead of this one) must not hold Ctrl-C or hide the error that ended the sweep; the next
        sweep ends a parent left RUNNING (end_interrupted_parents)."""
        if self.parent_run_id is None:
            return
        with contextlib.suppress(Exception):  # said by the error that ended the sweep
            self._pool.submit(self._finish, self.parent_run_id, totals, "KILLED").result(timeout=wait_s)

    def _finish(self, rid: str, totals: dict[str, float], status: str) -> None:
        self._log_batch(rid, metrics=totals)
        self.client.set_terminated(rid, status=status)

    # -- child runs ----------------------------------------------------------------------------------
    def log_cell(self, *, name: str, params: dict[str, Any], tags: dict[str, str], metrics: dict[str, float],
                 series: dict[str, list[float]], artifacts: dict[str, str], task: dict[str, Any] | None,
                 prompt: str, frames_csv: list[dict[str, Any]] | None, secrets: tuple = (),
                 started: float | None = None) -> str:
        """One child run with everything about a cell. Blocks until written; returns the run id.
        started: wall time the cell's work began, so the run spans the generation, not its logging."""
        def write() -> str:
            # The run says "logging" until everything is in: a run a kill cut short is never taken
            # for a finished cell, and the next sweep can find it and remove it (delete_incomplete_runs).
            run = self.client.create_run(self.experiment_id, run_name=name, start_time=_ms(started), tags={
                **tags, STATUS_TAG: LOGGING, WRITER_TAG: _writer_id(), MLFLOW_PARENT_RUN_ID: self.parent_run_id or "",
                MLFLOW_RUN_NAME: name, KIND_TAG: KIND_CELL})
            rid = run.info.run_id
            try:
                self._log_batch(rid, params=params, metrics=metrics, series=series)
                failpoint("log_partial")  # crash tests: the run exists with its numbers, no artifacts yet
                with tempfile.TemporaryDirectory() as tmp:
                    (Path(tmp) / ARTIFACT_PROMPT).write_text(prompt)
                    self.client.log_artifact(rid, str(Path(tmp) / ARTIFACT_PROMPT))
                    if task is not None:
                        text = redact(json.dumps(task, indent=2, default=str), *secrets)
                        (Path(tmp) / ARTIFACT_TASK).write_text(text)
                        self.client.log_artifact(rid, str(Path(tmp) / ARTIFACT_TASK))
                    if frames_csv:
                        table = Path(tmp) / ARTIFACT_FRAMES
                        with open(table, "w", newline="") as fh:
                            writer = csv.DictWriter(fh, fieldnames=list(frames_csv[0]))
                            writer.writeheader()
                            writer.writerows(frames_csv)
                        self.client.log_artifact(rid, str(table))
                local = _local_artifact_dir(run.info.artifact_uri)
                for art_name, path in artifacts.items():
                    if art_name == ARTIFACT_OUTPUT:
                        # The output keeps its real suffix (output.mov, output.zip): readers know a
                        # format by it, and a ProRes file named .mp4 would mislead every player.
                        art_name = output_artifact(Path(path).suffix)
                    if path and os.path.isfile(path):
                        self._log_file(rid, path, art_name, local)
                self.client.set_tag(rid, STATUS_TAG, tags.get(STATUS_TAG, ""))  # last: the run is complete
                self.client.set_terminated(rid, status="FINISHED" if tags.get(STATUS_TAG) == STATUS_SUCCEEDED
                                           else "FAILED", end_time=_ms(time.time()))
            except BaseException:
                self.client.set_terminated(rid, status="FAILED")
                raise
            return rid
        return self._pool.submit(write).result()

    def _log_file(self, rid: str, path: str, art_name: str, local: Path | None) -> None:
        """One file as the run's artifact `art_name`. Beside a local store on the same disk, a hard
        link: the kept output and the run's artifact are one file on disk, not two copies (deleting
        either leaves the other whole). Elsewhere (a server, another disk), uploaded as MLflow does."""
        if local is not None and _same_fs(path, str(_nearest_existing(local))):
            local.mkdir(parents=True, exist_ok=True)
            target = local / art_name
            target.unlink(missing_ok=True)
            os.link(path, target)
            return
        if os.path.basename(path) == art_name:
            self.client.log_artifact(rid, path)
            return
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / art_name
            os.link(path, target) if _same_fs(path, tmp) else target.write_bytes(Path(path).read_bytes())
            self.client.log_artifact(rid, str(target))

    def _log_batch(self, rid: str, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
                   series: dict[str, list[float]] | None = None) -> None:
        log_values(self.client, rid, params=params, metrics=metrics, series=series)

    def close(self) -> None:
        self._pool.close()


def _local_artifact_dir(artifact_uri: str | None) -> Path | None:
    """The folder of a run's artifacts when it is on this machine (a local store's), else None."""
    if not artifact_uri:
        return None
    parts = urlsplit(artifact_uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" and artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _same_fs(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _left_by_a_dead_process(run: Any, host: str) -> bool:
    """Whether the run was written by a process of this machine that no longer exists (killed)."""
    writer_host, _, pid = run.data.tags.get(WRITER_TAG, "").rpartition(":")
    return writer_host == host and pid.isdigit() and not _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
