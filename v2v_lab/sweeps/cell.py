"""One cell's life: take a slot, create (or take up) its task, wait, download, score, and end it,
whatever its fate, in one place (`end_cell`): the journal, the progress, the MLflow run, the event.

The journal rule: a task id is committed the moment it is known, before anything else happens;
a create is never resent unless it definitely failed (INTERNAL, within max_task_retries)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._failpoints import failpoint
from ..api.catalog import RUNWAY_API_VERSION, ModelSpec
from ..api.client import AsyncRunwayClient
from ..api.retry_policy import Action
from ..api.task import Task, TaskStatus, classify_failure
from ..api.validation import GenerationRequest, uri_kind
from ..errors import CreateOutcomeUnknownError, NotFoundError, V2VError
from ..tracking.records import cell_record
from ..tracking.schema import ARTIFACT_CONTACT_SHEET, ARTIFACT_OUTPUT, ARTIFACT_POSTER, STATUS_SUCCEEDED
from .journal import OUTPUT_GONE, ClaimLostError, JournalRow, JournalStore, experiment_digest, state_dir
from .outcome import CellOutcome, SweepOptions
from .plan import Cell, Plan
from .progress import Progress
from .spec import SweepSpec
from .spend import NotStartedError, Reservation, SpendGuard
from .states import CellState, JournalState

if TYPE_CHECKING:  # MLflow and the metrics load beside a sweep's first tasks, not before them
    from ..metrics import ScoreReport
    from ..tracking.writer import SweepWriter

__all__ = ["Ending", "SweepSession", "cell_request", "output_path", "run_cell"]


@dataclass
class SweepSession:
    """The parts of a running sweep. Built once they all exist, so none of them is ever None."""

    spec: SweepSpec
    plan: Plan
    options: SweepOptions
    journal: JournalStore
    # The store's writer, once the store is open and the sweep's parent run begun: a sweep's first
    # tasks go out while it opens, and a cell awaits it only to log.
    store: asyncio.Future[SweepWriter]
    client: AsyncRunwayClient
    progress: Progress
    spend: SpendGuard
    score_lock: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    started: dict[str, float] = field(default_factory=dict)  # cell key -> wall time its work began

    @property
    def experiment(self) -> str:
        return self.spec.experiment

    @property
    def writer(self) -> SweepWriter:
        """The store's writer, where it is known to be ready (else InvalidStateError: await store)."""
        return self.store.result()

    def event(self, kind: str, cell: Cell, **data: Any) -> None:
        on_event: Callable[[str, Cell, dict[str, Any]], None] | None = self.options.on_event
        if on_event:
            on_event(kind, cell, data)


@dataclass
class Ending:
    """How a cell ended: what the journal, the run and the caller are told."""

    state: CellState
    task_id: str | None = None
    failure_code: str | None = None
    retryable: bool = False
    note: str = ""  # a sentence for the result table (for failures: the error or the reason)
    failure: str = ""  # the failure as the run's tag keeps it (the service's text where it gave one)
    task: Task | None = None
    timing: dict[str, float] = field(default_factory=dict)
    journal_detail: dict[str, Any] = field(default_factory=dict)
    # Failed after its task succeeded (the download, or writing the output): paid, its output still
    # to fetch by id; the journal keeps saying 'paid' so that no rerun pays for it again.
    paid: bool = False
    # Only for a done cell:
    output: Path | None = None
    report: ScoreReport | None = None
    scoring_error: str | None = None
    credits: float = 0.0  # what the task cost: the server's figure, else the estimate standing in
    credits_estimated: float | None = None  # the estimate made before its create
    credits_source: str | None = None  # "server" or "estimate"


def output_path(experiment: str, cell: Cell, mspec: ModelSpec | None = None) -> Path:
    """Where a cell's output is kept: output.mp4, or the suffix its output_format returns (.mov, .zip)."""
    name = Path(ARTIFACT_OUTPUT)
    if mspec is not None:
        name = name.with_suffix(mspec.output_suffix(cell.options))
    return state_dir() / "outputs" / experiment_digest(experiment) / cell.key / name


def cell_request(cell: Cell, mspec: ModelSpec) -> GenerationRequest:
    """The request a cell sends: its own fields where GenerationRequest has a place for them, the
    rest of its options as they are."""
    options = dict(cell.options)
    refs = tuple(options.pop("references", ())) or ((cell.reference,) if cell.reference else ())
    keyframes = tuple(options.pop("keyframes", ()))
    target = options.pop("target_aspect_ratio", None)
    # A model that takes no seed gets none: the seed then names one unseeded repeat of the cell.
    seed = cell.seed if mspec.takes_seed else None
    return GenerationRequest(cell.video, cell.prompt, cell.model, seed, cell.ratio, refs, cell.content_moderation,
                             keyframes, target, options)


