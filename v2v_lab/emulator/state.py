"""The emulator's in-memory world: tasks and their life, uploads, the organization, counters."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.catalog import Catalog, ModelSpec
from .engine import Keyframe, RenderJob, render
from .faults import FaultDice

__all__ = [
    "ACTIVE", "EmulatorState", "OrgLimits", "TaskRecord", "Timing", "UploadRecord", "charged_credits",
    "estimated_credits", "iso", "options_of", "render_job", "task_json", "utc_now",
]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


ACTIVE = ("PENDING", "THROTTLED", "RUNNING")  # a task not yet ended


@dataclass
class TaskRecord:
    id: str
    model: str
    ordinal: int
    created_at: dt.datetime
    created_mono: float
    request: dict[str, Any]
    input_path: str
    reference_path: str | None
    seconds_estimate: float
    fail_plan: tuple[str, str] | None = None  # (failureCode, failure) decided at create
    status: str = "PENDING"
    progress: float = 0.0
    output_path: str | None = None
    output_seconds: float = 0.0
    failure: str | None = None
    failure_code: str | None = None
    cancelled: bool = False
    estimated_credits: float = 0.0  # the catalog price of the expected output, shown while queued/running
    charged_credits: int = 0        # what the finished task cost (failed and cancelled ones: refunded, 0)
    keyframe_paths: tuple[str, ...] = ()  # the body's keyframes' images, fetched, in the body's order
    input_size: tuple[int, int] | None = None  # the source's size: some prices depend on it (above 4 MP)
    # When the task next changes status on its own (monotonic): its start while pending, its end
    # while running; None while throttled (that waits on other tasks). Told to clients on loopback.
    due_mono: float | None = None


@dataclass
class UploadRecord:
    id: str
    filename: str
    created_mono: float
    path: str | None = None
    signature: str = ""


@dataclass
class OrgLimits:
    max_concurrent: dict[str, int]
    max_daily: dict[str, int]
    credit_balance: float
    max_monthly_spend: int = 100_000


@dataclass
class Timing:
    queue_s: float = 0.05       # time a task stays PENDING before it may start
    run_s: float = 0.0          # minimum time RUNNING (the emulated generation time)
    output_ttl_s: float = 3600  # how long an output URL works
    upload_ttl_s: float = 86400  # runway:// URIs live 24 h
    render_scale: float = 1.0


class EmulatorState:
    def __init__(self, catalog: Catalog, models: list[str], limits: OrgLimits, timing: Timing,
                 dice: FaultDice, workdir: Path, render_workers: int = 2):
        self.catalog = catalog
        self.models = models
        self.limits = limits
        self.timing = timing
        self.dice = dice
        self.workdir = workdir
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.tasks: dict[str, TaskRecord] = {}
        self.ledger: list[TaskRecord] = []
        self.deleted: set[str] = set()
        self.uploads: dict[str, UploadRecord] = {}
        self.requests: Counter[str] = Counter()
        self.responses: Counter[int] = Counter()
        self.tasks_created: Counter[str] = Counter()
        self.daily: dict[tuple[str, str], int] = defaultdict(int)        # (date, model) -> creates
        self.credits_used: dict[tuple[str, str], float] = defaultdict(float)  # (date, model) -> credits
        self.running: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()
        self._ordinal = 0
        # One thread per RUNNING task (they mostly wait out run_s), but at most render_workers
        # renders at once: a task's emulated generation time must not queue behind other renders.
        running_cap = max(render_workers, sum(limits.max_concurrent.values()) or 1)
        self._pool = ThreadPoolExecutor(max_workers=running_cap, thread_name_prefix="emu-task")
        self._render_slots = threading.BoundedSemaphore(render_workers)
        self._stop = False
        self._scheduler = threading.Thread(target=self._schedule_loop, name="emu-scheduler", daemon=True)
        self._scheduler.start()

    # -- counters ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self.lock:
            statuses = Counter(t.status for t in self.tasks.values())
            return {
                "requests": dict(self.requests),
                "responses": dict(self.responses),
                "tasks_created": dict(self.tasks_created),
                "tasks_total": sum(self.tasks_created.values()),
                "task_statuses": dict(statuses),
                "faults": dict(self.dice.injected),
                "credit_balance": self.limits.credit_balance,
                "peak_in_flight": dict(self.peak_in_flight),
                "max_concurrent": dict(self.limits.max_concurrent),
            }

    def task_ledger(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"id": t.id, "model": t.model, "seed": t.request.get("seed"), "prompt": t.request.get("promptText"),
                     "ratio": t.request.get("ratio"), "status": t.status, "failure_code": t.failure_code,
                     "deleted": t.id in self.deleted} for t in self.ledger]

    def expire_uploads(self) -> int:
        """Every runway:// URI given so far expired now, as upload_ttl_s later (a test's clock
        instead of waiting the lifetime out): how many there were."""
        with self.lock:
            for up in self.uploads.values():
                up.created_mono = -math.inf
            return len(self.uploads)

    # -- tasks ----------------------------------------------------------------------------------
    def daily_used(self, model: str) -> int:
        return self.daily[(utc_now().date().isoformat(), model)]

    def add_task(self, model: str, request: dict[str, Any], input_path: str, reference_path: str | None,
                 seconds_estimate: float, fail_plan: tuple[str, str] | None, *, estimate: float,
                 keyframe_paths: tuple[str, ...] = (), input_size: tuple[int, int] | None = None) -> TaskRecord:
        """estimate: the credits the create answered (estimatedCost), shown until the task ends."""
        with self.lock:
            self._ordinal += 1
            now = utc_now()
            task = TaskRecord(str(uuid.uuid4()), model, self._ordinal, now, time.monotonic(), request,
                              input_path, reference_path, seconds_estimate, fail_plan,
                              estimated_credits=estimate, keyframe_paths=keyframe_paths, input_size=input_size)
            task.due_mono = task.created_mono + self.timing.queue_s
            self.tasks[task.id] = task
            self.ledger.append(task)  # every task ever created, deleted ones included
            self.tasks_created[model] += 1
            self.daily[(now.date().isoformat(), model)] += 1
            # Tasks of the model not yet ended, this one included: the most ever is what a client kept
            # in flight against the account's limit (only a create adds one, so checking here is enough).
            active = sum(1 for t in self.tasks.values() if t.model == model and t.status in ACTIVE)
            self.peak_in_flight[model] = max(self.peak_in_flight[model], active)
            self.wake.notify_all()
            return task

    def cancel_or_delete(self, task_id: str) -> bool:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return False
            if task.status in ACTIVE:
                # Runway: a task the server sees RUNNING when the cancel arrives is not refunded
                # (its full price); one still PENDING or THROTTLED costs nothing.
                if task.status == "RUNNING":
                    self._charge(task, math.ceil(round(task.estimated_credits, 6)))
                task.cancelled = True
                task.status = "CANCELLED"
                if self.dice.config.cancelled_readable:
                    self.wake.notify_all()
                    return True
            # Cancelled and deleted tasks can't be fetched again (Runway's retention rule).
            del self.tasks[task_id]
            self.deleted.add(task_id)
            self.wake.notify_all()
            return True

    def _schedule_loop(self) -> None:
        while True:
            with self.lock:
                if self._stop:
                    return
                now = time.monotonic()
                for task in sorted(self.tasks.values(), key=lambda t: t.ordinal):
                    if task.status not in ("PENDING", "THROTTLED"):
                        continue
                    if now - task.created_mono < self.timing.queue_s:
                        continue
                    limit = self.limits.max_concurrent.get(task.model, 1)
                    if self.running[task.model] < limit:
                        task.status = "RUNNING"
                        task.progress = 0.0
                        task.due_mono = now + self.timing.run_s  # set exactly once its thread starts
                        self.running[task.model] += 1
                        self._pool.submit(self._run, task)
                    else:
                        task.status = "THROTTLED"
                        task.due_mono = None
                self.wake.wait(timeout=0.02)

    def _run(self, task: TaskRecord) -> None:
        started = time.monotonic()
        try:
            self._generate(task, started)
        except Exception as exc:  # a render bug must end the task, never hang it
            with self.lock:
                task.status, task.failure_code = "FAILED", "INTERNAL.RENDER"
                task.failure = f"The emulator's engine failed: {type(exc).__name__}"
        finally:
            with self.lock:
                self.running[task.model] -= 1
                self.wake.notify_all()

    def _generate(self, task: TaskRecord, started: float) -> None:
        spec = self.catalog[task.model]
        if task.fail_plan and task.fail_plan[0].startswith("SAFETY.INPUT"):
            self._finish_failed(task)
            return
        internal = bool(task.fail_plan and task.fail_plan[0].startswith("INTERNAL"))
        with self.lock:
            task.due_mono = started + self.timing.run_s * (0.5 if internal else 1.0)
        out_path = self.workdir / "outputs" / task.id / ("output" + spec.output_suffix(options_of(task.request, spec)))

        def on_progress(p: float) -> None:
            with self.lock:
                task.progress = round(0.9 * p, 3)

        if internal:
            self._sleep_progress(task, started, 0.5)
            self._finish_failed(task)
            return
        with self._render_slots:
            result = self._render(task, spec, out_path, on_progress)
        self._sleep_progress(task, started, 1.0)
        with self.lock:
            if task.cancelled:
                return
            if task.fail_plan:
                self._finish_failed(task)
                return
            task.output_path = result.path
            task.output_seconds = result.duration_s
            self._charge(task, charged_credits(spec, result.duration_s, options_of(task.request, spec),
                                               task.input_size))
            task.progress = 1.0
            task.status = "SUCCEEDED"

    def _charge(self, task: TaskRecord, credits: int) -> None:
        """What a task cost: on the task, the balance and the day's usage (under the lock)."""
        task.charged_credits = credits
        self.limits.credit_balance -= credits
        self.credits_used[(utc_now().date().isoformat(), task.model)] += credits

    def _render(self, task: TaskRecord, spec: ModelSpec, out_path: Path, on_progress: Any) -> Any:
        return render(render_job(task, spec, str(out_path), self.timing.render_scale), on_progress)

    def _sleep_progress(self, task: TaskRecord, started: float, share: float) -> None:
        """Hold the task RUNNING until `share` of run_s has passed, moving progress with time."""
        end = started + self.timing.run_s * share
        while not task.cancelled:
            now = time.monotonic()
            if now >= end:
                return
            with self.lock:
                task.progress = max(task.progress, round(min(0.99, (now - started) / max(self.timing.run_s, 1e-9)), 3))
            time.sleep(min(0.05, end - now))

    def _finish_failed(self, task: TaskRecord) -> None:
        with self.lock:
            if task.cancelled:
                return
            assert task.fail_plan is not None
            task.failure_code, task.failure = task.fail_plan
            task.status = "FAILED"

    def close(self) -> None:
        with self.lock:
            self._stop = True
            for task in self.tasks.values():
                task.cancelled = True
            self.wake.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._scheduler.join(timeout=2)


