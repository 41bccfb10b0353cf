"""Run a plan: what is left to do (the journal and the store agree), the budget and the question
before spending, concurrency within the account's limits, and the sweep's parent run around its
cells (each cell's life is in cell.py; how runs read in MLflow, in tracking/records.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .._sync import run_blocking
from ..api.catalog import RUNWAY_API_VERSION
from ..api.client import AsyncRunwayClient
from ..api.providers import get_provider
from ..api.responses import Organization
from ..api.retry_policy import resent_by_retry_failed
from ..emulator.owned import start_local_emulator
from ..errors import APIError, AuthenticationError
from ..tracking.records import spec_yaml, sweep_params, sweep_tags
from ..tracking.store import check_store, local_store_path
from .budget import check_budget, confirm_spend, spend_question
from .cell import SweepSession, run_cell
from .journal import OUTPUT_GONE, ClaimStore, Journal, JournalRow, JournalStore, state_dir
from .ledger import PgLedger, ledger_url
from .outcome import CellOutcome, SweepOptions, SweepResult
from .plan import Cell, Plan, build_plan, seeds_record
from .progress import Progress
from .reconcile import reconcile
from .shared import LedgerChanges, cell_kind, run_shared, shared_slot
from .spec import SeedRandom, SweepSpec, load_spec
from .spend import SpendGuard
from .states import CellState, Group, JournalState

if TYPE_CHECKING:
    from ..tracking.writer import SweepWriter

__all__ = ["SweepRunner", "plan_sweep", "run_sweep", "sweep_runner"]

Groups = dict[Group, list[Cell]]


class SweepRunner:
    def __init__(self, spec: SweepSpec, options: SweepOptions):
        options.check()
        if options.provider:
            spec = spec.override(provider=options.provider)  # a copy: the caller's spec is left alone
        self.spec = spec
        self.opts = options
        _check_base_url(spec, options)
        recorded = None
        record = seeds_record(spec, state_dir())
        if isinstance(spec.seeds, SeedRandom) and record is not None and not record.is_file():
            # The state folder lost its draw (or never had it): the store kept the seeds it paid for.
            from ..tracking.reader import recorded_seeds

            recorded = recorded_seeds(spec.experiment, spec.seeds.random, options.tracking_uri)
        self.plan = build_plan(spec, state_dir=state_dir(), recorded_seeds=recorded, agree_seeds=_ledger_seeds(spec))

    # -- what is left to do ---------------------------------------------------------------------------
    def classify(self, journal: JournalStore, done_in_mlflow: dict[str, str], cells: list[Cell] | None = None) -> Groups:
        """The plan's cells (or these of them) by what a run does with each."""
        rows = journal.all(self.spec.experiment)
        groups: Groups = {g: [] for g in Group}
        for cell in self.plan.cells if cells is None else cells:
            row = rows.get(cell.key)
            if self.opts.force:
                groups[Group.NEW].append(cell)
            elif row is None:
                groups[Group.DONE if cell.key in done_in_mlflow else Group.NEW].append(cell)
            elif cell.key in done_in_mlflow and row.state is not JournalState.CREATED:
                groups[Group.DONE].append(cell)
            elif row.state in (JournalState.DONE, JournalState.PAID):
                groups[_paid_group(row)].append(cell)
            elif row.state is JournalState.CREATED:
                groups[Group.RESUME].append(cell)
            elif row.state in (JournalState.SENDING, JournalState.UNKNOWN):
                groups[Group.NEW if self.opts.retry_unknown else Group.UNKNOWN].append(cell)
            elif row.state is JournalState.FAILED:
                retry = self.opts.retry_failed and resent_by_retry_failed(row.failure_code)
                groups[Group.NEW if retry else Group.FAILED].append(cell)
        return groups

    @property
    def cap(self) -> float | None:
        return self.opts.max_credits if self.opts.max_credits is not None else self.spec.budget.max_credits

    def budget_check(self, to_create: list[Cell], org: Organization | None, journal: JournalStore) -> float:
        """The estimate of the cells to create, with what the experiment's earlier tasks cost or may
        still cost, against the cap and the balance; returns that commitment. What of it is held up
        front is the store's to say (JournalStore.committed_up_front: on a shared ledger, each
        create's reservation holds the cap instead)."""
        exp = self.spec.experiment
        check_budget([c.model for c in to_create], sum(c.credits for c in to_create), self.cap, org,
                     journal.committed_up_front(exp))
        return journal.committed(exp)

    # -- the run --------------------------------------------------------------------------------------
    async def run(self) -> SweepResult:
        t0 = time.monotonic()
        spec, opts = self.spec, self.opts
        url = ledger_url()
        # With V2V_LAB_LEDGER_URL the journal is the team's PostgreSQL ledger, shared by every
        # process on the experiment; without it, the local SQLite file as always.
        journal: JournalStore = PgLedger(url) if url else (
            Journal.for_reading(opts.journal_path) if opts.dry_run else Journal(opts.journal_path))
        try:
            store = check_store(opts.tracking_uri)
            if opts.dry_run:
                return await asyncio.to_thread(self._dry_run, journal, store)
            async with journal.exclusive(spec.experiment, store):
                return await self._run_locked(journal, store, t0)
        finally:
            journal.close()

    def _dry_run(self, journal: JournalStore, store: str) -> SweepResult:
        """What a run would do, decided as a run decides it (the journal and the store agree),
        with nothing sent and nothing written: not even an empty store or experiment."""
        from ..tracking.reader import recorded_done_cells

        done_in_mlflow = {} if self.opts.force else recorded_done_cells(self.spec.experiment, store)
        groups = self.classify(journal, done_in_mlflow)
        why = {Group.NEW: "a new task", Group.RESUME: "takes up its task by id",
               Group.FINISH: "scores and logs its kept output"}
        planned = [CellOutcome(c, CellState.PLANNED, note=why[g]) for g in why for c in groups[g]]
        estimate = None
        if self.spec.search is not None:  # the grid's cells to create are the most a search may create
            from .search_run import search_estimate

            estimate = search_estimate(self.plan, self.spec.search, groups[Group.NEW])
        return SweepResult(self.plan, self._in_plan_order(_not_run(groups) + planned), None, 0.0, store,
                           dry_run=True, already_done=len(groups[Group.DONE]), to_create=groups[Group.NEW],
                           search_estimate=estimate)

    async def _run_locked(self, journal: JournalStore, store: str, t0: float) -> SweepResult:
        spec, opts = self.spec, self.opts
        self.plan.provider.require_key()  # before the store is touched
        # Nothing is done in a store that does not exist yet (this sweep holds the experiment on it):
        # its cells need not wait for it, and go out while MLflow loads and makes it.
        new_store = _not_made_yet(store) and spec.search is None and journal.claims() is None
        opening = asyncio.ensure_future(asyncio.to_thread(_open_store, spec.experiment, opts.tracking_uri))
        try:
            done_in_mlflow: dict[str, str] = {}
            if not new_store:
                writer = await opening
                # Runs a killed sweep left half-logged: their cells are logged again in full below.
                removed = await asyncio.to_thread(writer.delete_incomplete_runs)
                if removed:
                    self.plan.warnings.append(f"removed {removed} half-logged run(s) left by an interrupted sweep")
                done_in_mlflow = {} if opts.force else await asyncio.to_thread(writer.done_cell_keys)
                if self.spec.search is not None:
                    from .search_run import SearchLoop  # it builds on this module's pieces

                    return await SearchLoop(self, journal, writer).run(t0)
            groups = self.classify(journal, done_in_mlflow)
            if journal.claims() is not None:
                # Shared: every cell not done is looked at under its claim (other processes move them on).
                outcomes = [CellOutcome(c, CellState.DONE, note="already done") for c in groups[Group.DONE]]
                work = [c for c in self.plan.cells if c not in groups[Group.DONE]]
            else:
                self._settle_journal(journal, groups, done_in_mlflow)
                outcomes = _not_run(groups)
                work = groups[Group.RESUME] + groups[Group.FINISH] + groups[Group.NEW]
            self.budget_check(groups[Group.NEW], None, journal)
            if not work:  # nothing to do writes nothing: no empty parent run per rerun
                return SweepResult(self.plan, self._in_plan_order(outcomes), None, time.monotonic() - t0, store,
                                   already_done=len(groups[Group.DONE]))
            async with self.session(journal, opening, new=groups[Group.NEW], ask=groups[Group.NEW],
                                    work=len(work)) as (session, org):
                return await self._run_cells(session, groups, work, org, outcomes, t0)
        finally:
            await _close_when_open(opening)

    @contextlib.asynccontextmanager
    async def session(self, journal: JournalStore, writer: SweepWriter | asyncio.Future[SweepWriter], *,
                      new: list[Cell], ask: list[Cell], work: int
                      ) -> AsyncIterator[tuple[SweepSession, Organization | None]]:
        """The endpoint for the cells to run, the money checked before any is sent: `new` against the
        cap and the balance, `ask` (what it may create) asked of the person on a paid provider.
        Provider local with no endpoint named: this sweep owns an emulator for its life."""
        spec, opts = self.spec, self.opts
        emulator = await asyncio.to_thread(start_local_emulator, spec.provider, opts.base_url or spec.base_url,
                                           **spec.emulator.model_dump(include={"render_scale", "run_s", "queue_s"}))
        try:
            client = AsyncRunwayClient(spec.provider, base_url=emulator.base_url if emulator else
                                       opts.base_url or spec.base_url)
        except BaseException:
            if emulator is not None:
                await asyncio.to_thread(emulator.stop)
            raise
        try:
            org = await self._organization(client)
            committed = self.budget_check(new, org, journal)
            if ask and client.provider.paid and not opts.yes:
                question = spend_question(len(ask), client.provider.name, sum(c.credits for c in ask))
                confirm_spend(question, opts.confirm)
            # While it runs, the cap (and the balance: no reservation past it) holds every create.
            cap = self.cap
            if org is not None and client.provider.paid:
                cap = min(cap if cap is not None else float("inf"), committed + org.credit_balance)
            daily = {m: limits.max_daily - limits.daily_used for m, limits in org.models.items()} if org else {}
            spend = SpendGuard(journal, spec.experiment, client.catalog, cap, say=_say, daily_left=daily)
            store = writer if isinstance(writer, asyncio.Future) else _ready(writer)
            yield SweepSession(spec, self.plan, opts, journal, store, client,
                               Progress(work, opts.progress, self.plan), spend), org
        finally:
            await client.aclose()
            if emulator is not None:
                await asyncio.to_thread(emulator.stop)

    def _settle_journal(self, journal: JournalStore, groups: Groups, done_in_mlflow: dict[str, str]) -> None:
        """What an interrupted sweep left unsaid, said now."""
        exp = self.spec.experiment
        rows = journal.all(exp)
        for cell in groups[Group.DONE]:
            row = rows.get(cell.key)
            if row is not None and row.state is not JournalState.DONE and cell.key in done_in_mlflow:
                # Killed after its run was logged, before the journal heard: the run is the proof.
                journal.set(exp, cell.key, JournalState.DONE, run_id=done_in_mlflow[cell.key])
        for cell in groups[Group.UNKNOWN]:
            if rows[cell.key].state is JournalState.SENDING:  # killed while sending: the create may have arrived
                journal.set(exp, cell.key, JournalState.UNKNOWN, detail={"error": "interrupted while the create was being sent"})

    async def _organization(self, client: AsyncRunwayClient) -> Organization | None:
        """The account's limits and balance; without them, the spec's concurrency (a wrong key stops here)."""
        try:
            return await client.organization()
        except AuthenticationError:
            raise
        except APIError as exc:
            self.plan.warnings.append(f"organization limits not readable ({exc}); concurrency from the spec only")
            return None

    async def _run_cells(self, s: SweepSession, groups: Groups, work: list[Cell], org: Organization | None,
                         outcomes: list[CellOutcome], t0: float) -> SweepResult:
        limit, total_sem, per_model = self.slots(work, org)
        # The parent run is begun beside the first creates; a cell logs only once it exists.
        s.store = asyncio.ensure_future(self._with_parent(s.store, cells_to_run=len(work), concurrency=limit,
                                                          estimate=sum(c.credits for c in groups[Group.NEW])))
        resume = {c.key for c in groups[Group.RESUME]}
        finish = {c.key for c in groups[Group.FINISH]}
        started_day = dt.datetime.now(dt.timezone.utc).date()
        claims = s.journal.claims()
        try:
            if claims is not None:
                results = await self._run_shared(s, claims, work, limit, total_sem, per_model, org)
            else:
                results = await asyncio.gather(*(run_cell(s, c, (per_model[c.model], total_sem),
                                                          resume=c.key in resume, finish=c.key in finish)
                                                 for c in work))
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, an error): the parent says so instead of RUNNING forever,
            # if the store takes it within seconds (a store that is away is the error being raised).
            if s.store.done() and not s.store.cancelled() and s.store.exception() is None:
                s.writer.abandon_parent({"wall_time_s": time.monotonic() - t0})
            raise
        finally:
            s.progress.close()
        outcomes += results
        money = await _account_check(s, results, started_day) if s.client.provider.paid else {}
        writer = await s.store  # every cell has logged: the parent exists
        result = SweepResult(self.plan, self._in_plan_order(outcomes), writer.parent_run_id, time.monotonic() - t0,
                             writer.uri, already_done=len(groups[Group.DONE]), notices=s.spend.notices)
        await self.finish_parent(writer, result, money)
        return result

    async def _with_parent(self, store: asyncio.Future[SweepWriter], *, cells_to_run: int, estimate: float,
                           concurrency: int) -> SweepWriter:
        writer = await store
        await self.start_parent(writer, cells_to_run=cells_to_run, estimate=estimate, concurrency=concurrency)
        return writer

    def slots(self, work: list[Cell], org: Organization | None
              ) -> tuple[int, asyncio.Semaphore, dict[str, asyncio.Semaphore]]:
        """The sweep's concurrency, and a slot per model within the account's own limit for it."""
        limit = self.opts.concurrency or self.spec.concurrency
        per_model = {}
        for model in {c.model for c in work}:
            org_limit = org.models[model].max_concurrent if org and model in org.models else limit
            per_model[model] = asyncio.Semaphore(max(1, min(limit, org_limit)))
        return limit, asyncio.Semaphore(limit), per_model

    async def start_parent(self, writer: SweepWriter, *, cells_to_run: int, estimate: float, concurrency: int) -> None:
        """The sweep's parent run, linked to the interrupted one it continues."""
        spec = self.spec
        params = sweep_params(experiment=spec.experiment, provider=spec.provider, models=spec.model_names(),
                              cells_planned=len(self.plan.cells), cells_to_run=cells_to_run, seeds=list(self.plan.seeds),
                              api_version=RUNWAY_API_VERSION, concurrency=concurrency, estimate_credits=estimate)
        interrupted = await asyncio.to_thread(writer.end_interrupted_parents)
        tags = sweep_tags(provider=spec.provider, user_tags=spec.tags, continues=interrupted[0] if interrupted else None)
        await asyncio.to_thread(writer.start_parent, f"{spec.experiment} sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                params, tags, spec_yaml(spec.model_dump_json(indent=2)),
                                self.plan.seeds if isinstance(spec.seeds, SeedRandom) else None)

    async def finish_parent(self, writer: SweepWriter, result: SweepResult, money: dict[str, float]) -> None:
        """The parent's totals, and FINISHED."""
        counts = Counter(o.state for o in result.outcomes)
        totals = {"cells": len(result.outcomes), "cells_done": counts[CellState.DONE],
                  "cells_failed": counts[CellState.FAILED], "cells_unknown": counts[CellState.UNKNOWN],
                  "cells_not_started": counts[CellState.NOT_STARTED], "credits": result.credits_spent,
                  "credits_estimated": result.credits_estimated, "wall_time_s": result.wall_s, **money}
        await asyncio.to_thread(writer.finish_parent, totals, "FINISHED")

    async def _run_shared(self, s: SweepSession, ledger: ClaimStore, work: list[Cell], limit: int,
                          total_sem: asyncio.Semaphore, per_model: dict[str, asyncio.Semaphore],
                          org: Organization | None) -> list[CellOutcome]:
        """The cells, shared with the other processes on this ledger (see shared.py)."""
        account = s.client.account
        exp = self.spec.experiment
        changes = LedgerChanges(ledger)

        def settled(cell: Cell, row: JournalRow) -> bool:
            unknown = row.state in (JournalState.UNKNOWN, JournalState.SENDING)
            if row.state is JournalState.SENDING and not self.opts.retry_unknown:
                # Claimed from a holder that died while sending: the create may have arrived.
                ledger.set(exp, cell.key, JournalState.UNKNOWN,
                           detail={"error": "its process died while the create was sent"})
            return (row.state is JournalState.DONE or (unknown and not self.opts.retry_unknown)
                    or (row.state is JournalState.FAILED
                        and not (self.opts.retry_failed and resent_by_retry_failed(row.failure_code))))

        async def run_one(cell: Cell, row: JournalRow | None) -> CellOutcome:
            if row is not None:  # taken over from a holder that died (or an earlier run)
                # Killed after its run was complete, before the ledger heard: the run is the proof.
                writer = await s.store
                logged = (await asyncio.to_thread(writer.done_cell_keys, cell.key)).get(cell.key)
                if logged:
                    ledger.set(exp, cell.key, JournalState.DONE, run_id=logged)
                    return CellOutcome(cell, CellState.DONE, task_id=row.task_id, run_id=logged, note="logged before")
                # A run its last holder left half-logged goes first.
                await asyncio.to_thread(writer.delete_incomplete_runs, cell.key)
            model_limit = org.models[cell.model].max_concurrent if org and cell.model in org.models else limit
            slots = (per_model[cell.model], total_sem, shared_slot(ledger, changes, account, cell, model_limit))
            return await run_cell(s, cell, slots, **cell_kind(row, os.path.isfile))

        return await run_shared(ledger, changes, exp, work, limit, run_one, settled)

    def _in_plan_order(self, outcomes: list[CellOutcome]) -> list[CellOutcome]:
        order = {c.key: i for i, c in enumerate(self.plan.cells)}
        return sorted(outcomes, key=lambda o: order.get(o.cell.key, 0))