async def run_cell(s: SweepSession, cell: Cell, slots: Sequence[AbstractAsyncContextManager[Any]], *,
                   resume: bool, finish: bool) -> CellOutcome:
    """resume: its task was created by an earlier run (take it up by id); finish: its output is
    downloaded and kept (score and log it). slots: held while its task is made and waited for (the
    model's, the sweep's concurrency, and in a shared sweep the account's across processes), taken
    in that order: a cell waiting for its model's slot holds none of the sweep's meanwhile."""
    if s.store.done() and not s.store.cancelled() and s.store.exception() is not None:
        await s.store  # the store could not be opened: no more tasks go out (the sweep ends with why)
    s.progress.state(None, "queued")
    s.event("queued", cell)
    s.started[cell.key] = time.time()
    out_path = output_path(s.experiment, cell, s.client.catalog.get(cell.model))
    task: Task | None = None
    timing: dict[str, float] = {}
    if not finish:
        made = await _task_of(s, cell, slots, resume, out_path)
        if isinstance(made, CellOutcome):
            return made  # it ended without a succeeded task
        task, timing = made
    row = s.journal.get(s.experiment, cell.key)
    if finish and row is not None and row.output_path:
        out_path = Path(row.output_path)  # the output as it was kept, wherever the state folder was
    if row is not None and not timing:
        timing = dict(row.detail.get("timing", {}))
    if finish and timing.get("latency_s"):
        s.started[cell.key] = time.time() - float(timing["latency_s"])
    s.progress.state("queued", "scoring")
    report, score_error = await _score(s, cell, out_path)
    task_id = task.id if task else (row.task_id if row else None)
    money = _money(s, cell, task_id) if task_id else {}
    if "credits" not in money:  # an output kept by a version of v2v-lab that recorded no charges
        money = {"credits": _rendered_price(s.client, cell, report), "credits_source": "estimate"}
    s.progress.credits += money["credits"]
    outcome = await end_cell(s, cell, Ending(
        CellState.DONE, task_id=task_id, task=task, timing=timing,
        output=out_path, report=report, scoring_error=score_error, note=score_error or "", **money),
        was="scoring")
    outcome.from_kept = finish  # its output was paid for and kept by an earlier run: logged now
    return outcome


async def _task_of(s: SweepSession, cell: Cell, slots: Sequence[AbstractAsyncContextManager[Any]], resume: bool,
                   out_path: Path) -> tuple[Task, dict[str, float]] | CellOutcome:
    """The cell's succeeded task (its output kept) and its timing, made within its slots; or the
    outcome of a cell that ended without one (failed, unknown, not started for the budget)."""
    async with contextlib.AsyncExitStack() as held:
        for slot in slots:
            await held.enter_async_context(slot)
        try:
            task, timing = await _generate(s, cell, resume, out_path)
        except ClaimLostError:
            raise  # another process holds the cell now: it ends it, nothing is recorded here
        except NotStartedError as exc:
            return _not_started(s, cell, exc)
        except CreateOutcomeUnknownError as exc:
            return await end_cell(s, cell, Ending(CellState.UNKNOWN, failure_code=exc.failure_code, note=str(exc),
                                                  failure=str(exc), journal_detail={"error": str(exc)}))
        except (V2VError, OSError) as exc:
            return await _end_raised(s, cell, exc)
    if task.status is not TaskStatus.SUCCEEDED:
        retryable, why = classify_failure(task.failure_code)
        return await end_cell(s, cell, Ending(
            CellState.FAILED, task_id=task.id, failure_code=task.failure_code or task.status.value, retryable=retryable,
            note=why, failure=task.failure or why, task=task, timing=timing,
            journal_detail={"failure": task.failure, "why": why}, **_money(s, cell, task.id)))
    return task, timing