def task_json(task: TaskRecord, output_urls: list[str]) -> dict[str, Any]:
    """A task as Runway's current API sends it (the runwayml SDK 5.x union: estimatedCost while
    queued or running, cost once finished, in whole credits)."""
    body: dict[str, Any] = {"id": task.id, "createdAt": iso(task.created_at), "status": task.status}
    if task.status in ("PENDING", "THROTTLED", "RUNNING"):
        body["estimatedCost"] = {"credits": round(task.estimated_credits, 2)}
    else:
        body["cost"] = {"credits": int(task.charged_credits)}
    if task.status == "RUNNING":
        body["progress"] = task.progress
    elif task.status == "SUCCEEDED":
        body["output"] = output_urls
    elif task.status == "FAILED":
        body["failure"] = task.failure
        if task.failure_code:
            body["failureCode"] = task.failure_code
    return body


# -- what a body asks for, and what it costs ------------------------------------------------------
def options_of(body: dict[str, Any], spec: ModelSpec, *, defaults: bool = False) -> dict[str, Any]:
    """The body's model fields by their snake_case names (the catalog's), with the server's
    defaults for absent ones when asked."""
    given = {name: body[wire] for wire, name in spec.wire_fields.items() if wire in body and name in spec.fields}
    if not defaults:
        return given
    return {**{n: f.default for n, f in spec.fields.items() if f.default is not None}, **given}