async def _account_check(s: SweepSession, results: list[CellOutcome], started_day: dt.date) -> dict[str, float]:
    """What the account says it spent, beside what this sweep recorded: a difference is said; both
    are kept per model on the parent run (credits.<model>, account_credits.<model>)."""
    by_model, lines = await reconcile(s.client, results, started_day)
    for line in lines:
        s.spend.notices.append(line)
        _say(line)
    money: dict[str, float] = {}
    for model, (mine, reported) in by_model.items():
        money[f"credits.{model}"] = mine
        if reported is not None:
            money[f"account_credits.{model}"] = reported
    return money


def _say(line: str) -> None:
    """A line said while the sweep runs (an endpoint price that differs from the catalog's)."""
    print(f"warning: {line}", file=sys.stderr, flush=True)


def _ledger_seeds(spec: SweepSpec) -> Callable[[list[int]], list[int]] | None:
    """With a ledger, {random: N} seeds are drawn once for the experiment, in the ledger: processes
    started together each propose their draw and all take the first one stored (one spec, one set
    of cells, whichever machine runs it)."""
    url = ledger_url()
    if not url or not isinstance(spec.seeds, SeedRandom):
        return None
    count = spec.seeds.random

    def agree(proposed: list[int]) -> list[int]:
        ledger = PgLedger(url)
        try:
            return ledger.agree_seeds(spec.experiment, count, proposed)
        finally:
            ledger.close()
    return agree