async def end_cell(s: SweepSession, cell: Cell, end: Ending, was: str = "queued") -> CellOutcome:
    """The one way a cell ends. A failed or unknown cell is journaled first, then logged; a done
    cell is logged first, and the journal says done only once its run is complete."""
    done = end.state is CellState.DONE
    if end.paid:  # its task succeeded: the journal keeps 'paid' and its id, and adds what went wrong
        row = s.journal.get(s.experiment, cell.key)
        s.journal.set(s.experiment, cell.key, JournalState.PAID,
                      detail={**(row.detail if row else {}), **end.journal_detail})
    elif not done:  # failed or unknown: the journal keeps the same word
        fields: dict[str, Any] = {"task_id": end.task_id} if end.task is not None else {}
        if end.state is CellState.FAILED:
            fields |= {"failure_code": end.failure_code, "retryable": end.retryable}
        s.journal.set(s.experiment, cell.key, JournalState(end.state.value), detail=end.journal_detail, **fields)
    s.progress.state(was, end.state)
    poster = sheet = None
    scoring_error = end.scoring_error
    if end.output is not None:
        poster, sheet = end.output.parent / ARTIFACT_POSTER, end.output.parent / ARTIFACT_CONTACT_SHEET
        try:
            await asyncio.to_thread(_posters, end.output, poster, sheet, end.report)
        except (V2VError, OSError, ValueError) as exc:  # an output that is not a video is recorded, never fatal
            scoring_error = "; ".join(x for x in (scoring_error, f"poster failed: {exc}") if x)
    task_dict = end.task.to_dict() if end.task else None
    if task_dict is None and done:
        row = s.journal.get(s.experiment, cell.key)
        task_dict = row.detail.get("task") if row else None
    record = cell_record(
        cell, experiment=s.experiment, provider=s.client.provider.name, api_version=RUNWAY_API_VERSION,
        user_tags=s.spec.tags, status=STATUS_SUCCEEDED if done else end.state.value, task_id=end.task_id,
        failure_code=end.failure_code, failure=end.failure or None, timing=end.timing,
        credits=end.credits, credits_estimated=end.credits_estimated, credits_source=end.credits_source,
        report=end.report, scoring_error=scoring_error, output=end.output, poster=poster, contact_sheet=sheet)
    # Fencing, as for a create: a process that no longer holds the cell (stalled past its lease
    # while another took it over and ended it) stands down here instead of logging it twice.
    writer = await asyncio.shield(s.store)
    await asyncio.to_thread(s.journal.hold, s.experiment, cell.key)
    run_id = await asyncio.to_thread(
        writer.log_cell, name=record.name, params=record.params, tags=record.tags, metrics=record.metrics,
        series=record.series, artifacts=record.artifacts, task=task_dict, prompt=cell.prompt,
        frames_csv=record.frames_csv, secrets=s.client.secrets, started=s.started.get(cell.key))
    values = end.report.values if end.report else {}
    if done:
        failpoint("logged")  # crash tests: the MLflow run is complete, the journal not yet told
        s.journal.set(s.experiment, cell.key, JournalState.DONE, run_id=run_id)
        s.event("done", cell, run_id=run_id, output=str(end.output), values=values, credits=end.credits)
    elif end.state is CellState.UNKNOWN:
        s.event("unknown", cell, error=end.note)
    else:
        s.event("failed", cell, failure_code=end.failure_code, **({"task_id": end.task_id} if end.task else {}))
    return CellOutcome(cell, end.state, task_id=end.task_id, failure_code=end.failure_code, run_id=run_id,
                       values=values, credits=end.credits, credits_estimated=end.credits_estimated,
                       note=(scoring_error or "") if done else end.note, paid_output_pending=end.paid)


async def _generate(s: SweepSession, cell: Cell, resume: bool, out_path: Path) -> tuple[Task, dict[str, float]]:
    """Create (or take up) the task, wait, download. Retries INTERNAL failures within the limit."""
    exp, journal, client = s.experiment, s.journal, s.client
    request = cell_request(cell, client.catalog[cell.model])
    attempts = 0
    task_id: str | None = None
    if resume:
        row = journal.get(exp, cell.key)
        task_id = row.task_id if row else None
        attempts = row.attempts if row else 0
    else:
        task_id = await _paid_task_of(s, cell)
    while True:
        started = time.monotonic()
        if task_id is None:
            attempts += 1
            task_id = await _create(s, cell, request, attempts)
        try:
            task, running_at = await _wait(s, cell, task_id)
        except NotFoundError:
            if client.provider.paid:
                raise
            # The emulator that held this task is gone (a restart forgets tasks); it costs nothing.
            task_id = None
            continue
        end = time.monotonic()
        timing = {"latency_s": end - started, "queue_s": (running_at or end) - started}
        await s.spend.ended(cell, task)  # FAILED and CANCELLED too: what the server charged is kept
        if task.status is TaskStatus.SUCCEEDED:
            return task, await _keep_output(s, cell, task, timing, out_path)
        if _worth_a_new_task(task, attempts, s.spec.max_task_retries):
            # It definitely failed: a new task for the same cell is not a double charge.
            journal.set(exp, cell.key, JournalState.FAILED, task_id=task.id, failure_code=task.failure_code,
                        retryable=True, attempts=attempts)
            task_id = None
            continue
        return task, timing


