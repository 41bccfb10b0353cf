"""rescore: score an experiment's kept outputs again, into the same MLflow runs, on Dask.

For a metric added after a study was paid for (a new built-in, a plugin) or a changed scoring size.
Never a create: nothing here knows the endpoint. Each output is read from the run's own output
artifact, whatever its format (`output.mp4`, `output.mov`, `output.zip` of PNG frames, played at
the model's catalog `output_fps`), a local store's file directly, a server's or S3's downloaded by
the worker, so a Dask worker on another machine needs only the tracking URI. An output that is
not a video is that run's failure, said in one line.

Two versions are never confused: a value is written under the metric's own name when the run has
none yet, or has one measured the same way (same sampling, same metric params); measured another
way, it goes under a name that says how (`structure.size128.frames16`, or `.v<hash>` when the
metric's own params changed), with its params beside it as `score.<key>.*`.

Idempotent: a run's values are written by one batch call (tracking.rescores.log_rescored), after
its params; a run that already has a key is skipped, so a rerun after kill -9 writes each value once.

Only scoring is decided here; what is read from the store and written to it (and how) is
tracking.rescores', so this module never talks to MLflow itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._extras import require
from ._failpoints import failpoint
from .api.catalog import load_catalog
from .errors import InputError
from .media.sampling import check_sampling
from .metrics import REGISTRY, metric_names, score
from .metrics.base import check_metric_names, metric_of
from .metrics.score import sampling_key
from .scoring_config import DEFAULT_SCORING
from .tracking.rescores import cell_prompt, fetched_output, kept_cells, log_rescored, output_uri, study_id
from .tracking.schema import SCORE_PARAM_PREFIX
from .tracking.store import check_store
from .tracking.store import client as make_client

__all__ = ["RescoreJob", "RescoreResult", "batch_size", "rescore", "score_batch", "score_job"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescoreJob:
    """One output to score: everything a worker needs, and nothing secret."""

    run_id: str
    source: str
    output_uri: str
    keys: dict[str, str]  # metric name -> the key its value is written under
    prompt: str | None
    frames: int
    size: int
    crop: str
    tracking_uri: str
    sequence_fps: float | None = None  # the frame rate of an output that is a .zip of PNG frames


@dataclass
class RescoreResult:
    experiment: str
    runs: int = 0
    written: dict[str, list[str]] = field(default_factory=dict)  # run id -> keys written
    already: int = 0  # runs that had every requested value
    missing: dict[str, str] = field(default_factory=dict)  # run id -> why its output or source is gone
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error
    wall_s: float = 0.0

    @property
    def values_written(self) -> int:
        return sum(len(v) for v in self.written.values())

    def summary(self) -> str:
        lines = [f"rescore {self.experiment}: {self.runs} runs; {len(self.written)} rescored "
                 f"({self.values_written} values), {self.already} already had them, "
                 f"{len(self.missing)} outputs gone, {len(self.failed)} failed; {self.wall_s:.1f}s"]
        lines += [f"  gone   {rid}: {why}" for rid, why in self.missing.items()]
        lines += [f"  failed {rid}: {why}" for rid, why in self.failed.items()]
        return "\n".join(lines)


# A run scored before the sampling was recorded was scored with the defaults of its time: this is
# history, not today's default (ScoringConfig), and stays as it is if the default ever changes.
UNRECORDED_SAMPLING = sampling_key(16, 256, "center")


def _params_of(metric: str) -> dict[str, str]:
    return {k: str(v) for k, v in REGISTRY[metric].params.items()}


def _version(params: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:6]


def key_for(metric: str, run_params: dict[str, str], sampling: str, frames: int, size: int, crop: str,
            scored: bool = True) -> str:
    """Where this metric's value goes in this run: its own name unless the run already holds a
    value of it measured another way (see the module's docstring). scored: whether the run holds
    any metric value at all; one never scored (a sweep with scoring off) takes the plain names,
    whatever the sampling, and records it."""
    recorded = run_params.get(f"{SCORE_PARAM_PREFIX}sampling")
    same_sampling = (recorded or UNRECORDED_SAMPLING) == sampling or (recorded is None and not scored)
    key = metric if same_sampling else f"{metric}.size{size}.frames{frames}" + ("" if crop == "center" else f".{crop}")
    mine = _params_of(metric)
    theirs = {k: run_params.get(f"{SCORE_PARAM_PREFIX}{key}.{k}") for k in mine}
    if any(v is not None for v in theirs.values()) and theirs != mine:
        key = f"{key}.v{_version(mine)}"
    return key


def score_job(job: RescoreJob) -> dict[str, Any]:
    """Runs on a Dask worker: score one output, return values, series and params (never raises
    for a gone output or a failed score: those are results to report)."""
    if not os.path.isfile(job.source):
        return {"run_id": job.run_id, "missing": f"source not found ({job.source})"}
    try:
        with fetched_output(job.output_uri, job.tracking_uri) as output:
            report = score(job.source, output, list(job.keys), frames=job.frames, size=job.size, crop=job.crop,
                           prompt=job.prompt, sequence_fps=job.sequence_fps)
    except FileNotFoundError as exc:
        return {"run_id": job.run_id, "missing": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a scoring failure is recorded per run, never fatal
        return {"run_id": job.run_id, "error": f"{type(exc).__name__}: {exc}"}
    return {"run_id": job.run_id, "values": report.values, "series": report.series, "params": report.params}


def _sequence_fps(output: str, model: str | None) -> float | None:
    """The rate a .zip of PNG frames plays at: its model's catalog output_fps (None: the default)."""
    if not output.endswith(".zip") or model is None:
        return None
    spec = load_catalog().get(model)
    return spec.output_fps if spec is not None else None


def _plan(experiment: str, names: list[str], frames: int, size: int, crop: str, uri: str,
          result: RescoreResult) -> tuple[list[RescoreJob], dict[str, dict[str, str]]]:
    mlflow_client = make_client(uri)
    sampling = sampling_key(frames, size, crop)
    jobs, run_params = [], {}
    for cell in kept_cells(mlflow_client, study_id(mlflow_client, experiment, uri)):
        result.runs += 1
        scored = any(metric_of(k) is not None for k in cell.metrics)
        keys = {m: key_for(m, cell.params, sampling, frames, size, crop, scored) for m in names}
        keys = {m: k for m, k in keys.items() if k not in cell.metrics}
        if not keys:
            result.already += 1
            continue
        run_params[cell.run_id] = cell.params
        output = output_uri(mlflow_client, cell)
        jobs.append(RescoreJob(cell.run_id, cell.source, output, keys, cell_prompt(mlflow_client, cell), frames,
                               size, crop, uri, _sequence_fps(output, cell.params.get("model"))))
    return jobs, run_params


def score_batch(jobs: list[RescoreJob]) -> list[dict[str, Any]]:
    """Runs on a Dask worker: score_job for each output of one task, in order. A task carries
    several outputs of the same source (see _batches), so the worker decodes that source once
    (media.sampling keeps it) and pays Dask's per-task round trip once for the lot; one output's
    failure is that output's result, never the batch's."""
    return [score_job(job) for job in jobs]


# Outputs per Dask task: enough tasks for every worker to get about 8 (so the last ones even out
# the workers' finishing times), and at most 16 each (a worker lost mid-task loses at most that).
TASKS_PER_WORKER = 8
MAX_BATCH = 16


def batch_size(outputs: int, workers: int) -> int:
    return max(1, min(MAX_BATCH, outputs // (max(1, workers) * TASKS_PER_WORKER)))


def _batches(jobs: list[RescoreJob], size: int) -> list[list[RescoreJob]]:
    """The jobs in tasks of `size`, those of one source together (its decode is then shared)."""
    ordered = sorted(jobs, key=lambda job: job.source)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def _warm_worker() -> Any:
    """A Dask worker plugin that, on each worker as it joins, imports the metrics and starts their
    shared threads (metrics._pool), so the first outputs scored there do not pay for it. Made
    here: Dask (an extra) has the base class, and refuses a plugin that does not inherit it."""

    class WarmMetrics(_distributed().WorkerPlugin):  # type: ignore[misc]
        name = "v2v-lab-warm-metrics"
        idempotent = True

        def setup(self, worker: Any) -> None:
            from .metrics import _pool

            _pool.parallel_map(abs, range(4))

    return WarmMetrics()


def _distributed() -> Any:
    """dask.distributed, or the one line saying rescoring needs the [dask] extra."""
    return require("dask.distributed", "dask", "rescoring (on Dask)")


@contextmanager
def _dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    distributed = _distributed()
    if scheduler:
        with distributed.Client(scheduler, timeout="30s") as client:
            client.register_plugin(_warm_worker())
            yield client
        return
    with distributed.LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        client.register_plugin(_warm_worker())
        yield client


def _workers_of(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _record(result: RescoreResult, res: dict[str, Any], writes: list[tuple[str, dict[str, Any]]]) -> None:
    """One output's result: gone or failed into `result`, values to write into `writes`."""
    rid = res["run_id"]
    if "missing" in res:
        result.missing[rid] = res["missing"]
    elif "error" in res:
        result.failed[rid] = res["error"]
    else:
        writes.append((rid, res))


def _write(mlflow_client: Any, writes: list[tuple[str, dict[str, Any]]], by_id: dict[str, RescoreJob],
           run_params: dict[str, dict[str, str]], result: RescoreResult) -> None:
    """A task's values into their runs, one log_batch per run (tracking.rescores.log_rescored)."""
    for rid, res in writes:
        try:
            log_rescored(mlflow_client, rid, by_id[rid].keys, values=res["values"], series=res["series"],
                         measured=res["params"], run_params=run_params[rid])
            result.written[rid] = sorted(by_id[rid].keys.values())
            failpoint("rescore_written")  # crash tests: a kill between two runs' writes
        except Exception as exc:  # noqa: BLE001 - one run's store error is that run's
            result.failed[rid] = f"not written: {type(exc).__name__}: {exc}"


def _run_batches(client: Any, jobs: list[RescoreJob], batch: int | None, uri: str,
                 run_params: dict[str, dict[str, str]], result: RescoreResult, progress: bool) -> None:
    mlflow_client = make_client(uri)
    by_id = {job.run_id: job for job in jobs}
    batches = _batches(jobs, batch or batch_size(len(jobs), _workers_of(client)))
    futures = client.map(score_batch, batches, pure=False)
    tasks = dict(zip(futures, batches, strict=True))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="rescore", unit="output")
    for future in _distributed().as_completed(futures):
        try:
            results = future.result()
        except Exception as exc:  # noqa: BLE001 - a task lost (its worker died) or broken: its outputs failed, no others
            results = [{"run_id": job.run_id, "error": f"task failed: {type(exc).__name__}: {exc}"}
                       for job in tasks[future]]
        writes: list[tuple[str, dict[str, Any]]] = []
        for res in results:
            _record(result, res, writes)
        _write(mlflow_client, writes, by_id, run_params, result)
        if bar is not None:
            bar.update(len(results))
    if bar is not None:
        bar.close()


def rescore(
    experiment: str,
    metrics: Sequence[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    frames: int = DEFAULT_SCORING.frames,
    size: int = DEFAULT_SCORING.size,
    crop: str = DEFAULT_SCORING.crop,
    tracking_uri: str | None = None,
    progress: bool = False,
    batch: int | None = None,
) -> RescoreResult:
    """Score the experiment's kept outputs with `metrics` (default: all) and write the values into
    their runs. workers: Dask LocalCluster processes (default: one per core); scheduler: the
    address of a running Dask scheduler (tcp://HOST:PORT) to use instead. batch: outputs per Dask
    task (default: batch_size, about 8 tasks per worker, at most 16 outputs each)."""
    t0 = time.perf_counter()
    names = list(metrics or metric_names())
    check_metric_names(names)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError("workers", workers, "an integer of at least 1")
    if workers is not None and scheduler:
        raise InputError("workers", workers, "either workers (a local cluster) or scheduler, not both")
    if scheduler is not None and urlsplit(scheduler).scheme not in ("tcp", "tls", "inproc", "ws", "wss"):
        raise InputError("scheduler", scheduler, "a Dask scheduler address such as tcp://HOST:8786")
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise InputError("batch", batch, "an integer of at least 1")
    check_sampling(frames, size, crop)
    _distributed()  # said before the store is read: without Dask there is no rescoring at all
    uri = check_store(tracking_uri)
    result = RescoreResult(experiment)
    jobs, run_params = _plan(experiment, names, frames, size, crop, uri, result)
    if jobs:
        with _dask_client(workers or (None if scheduler else os.cpu_count() or 1), scheduler) as client:
            _run_batches(client, jobs, batch, uri, run_params, result, progress)
    result.wall_s = time.perf_counter() - t0
    return result