def _not_made_yet(store: str) -> bool:
    """A local store whose file (or folder) does not exist: nothing of any experiment is in it."""
    path = local_store_path(store)
    return path is not None and not path.exists()


def _open_store(experiment: str, uri: str | None) -> SweepWriter:
    """The store, opened (made if new) with the experiment in it: MLflow's imports come with it."""
    from ..tracking.writer import SweepWriter

    return SweepWriter(experiment, uri)


def _ready(writer: SweepWriter) -> asyncio.Future[SweepWriter]:
    done: asyncio.Future[SweepWriter] = asyncio.get_running_loop().create_future()
    done.set_result(writer)
    return done


async def _close_when_open(opening: asyncio.Future[SweepWriter]) -> None:
    """Close the store's writer, once its opening has ended (an opening that failed has nothing to close)."""
    try:
        writer = await asyncio.shield(opening)
    except Exception:
        return  # said by the error that ended the sweep, or by a cell that could not log
    await asyncio.to_thread(writer.close)


def _paid_group(row: JournalRow) -> Group:
    """A cell paid for: its kept output is scored and logged (a done one too when it is not in this
    store: the journal is the ledger, a store only a view); a paid task whose output was not
    kept (a failed download, an unwritable folder) is taken up by id and its output fetched again;
    only one whose output is gone for good is missing, paid for again only with --force."""
    if row.output_path and os.path.isfile(row.output_path):
        return Group.FINISH
    if row.state is JournalState.PAID and row.task_id and OUTPUT_GONE not in row.detail:
        return Group.RESUME
    return Group.MISSING