async def _keep_output(s: SweepSession, cell: Cell, task: Task, timing: dict[str, float], out_path: Path
                       ) -> dict[str, float]:
    """A succeeded task is paid for: the journal says so (with its id) before the download, so a
    failed download or an unwritable folder leaves a task to take up by id, never one to pay for
    again. Returns the cell's timing (the first sweep's, when this one only fetches the output)."""
    exp, journal = s.experiment, s.journal
    row = journal.get(exp, cell.key)
    if row is not None and row.state is JournalState.PAID and row.detail.get("timing"):
        timing = dict(row.detail["timing"])  # the generation's own, not this re-read's
    journal.set(exp, cell.key, JournalState.PAID, task_id=task.id, output_path=None,
                detail={"timing": timing, "task": task.to_dict()})
    await s.client.download(task, out_path)
    failpoint("downloaded")
    journal.set(exp, cell.key, JournalState.PAID, output_path=str(out_path))
    return timing


async def _paid_task_of(s: SweepSession, cell: Cell) -> str | None:
    """The task of a cell journaled failed whose task in fact succeeded (a journal from before a
    failed download kept the task as paid): taken up by id instead of paid for again."""
    row = s.journal.get(s.experiment, cell.key)
    if row is None or row.state is not JournalState.FAILED or not row.task_id:
        return None
    try:
        task = await s.client.get_task(row.task_id)
    except V2VError:
        return None  # gone or unreadable: the retry the user asked for creates a new task
    return task.id if task.status is TaskStatus.SUCCEEDED else None


def _not_started(s: SweepSession, cell: Cell, exc: NotStartedError) -> CellOutcome:
    """A cell the cap has no room for: nothing was sent, nothing is journaled or logged, so a rerun
    with a higher cap takes it up as new."""
    s.progress.state("queued", CellState.NOT_STARTED)
    s.event("not_started", cell, credits=exc.estimate)
    return CellOutcome(cell, CellState.NOT_STARTED, failure_code=exc.reason, credits_needed=exc.estimate,
                       note=str(exc))


async def _end_raised(s: SweepSession, cell: Cell, exc: V2VError | OSError) -> CellOutcome:
    """The end of a cell whose work raised: failed; or, for a paid task that can no longer be read, missing."""
    row = s.journal.get(s.experiment, cell.key)
    if row is not None and row.state is JournalState.PAID and isinstance(exc, NotFoundError):
        return _output_gone(s, cell, row, exc)
    return await end_cell(s, cell, _failed(row, exc))


def _failed(row: JournalRow | None, exc: V2VError | OSError) -> Ending:
    """The ending of a cell whose work raised; one whose task had succeeded stays paid (see Ending.paid)."""
    paid = row is not None and row.state is JournalState.PAID
    note = str(exc)
    if paid:
        note += "; its task succeeded and was paid: a rerun fetches its output by id, never paying again"
    return Ending(CellState.FAILED, task_id=row.task_id if row else None, note=note, failure=str(exc),
                  failure_code=getattr(exc, "failure_code", type(exc).__name__.upper()),
                  retryable=bool(getattr(exc, "retryable", False)), journal_detail={"error": str(exc)},
                  paid=paid)


def _output_gone(s: SweepSession, cell: Cell, row: JournalRow, exc: NotFoundError) -> CellOutcome:
    """A paid task that can no longer be read (deleted, or past the provider's retention): its
    output cannot be fetched any more. Said so, here and on every rerun; only --force pays again."""
    s.journal.set(s.experiment, cell.key, JournalState.PAID,
                  detail={**row.detail, OUTPUT_GONE: str(exc)})
    s.progress.state("queued", CellState.MISSING)
    s.event("missing", cell, task_id=row.task_id)
    return CellOutcome(cell, CellState.MISSING, task_id=row.task_id, failure_code="OUTPUT_GONE",
                       note=f"paid, but its output can no longer be fetched (task {row.task_id}: {exc}); "
                            "--force pays for it again")


async def _wait(s: SweepSession, cell: Cell, task_id: str) -> tuple[Task, float | None]:
    """The task to its end, the progress showing it running meanwhile; returns it and the
    monotonic time it was first seen running (None if never)."""
    running_at: float | None = None

    def on_progress(t: Task) -> None:
        nonlocal running_at
        if t.status is TaskStatus.RUNNING and running_at is None:
            running_at = time.monotonic()
            s.progress.state("queued", "running")
            s.event("running", cell, task_id=t.id)

    try:
        return await s.client.wait(task_id, on_progress=on_progress, timeout=None), running_at
    finally:
        if running_at is not None:
            s.progress.state("running", "queued")


