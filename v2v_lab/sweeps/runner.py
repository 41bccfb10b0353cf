"""Run a plan: concurrency within the account's limits, a durable journal, resume without paying twice,
scoring off the event loop, and every cell written to MLflow."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._failpoints import failpoint
from ..api.catalog import RUNWAY_API_VERSION
from ..api.client import AsyncRunwayClient
from ..api.providers import get_provider
from ..api.task import Task, TaskStatus, classify_failure
from ..api.validation import GenerationRequest, uri_kind
from ..errors import (
    APIError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    DownloadError,
    InputError,
    NotFoundError,
    RateLimitError,
    V2VError,
    WaitTimeoutError,
)
from ..media.posters import write_contact_sheet, write_poster
from ..metrics.score import DEFAULT_METRICS, ScoreReport, score
from ..tracking.reader import recorded_seeds
from ..tracking.store import check_store, lock_dir
from ..tracking.writer import CONTINUES_TAG, PROMPT_PARAM_CHARS, SweepWriter
from .budget import check_budget, confirm_spend, spend_question
from .journal import ExperimentLock, Journal, experiment_digest, state_dir
from .plan import Cell, Plan, build_plan, seeds_record
from .spec import SeedRandom, SweepSpec, load_spec


@dataclass
class SweepOptions:
    dry_run: bool = False
    yes: bool = False
    max_credits: float | None = None
    concurrency: int | None = None
    provider: str | None = None
    base_url: str | None = None
    force: bool = False
    retry_failed: bool = False
    retry_unknown: bool = False
    tracking_uri: str | None = None
    journal_path: str | None = None
    progress: bool = True
    confirm: Callable[[str], bool] | None = None
    on_event: Callable[[str, Cell, dict[str, Any]], None] | None = None

    def check(self) -> None:
        """Bad numbers are refused by name: a NaN cap would disable the budget, a concurrency of 0
        would silently mean "the spec's"."""
        if self.max_credits is not None and (not isinstance(self.max_credits, (int, float))
                                             or not math.isfinite(self.max_credits) or self.max_credits < 0):
            raise InputError("--max-credits", self.max_credits, "a finite number of credits, 0 or more")
        if self.concurrency is not None and (isinstance(self.concurrency, bool) or not isinstance(
                self.concurrency, int) or not 1 <= self.concurrency <= 64):
            raise InputError("--concurrency", self.concurrency, "a whole number from 1 to 64")


@dataclass
class CellOutcome:
    cell: Cell
    state: str                       # done | failed | unknown | missing | planned
    task_id: str | None = None
    failure_code: str | None = None
    run_id: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    credits: float = 0.0
    note: str = ""


@dataclass
class SweepResult:
    plan: Plan
    outcomes: list[CellOutcome]
    parent_run_id: str | None
    wall_s: float
    tracking_uri: str | None
    dry_run: bool = False
    already_done: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.state for o in self.outcomes))

    @property
    def credits_spent(self) -> float:
        return sum(o.credits for o in self.outcomes)

    def table(self, metrics: tuple[str, ...] = ("ssim_source", "temporal_consistency", "warp_error")) -> str:
        head = ["state", "model", "seed", "ratio", "prompt", *metrics]
        rows = []
        for o in self.outcomes:
            c = o.cell
            vals = [f"{o.values[m]:.4f}" if m in o.values else "-" for m in metrics]
            prompt = c.prompt if len(c.prompt) <= 36 else c.prompt[:33] + "..."
            state = o.state + (f" ({o.failure_code})" if o.failure_code else "")
            rows.append([state, c.model, str(c.seed), c.ratio or "-", prompt, *vals])
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def _experiment_dir(experiment: str) -> Path:
    return state_dir() / "outputs" / experiment_digest(experiment)


class _Progress:
    """One display for the whole sweep (tqdm.auto: a bar in a terminal, a widget in a notebook)."""

    def __init__(self, total: int, enabled: bool, plan: Plan):
        self.counts: Counter[str] = Counter()
        self.credits = 0.0
        self.bar = None
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=plan.spec.experiment, unit="cell", dynamic_ncols=True)

    def state(self, old: str | None, new: str) -> None:
        if old:
            self.counts[old] -= 1
        self.counts[new] += 1
        if self.bar is not None:
            if new in ("done", "failed", "unknown"):
                self.bar.update(1)
            self.bar.set_postfix({k: v for k, v in self.counts.items() if v} | {"credits": round(self.credits)},
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SweepRunner:
    def __init__(self, spec: SweepSpec, options: SweepOptions):
        options.check()
        if options.provider:
            spec = spec.override(provider=options.provider)  # a copy: the caller's spec is left alone
        self.spec = spec
        self.opts = options
        _check_spec_base_url(spec, options)
        recorded = None
        record = seeds_record(spec, state_dir())
        if isinstance(spec.seeds, SeedRandom) and record is not None and not record.is_file():
            # The state folder lost its draw (or never had it): the store kept the seeds it paid for.
            recorded = recorded_seeds(spec.experiment, spec.seeds.random, options.tracking_uri)
        self.plan = build_plan(spec, state_dir=state_dir(), recorded_seeds=recorded)
        self.journal: Journal | None = None
        self.writer: SweepWriter | None = None
        self.client: AsyncRunwayClient | None = None
        self.progress: _Progress | None = None
        self._score_lock = asyncio.Semaphore(1)
        self._started: dict[str, float] = {}  # cell key -> wall time its work began (its run's start)

    # -- what is left to do ---------------------------------------------------------------------------
    def classify(self, journal: Journal, done_in_mlflow: dict[str, str]) -> dict[str, list[Cell]]:
        rows = journal.all(self.spec.experiment)
        groups: dict[str, list[Cell]] = {k: [] for k in ("new", "resume", "finish", "done", "failed", "unknown",
                                                         "missing")}
        for cell in self.plan.cells:
            row = rows.get(cell.key)
            if self.opts.force:
                groups["new"].append(cell)
            elif row is None:
                groups["done" if cell.key in done_in_mlflow else "new"].append(cell)
            elif cell.key in done_in_mlflow and row.state != "created":
                groups["done"].append(cell)
            elif row.state == "done":
                # Paid for and kept, but not in this store (another MLFLOW_TRACKING_URI, a notebook's
                # own store): the journal is the ledger, a store only a view. Log it from the kept
                # output; only --force pays again for one whose output is gone.
                kept = row.output_path and os.path.isfile(row.output_path)
                groups["finish" if kept else "missing"].append(cell)
            elif row.state == "created":
                groups["resume"].append(cell)
            elif row.state == "succeeded":
                groups["finish"].append(cell)
            elif row.state in ("sending", "unknown"):
                groups["new" if self.opts.retry_unknown else "unknown"].append(cell)
            elif row.state == "failed":
                retry = self.opts.retry_failed and row.retryable
                groups["new" if retry else "failed"].append(cell)
        return groups

    def budget_check(self, to_create: list[Cell], org: Any | None) -> None:
        cap = self.opts.max_credits if self.opts.max_credits is not None else self.spec.budget.max_credits
        check_budget([c.model for c in to_create], sum(c.credits for c in to_create), cap, org)

    # -- the run --------------------------------------------------------------------------------------
    async def run(self) -> SweepResult:
        t0 = time.monotonic()
        spec, opts = self.spec, self.opts
        self.journal = Journal(opts.journal_path)
        if opts.dry_run:
            rows = self.journal.all(spec.experiment)
            done = [c for c in self.plan.cells if rows.get(c.key) and rows[c.key].state == "done"]
            outcomes = [CellOutcome(c, "done" if c in done else "planned") for c in self.plan.cells]
            return SweepResult(self.plan, outcomes, None, 0.0, None, dry_run=True, already_done=len(done))
        store = check_store(opts.tracking_uri)
        store_locks = lock_dir(store)
        folders = [self.journal.path.parent / "locks"] + ([store_locks] if store_locks else [])
        lock = ExperimentLock(spec.experiment, folders)
        lock.acquire()
        try:
            return await self._run_locked(t0)
        finally:
            lock.release()
            self.journal.close()

    async def _run_locked(self, t0: float) -> SweepResult:
        spec, opts = self.spec, self.opts
        self.plan.provider.require_key()  # before the store is touched
        self.writer = await asyncio.to_thread(SweepWriter, spec.experiment, opts.tracking_uri)
        # Runs a killed sweep left half-logged: their cells are logged again in full below.
        removed = await asyncio.to_thread(self.writer.delete_incomplete_runs)
        if removed:
            self.plan.warnings.append(f"removed {removed} half-logged run(s) left by an interrupted sweep")
        done_in_mlflow = {} if opts.force else await asyncio.to_thread(self.writer.done_cell_keys)
        groups = self.classify(self.journal, done_in_mlflow)
        rows = self.journal.all(spec.experiment)
        for cell in groups["done"]:
            row = rows.get(cell.key)
            if row is not None and row.state != "done" and cell.key in done_in_mlflow:
                # Killed after its run was logged, before the journal heard: the run is the proof.
                self.journal.set(spec.experiment, cell.key, "done", run_id=done_in_mlflow[cell.key])
        for cell in groups["unknown"]:
            if rows[cell.key].state == "sending":  # killed while sending: the create may have arrived
                self.journal.set(spec.experiment, cell.key, "unknown",
                                 detail={"error": "interrupted while the create was being sent"})
        to_create = groups["new"]
        outcomes: list[CellOutcome] = [CellOutcome(c, "done", note="already done") for c in groups["done"]]
        outcomes += [CellOutcome(c, "unknown", note="create outcome unknown: not sent again "
                                 "(use --retry-unknown)") for c in groups["unknown"]]
        outcomes += [CellOutcome(c, "failed", note="failed before: not retried") for c in groups["failed"]]
        outcomes += [CellOutcome(c, "missing", note="done in the journal, but not in this store and its output "
                                 "file is gone: --force pays for it again") for c in groups["missing"]]
        work = groups["resume"] + groups["finish"] + to_create
        self.budget_check(to_create, None)
        if not work:
            # Nothing to do writes nothing: no empty parent run per rerun.
            await asyncio.to_thread(self.writer.close)
            return SweepResult(self.plan, self._in_plan_order(outcomes), None, time.monotonic() - t0, self.writer.uri,
                               already_done=len(groups["done"]))
        base_url = opts.base_url or spec.base_url
        emu_opts = spec.emulator.model_dump()
        self.client = await asyncio.to_thread(
            AsyncRunwayClient, spec.provider, base_url=base_url,
            emulator_options={"render_scale": emu_opts["render_scale"], "run_s": emu_opts["run_s"],
                              "queue_s": emu_opts["queue_s"]})
        try:
            org = await self._organization() if work else None
            self.budget_check(to_create, org)
            if to_create and self.client.provider.paid and not opts.yes:
                self._confirm(to_create)
            result = await self._run_cells(work, groups, org, outcomes, t0)
        finally:
            await self.client.aclose()
            await asyncio.to_thread(self.writer.close)
        return result

    async def _organization(self):
        try:
            return await self.client.organization()
        except (NotFoundError, APIError) as exc:
            if getattr(exc, "status_code", None) in (401,):
                raise
            self.plan.warnings.append(f"organization limits not readable ({exc}); concurrency from the spec only")
            return None

    def _confirm(self, to_create: list[Cell]) -> None:
        question = spend_question(len(to_create), self.client.provider.name, sum(c.credits for c in to_create))
        confirm_spend(question, self.opts.confirm)

    async def _run_cells(self, work, groups, org, outcomes, t0) -> SweepResult:
        spec, opts = self.spec, self.opts
        limit = opts.concurrency or spec.concurrency
        per_model = {}
        for model in {c.model for c in work}:
            org_limit = org.models[model].max_concurrent if org and model in org.models else limit
            per_model[model] = asyncio.Semaphore(max(1, min(limit, org_limit)))
        total_sem = asyncio.Semaphore(limit)
        self.progress = _Progress(len(work), opts.progress, self.plan)
        parent_name = f"{spec.experiment} sweep {time.strftime('%Y-%m-%d %H:%M:%S')}"
        params = {"experiment": spec.experiment, "provider": spec.provider, "models": ",".join(spec.models),
                  "cells_planned": len(self.plan.cells), "cells_to_run": len(work), "seeds": ",".join(
                      str(s) for s in self.plan.seeds)[:5000], "api_version": RUNWAY_API_VERSION,
                  "concurrency": limit, "estimate_credits": round(sum(c.credits for c in groups["new"]), 3)}
        spec_text = spec.model_dump_json(indent=2)
        interrupted = await asyncio.to_thread(self.writer.end_interrupted_parents)
        parent_tags = {f"v2v.tag.{k}": v for k, v in spec.tags.items()} | {"v2v.provider": spec.provider}
        if interrupted:
            parent_tags[CONTINUES_TAG] = interrupted[0]
        await asyncio.to_thread(self.writer.start_parent, parent_name, params, parent_tags, _yaml_of(spec_text),
                                self.plan.seeds if isinstance(spec.seeds, SeedRandom) else None)
        resume = {c.key for c in groups["resume"]}
        finish = {c.key for c in groups["finish"]}
        try:
            results = await asyncio.gather(*(self._cell(c, total_sem, per_model[c.model], c.key in resume,
                                                        c.key in finish) for c in work))
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, an error): the parent says so instead of RUNNING forever.
            self.writer.finish_parent({"wall_time_s": time.monotonic() - t0}, "KILLED")
            raise
        finally:
            self.progress.close()
        outcomes += results
        wall = time.monotonic() - t0
        counts = Counter(o.state for o in outcomes)
        totals = {"cells": len(outcomes), "cells_done": counts["done"], "cells_failed": counts["failed"],
                  "cells_unknown": counts["unknown"], "credits": sum(o.credits for o in outcomes), "wall_time_s": wall}
        await asyncio.to_thread(self.writer.finish_parent, totals, "FINISHED")
        return SweepResult(self.plan, self._in_plan_order(outcomes), self.writer.parent_run_id, wall, self.writer.uri,
                           already_done=len(groups["done"]))

    def _in_plan_order(self, outcomes: list[CellOutcome]) -> list[CellOutcome]:
        order = {c.key: i for i, c in enumerate(self.plan.cells)}
        return sorted(outcomes, key=lambda o: order.get(o.cell.key, 0))

    def _event(self, kind: str, cell: Cell, **data: Any) -> None:
        if self.opts.on_event:
            self.opts.on_event(kind, cell, data)

    # -- one cell ---------------------------------------------------------------------------------
    async def _cell(self, cell: Cell, total_sem, model_sem, resume: bool, finish: bool) -> CellOutcome:
        exp = self.spec.experiment
        journal = self.journal
        out_path = _experiment_dir(exp) / cell.key / "output.mp4"
        task: Task | None = None
        timing: dict[str, float] = {}
        progress = self.progress
        progress.state(None, "queued")
        self._event("queued", cell)
        self._started[cell.key] = time.time()
        state = "queued"
        if not finish:
            async with total_sem, model_sem:
                try:
                    task, timing = await self._generate(cell, resume, out_path)
                except CreateOutcomeUnknownError as exc:
                    journal.set(exp, cell.key, "unknown", detail={"error": str(exc)})
                    progress.state(state, "unknown")
                    rid = await self._log_failed(cell, None, "unknown", "CREATE_OUTCOME_UNKNOWN", str(exc), {})
                    self._event("unknown", cell, error=str(exc))
                    return CellOutcome(cell, "unknown", failure_code="CREATE_OUTCOME_UNKNOWN", run_id=rid, note=str(exc))
                except (V2VError, OSError) as exc:
                    code, retryable = _error_code(exc)
                    row = journal.get(exp, cell.key)
                    journal.set(exp, cell.key, "failed", failure_code=code, retryable=retryable,
                                detail={"error": str(exc)})
                    progress.state(state, "failed")
                    rid = await self._log_failed(cell, row.task_id if row else None, "failed", code, str(exc), {})
                    self._event("failed", cell, failure_code=code)
                    return CellOutcome(cell, "failed", task_id=row.task_id if row else None, failure_code=code,
                                       run_id=rid, note=str(exc))
            if task.status is not TaskStatus.SUCCEEDED:
                retryable, why = classify_failure(task.failure_code)
                code = task.failure_code or task.status.value
                journal.set(exp, cell.key, "failed", task_id=task.id, failure_code=code, retryable=retryable,
                            detail={"failure": task.failure, "why": why})
                progress.state(state, "failed")
                rid = await self._log_failed(cell, task.id, "failed", code, task.failure or why, timing, task)
                self._event("failed", cell, failure_code=code, task_id=task.id)
                return CellOutcome(cell, "failed", task_id=task.id, failure_code=code, run_id=rid, note=why)
        row = journal.get(exp, cell.key)
        if finish and row is not None and row.output_path:
            out_path = Path(row.output_path)  # the output as it was kept, wherever the state folder was
        task_id = task.id if task else (row.task_id if row else None)
        timing = timing or dict(row.detail.get("timing", {})) if row else timing
        if finish and timing.get("latency_s"):
            self._started[cell.key] = time.time() - float(timing["latency_s"])
        progress.state(state, "scoring")
        state = "scoring"
        report, score_error = await self._score(cell, str(out_path))
        # The emulator charges its own (fictional) balance at catalog prices, so rehearsals show real figures.
        credits = _actual_credits(self.client, cell, report) or cell.credits
        progress.credits += credits
        rid = await self._log_done(cell, task_id, out_path, report, score_error, timing, task, credits)
        failpoint("logged")  # crash tests: the MLflow run is complete, the journal not yet told
        journal.set(exp, cell.key, "done", run_id=rid)
        progress.state(state, "done")
        self._event("done", cell, run_id=rid, output=str(out_path),
                    values=report.values if report else {})
        return CellOutcome(cell, "done", task_id=task_id, run_id=rid, values=report.values if report else {},
                           credits=credits, note=score_error or "")

    async def _generate(self, cell: Cell, resume: bool, out_path: Path) -> tuple[Task, dict[str, float]]:
        """Create (or take up) the task, wait, download. Retries INTERNAL failures within the limit."""
        exp, journal, client = self.spec.experiment, self.journal, self.client
        request = GenerationRequest(cell.video, cell.prompt, cell.model, cell.seed, cell.ratio,
                                    (cell.reference,) if cell.reference else (), cell.content_moderation)
        attempts = 0
        task_id: str | None = None
        if resume:
            row = journal.get(exp, cell.key)
            task_id = row.task_id if row else None
            attempts = row.attempts if row else 0
        while True:
            started = time.monotonic()
            if task_id is None:
                attempts += 1

                def mark_sending(a: int = attempts) -> None:
                    journal.set(exp, cell.key, "sending", attempts=a)
                    failpoint("create_sending")  # crash tests: killed with the create on the wire

                task_id = await client.create(request, on_sending=mark_sending)
                failpoint("create_answered")  # crash tests: answered, the task id not yet recorded
                journal.set(exp, cell.key, "created", task_id=task_id)  # durable before anything else
                failpoint("task_recorded")
                self._event("created", cell, task_id=task_id)
            seen: dict[str, float] = {}

            def on_progress(t: Task, seen: dict[str, float] = seen, cell: Cell = cell) -> None:
                if t.status is TaskStatus.RUNNING and "running" not in seen:
                    seen["running"] = time.monotonic()
                    self.progress.state("queued", "running")
                    self._event("running", cell, task_id=t.id)

            try:
                task = await client.wait(task_id, on_progress=on_progress, timeout=None)
            except NotFoundError:
                if client.provider.paid:
                    raise
                # The emulator that held this task is gone (a restart forgets tasks); it costs nothing.
                task_id = None
                continue
            finally:
                if "running" in seen:
                    self.progress.state("running", "queued")
            end = time.monotonic()
            timing = {"latency_s": end - started, "queue_s": seen.get("running", end) - started}
            if task.status is TaskStatus.SUCCEEDED:
                await client.download(task, out_path)
                failpoint("downloaded")
                journal.set(exp, cell.key, "succeeded", task_id=task.id, output_path=str(out_path),
                            detail={"timing": timing, "task": task.to_dict()})
                return task, timing
            retryable, _ = classify_failure(task.failure_code)
            internal = (task.failure_code or "").startswith("INTERNAL")
            if task.status is TaskStatus.FAILED and retryable and internal and attempts <= self.spec.max_task_retries:
                # It definitely failed: a new task for the same cell is not a double charge.
                journal.set(exp, cell.key, "failed", task_id=task.id, failure_code=task.failure_code,
                            retryable=True, attempts=attempts)
                task_id = None
                continue
            return task, timing

    async def _score(self, cell: Cell, output: str) -> tuple[ScoreReport | None, str | None]:
        sc = self.spec.scoring
        if not sc.enabled:
            return None, None
        if uri_kind(cell.video) != "path":
            return None, "scoring skipped: the source is not a local file"
        try:
            async with self._score_lock:
                report = await asyncio.to_thread(score, cell.video, output, sc.metrics or DEFAULT_METRICS,
                                                 sc.frames, sc.size, crop=sc.crop)
            return report, None
        except (V2VError, OSError, ValueError) as exc:  # a scoring failure is recorded, never fatal
            return None, f"scoring failed: {exc}"

    # -- MLflow ---------------------------------------------------------------------------------
    def _params(self, cell: Cell) -> dict[str, Any]:
        prompt = cell.prompt if len(cell.prompt) <= PROMPT_PARAM_CHARS else cell.prompt[: PROMPT_PARAM_CHARS - 3] + "..."
        video = os.path.basename(cell.video) if uri_kind(cell.video) == "path" else _source_ref(cell.video)[:500]
        return {"model": cell.model, "prompt": prompt, "prompt_sha": cell.prompt_sha, "seed": cell.seed,
                "ratio": cell.ratio or "none", "video": video, "video_sha": cell.video_sha[:16],
                "provider": self.client.provider.name, "api_version": RUNWAY_API_VERSION,
                "reference": os.path.basename(cell.reference) if cell.reference else "none", "repeat": cell.repeat}

    def _tags(self, cell: Cell, task_id: str | None, status: str, failure_code: str | None) -> dict[str, str]:
        tags = {"v2v.cell_key": cell.key, "v2v.task_id": task_id or "", "v2v.status": status,
                "v2v.failure_code": failure_code or "", "v2v.experiment": self.spec.experiment,
                # Where the source is, so dashboards can play it beside the output.
                "v2v.source": _source_ref(cell.video)}
        return tags | {f"v2v.tag.{k}": v for k, v in self.spec.tags.items()}

    async def _log_failed(self, cell, task_id, status, code, message, timing, task: Task | None = None) -> str:
        tags = self._tags(cell, task_id, status, code) | {"v2v.failure": message[:4000]}
        metrics = {k: v for k, v in timing.items()} | {"credits": 0.0}
        return await asyncio.to_thread(
            self.writer.log_cell, name=_run_name(cell), params=self._params(cell), tags=tags, metrics=metrics,
            series={}, artifacts={}, task=task.to_dict() if task else None, prompt=cell.prompt, frames_csv=None,
            secrets=(self.client._key,), started=self._started.get(cell.key))

    async def _log_done(self, cell, task_id, out_path: Path, report, score_error, timing, task, credits) -> str:
        folder = out_path.parent
        poster, sheet = folder / "poster.png", folder / "contact_sheet.png"
        try:
            await asyncio.to_thread(_posters, str(out_path), poster, sheet, report)
        except (V2VError, OSError, ValueError) as exc:  # an output that is not a video is recorded, never fatal
            score_error = "; ".join(x for x in (score_error, f"poster failed: {exc}") if x)
        params = self._params(cell)
        metrics: dict[str, float] = {**timing, "credits": credits}
        series: dict[str, list[float]] = {}
        frames_csv = None
        tags = self._tags(cell, task_id, "succeeded", None)
        if report is not None:
            metrics.update(report.values)
            series = report.series
            params.update({f"score.{k}": v for k, v in report.params.items()})
            frames_csv = [{"step": i, "time_s": round(t, 4), **{m: s[i] for m, s in report.series.items()}}
                          for i, t in enumerate(report.times_s)]
        if score_error:
            tags["v2v.scoring_error"] = score_error[:4000]
        task_dict = task.to_dict() if task else (self.journal.get(self.spec.experiment, cell.key).detail.get("task"))
        return await asyncio.to_thread(
            self.writer.log_cell, name=_run_name(cell), params=params, tags=tags, metrics=metrics, series=series,
            artifacts={"output.mp4": str(out_path), "poster.png": str(poster),
                       "contact_sheet.png": str(sheet) if sheet.exists() else ""},
            task=task_dict, prompt=cell.prompt, frames_csv=frames_csv, secrets=(self.client._key,),
            started=self._started.get(cell.key))


def _posters(video: str, poster: Path, sheet: Path, report: ScoreReport | None) -> None:
    write_poster(video, poster)
    if report is not None and report.frames is not None:
        f = report.frames
        write_contact_sheet(sheet, f.src_a, f.out_a, report.times_s)


def _actual_credits(client: AsyncRunwayClient, cell: Cell, report: ScoreReport | None) -> float | None:
    """Credits for what was rendered: the catalog price times the output's real length."""
    if report is None or report.frames is None:
        return None
    spec = client.catalog[cell.model]
    return spec.credits_per_second * report.frames.output.duration_s