def _not_run(groups: Groups) -> list[CellOutcome]:
    """The outcomes of cells this sweep leaves alone, with the reason each is left."""
    return ([CellOutcome(c, CellState.DONE, note="already done") for c in groups[Group.DONE]]
            + [CellOutcome(c, CellState.UNKNOWN, note="create outcome unknown: not sent again (use --retry-unknown)")
               for c in groups[Group.UNKNOWN]]
            + [CellOutcome(c, CellState.FAILED, note="failed before: not retried") for c in groups[Group.FAILED]]
            + [CellOutcome(c, CellState.MISSING, note="paid for before, but its output is gone (not kept here, "
                           "and not in this store or no longer fetchable): --force pays for it again")
               for c in groups[Group.MISSING]])


def _check_base_url(spec: SweepSpec, options: SweepOptions) -> None:
    """Where the key goes, checked before anything is opened or sent. A spec file is shared between
    people: its base_url must not send a key elsewhere. Only the user redirects their key
    (--base-url, or V2V_LAB_BASE_URL in their environment; the client checks that one)."""
    provider = get_provider(spec.provider)
    if options.base_url:
        provider.check_base_url(options.base_url, "base_url")
    elif spec.base_url and spec.came_from_file("base_url"):
        provider.check_spec_base_url(spec.base_url, spec.line_of("base_url"))
    elif spec.base_url:
        provider.check_base_url(spec.base_url, "base_url")


def sweep_runner(spec: SweepSpec | str | os.PathLike[str], **options: Any) -> SweepRunner:
    """The runner for a spec (or a spec file) and SweepOptions' fields: its plan is built and every
    input checked, nothing sent yet; `await runner.run()` runs it."""
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    return SweepRunner(spec, SweepOptions(**options))


def run_sweep(spec: SweepSpec | str | os.PathLike[str], **options: Any) -> SweepResult:
    """Run a sweep to the end (sync). Works inside Jupyter: the loop runs on a private thread there."""
    return run_blocking(sweep_runner(spec, **options).run, thread_name="v2v-sweep")


def plan_sweep(spec: SweepSpec | str | os.PathLike[str]) -> Plan:
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    return build_plan(spec, state_dir=state_dir())