def _worth_a_new_task(task: Task, attempts: int, limit: int) -> bool:
    """Only a task the retry policy gives a new task with the same seed (it definitely failed inside
    the service: INTERNAL) gets another, within max_task_retries; SAFETY and the rest never do."""
    same_seed = task.retry_rule.action is Action.NEW_TASK_SAME_SEED
    return task.status is TaskStatus.FAILED and same_seed and attempts <= limit


async def _create(s: SweepSession, cell: Cell, request: GenerationRequest, attempt: int) -> str:
    """One create, journaled on both sides: 'sending' just before it leaves, the task id the
    moment it is known."""
    exp, journal = s.experiment, s.journal

    def mark_sending() -> None:
        journal.set(exp, cell.key, JournalState.SENDING, attempts=attempt)
        failpoint("create_sending")  # crash tests: killed with the create on the wire

    reservation = await s.spend.reserve(cell)  # NotStartedError: it does not fit under the cap
    try:
        created = await s.client.create_task(request, on_sending=mark_sending)
    except CreateOutcomeUnknownError:
        s.spend.unanswered(reservation)  # the task may exist: its estimate stays counted
        raise
    except (V2VError, OSError):  # refused by the endpoint (or never sent): no task, nothing charged
        await _refused(s, reservation)
        raise
    except BaseException:  # interrupted (Ctrl-C) with the create maybe on the wire: it stays counted
        s.spend.unanswered(reservation)
        raise
    failpoint("create_answered")  # crash tests: answered, the task id not yet recorded
    journal.set(exp, cell.key, JournalState.CREATED, task_id=created.id)  # durable before anything else
    failpoint("task_recorded")
    await s.spend.created(reservation, created)
    s.event("created", cell, task_id=created.id)
    return created.id


async def _refused(s: SweepSession, reservation: Reservation) -> None:
    """A create that raised a definite refusal (or never left): nothing was charged."""
    await asyncio.shield(s.spend.refused(reservation))


async def _score(s: SweepSession, cell: Cell, output: Path) -> tuple[ScoreReport | None, str | None]:
    sc = s.spec.scoring
    if not sc.enabled:
        return None, None
    from ..metrics import metric_names, score
    if uri_kind(cell.video) != "path":
        return None, "scoring skipped: the source is not a local file"
    try:
        async with s.score_lock:
            # A png_sequence output (a .zip of frames) plays at the model's own rate.
            report = await asyncio.to_thread(score, cell.video, str(output), sc.metrics or metric_names(),
                                             sc.frames, sc.size, crop=sc.crop, prompt=cell.prompt,
                                             metric_time_limit_s=sc.metric_time_limit_s,
                                             sequence_fps=s.client.catalog[cell.model].output_fps)
    except (V2VError, OSError, ValueError) as exc:  # a scoring failure is recorded, never fatal
        return None, f"scoring failed: {exc}"
    # A metric that failed (raised, a wrong result, past its time limit) is recorded on its own;
    # the run keeps every other metric.
    failed = "; ".join(f"{name} failed: {why}" for name, why in report.errors.items())
    return report, failed or None


def _posters(video: Path, poster: Path, sheet: Path, report: ScoreReport | None) -> None:
    from ..media.posters import write_contact_sheet, write_poster

    write_poster(str(video), poster)
    if report is not None and report.frames is not None:
        f = report.frames
        write_contact_sheet(sheet, f.src_a, f.out_a, report.times_s)


def _money(s: SweepSession, cell: Cell, task_id: str | None) -> dict[str, Any]:
    """What the cell's task cost as its charge row keeps it (the server's cost, or the estimate
    standing in, marked so), with the estimate made before its create; {} when it has no row."""
    charge = s.journal.charge_of(s.experiment, task_id) if task_id else None
    if charge is None:
        return {}
    return {"credits": charge.committed, "credits_estimated": charge.estimate,
            "credits_source": charge.cost_source or "estimate"}


def _rendered_price(client: AsyncRunwayClient, cell: Cell, report: ScoreReport | None) -> float:
    """The catalog's price of what was rendered, else the plan's estimate: for an output kept by a
    version of v2v-lab that recorded no charges."""
    if report is not None and report.frames is not None:
        return client.catalog[cell.model].estimate_credits(None, cell.options, ratio=cell.ratio,
                                                           seconds=report.frames.output.duration_s)
    return cell.credits