def estimated_credits(spec: ModelSpec, input_seconds: float, options: dict[str, Any],
                      size: tuple[int, int] | None = None) -> float:
    """The most a task may charge (the create's estimatedCost): the catalog's one price function;
    duration "auto" is billed at the model's maximum up front, as Runway does."""
    return spec.estimate_credits(input_seconds, options, input_size=size)


def charged_credits(spec: ModelSpec, output_seconds: float, options: dict[str, Any],
                    size: tuple[int, int] | None = None) -> int:
    """What a finished task cost, in whole credits rounded up: the same price function, billed for
    the output's real length (the unused part of "auto" refunded)."""
    price = spec.estimate_credits(None, options, input_size=size, seconds=output_seconds)
    return math.ceil(round(price, 6))  # 56.0000001 of float noise is 56, not 57


def _keyframes(task: TaskRecord, seconds: float) -> tuple[Keyframe, ...]:
    """Each keyframe's span in output seconds: `at` is a fraction of the output's length; a
    `range` sets the span (its keyframe holds across it)."""
    out = []
    for kf, path in zip(task.request.get("keyframes") or (), task.keyframe_paths, strict=False):
        anchor = float(kf["seconds"]) if "seconds" in kf else float(kf.get("at", 0.0)) * seconds
        span = kf.get("range") if isinstance(kf.get("range"), dict) else {}
        start = float(span.get("startSeconds", anchor))
        out.append(Keyframe(path, start, max(start, float(span.get("endSeconds", anchor)))))
    return tuple(out)


def render_job(task: TaskRecord, spec: ModelSpec, out_path: str, render_scale: float) -> RenderJob:
    """What the engine renders for a task: each field the body set (or its server default)."""
    opts = options_of(task.request, spec, defaults=True)
    seconds = spec.expected_output_seconds(task.seconds_estimate, opts)
    return RenderJob(
        task.input_path, task.model, task.request.get("promptText") or "", int(task.request["seed"]),
        # An untyped ratio (aleph2's) is ignored, as Runway does: the input decides the size.
        opts.get("ratio") if spec.ratios else None, spec.output_fps, spec.max_output_seconds, out_path,
        task.reference_path, render_scale, output_seconds=seconds, resolution=opts.get("resolution"),
        target_aspect=opts.get("target_aspect_ratio"), draft=bool(opts.get("draft")),
        keyframes=_keyframes(task, seconds), audio=bool(opts.get("audio")),
        output_format=str(opts.get("output_format", "mp4")), prores_profile=str(opts.get("prores_profile", "4444")))