def _source_ref(video: str) -> str:
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
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"[:4000]


def _run_name(cell: Cell) -> str:
    return f"{cell.model} s{cell.seed} {cell.ratio or ''} {cell.prompt[:40]}".strip()


def _error_code(exc: BaseException) -> tuple[str, bool]:
    if isinstance(exc, RateLimitError):
        return "RATE_LIMITED", True
    if isinstance(exc, ConnectionFailedError):
        return "CONNECTION_FAILED", True
    if isinstance(exc, DownloadError):
        return "DOWNLOAD_FAILED", True
    if isinstance(exc, WaitTimeoutError):
        return "WAIT_TIMEOUT", True
    if isinstance(exc, InputError):
        return "INVALID_INPUT", False
    if isinstance(exc, APIError):
        return f"HTTP_{exc.status_code}", bool(exc.retryable)
    return type(exc).__name__.upper(), False


def _yaml_of(spec_json: str) -> str:
    import json

    import yaml

    return yaml.safe_dump(json.loads(spec_json), sort_keys=False, allow_unicode=True)


def _check_spec_base_url(spec: SweepSpec, options: SweepOptions) -> None:
    """A spec file is shared between people: its base_url must not send a paid key elsewhere. Only
    the user redirects their key (--base-url, or V2V_LAB_BASE_URL in their environment)."""
    if not spec.base_url or options.base_url or not spec.came_from_file("base_url"):
        return
    provider = get_provider(spec.provider)
    if provider.paid:
        raise InputError("base_url", spec.base_url, f"no base_url in a spec file for provider {provider.name} "
                         f"(a shared spec must not redirect your key): pass --base-url, or remove it "
                         f"from the spec and set V2V_LAB_BASE_URL yourself", line=spec.line_of("base_url"))


def run_sweep(spec: SweepSpec | str | os.PathLike[str], **options: Any) -> SweepResult:
    """Run a sweep to the end (sync). Works inside Jupyter: the loop runs on a private thread there."""
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    runner = SweepRunner(spec, SweepOptions(**options))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner.run())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(runner.run())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="v2v-sweep")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def plan_sweep(spec: SweepSpec | str | os.PathLike[str]) -> Plan:
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    return build_plan(spec, state_dir=state_dir())
