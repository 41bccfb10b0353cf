"""The adaptive search's I/O loop around its decision core (search.py): plan a round's cells from
the runs recorded so far, run them as a grid's cells are run, read their scores back from the
store, decide, repeat; then the winner and every round on the parent run.

Decisions come from the recorded runs alone (tracking's cell_scores), never from this process's
memory: a search killed at any moment and run again replays the same rounds from the same runs,
and the journal keeps every cell from being paid twice. A search's cells are the grid's cells
(the same keys): a later full grid of the spec reuses them, and a search after a grid pays nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._failpoints import failpoint
from ..api.catalog import load_catalog
from ..errors import InputError, escape_controls
from ..metrics.base import REGISTRY, Metric
from .cell import SweepSession, run_cell
from .journal import JournalStore
from .outcome import CellOutcome, SweepResult
from .plan import Cell, Plan
from .progress import Progress
from .search import NO_SCORE, SearchState, cells_run, expected_share, replay
from .spec import SEARCH_AXES, Search
from .states import CellState, Group

if TYPE_CHECKING:
    from ..tracking.writer import SweepWriter
    from .runner import SweepRunner

__all__ = ["SearchCells", "SearchLoop", "SearchReport", "search_estimate"]

# Why a search stopped before its verdict: cells it needs that this run could not score.
BUDGET = "budget"
INCOMPLETE = "incomplete"


class SearchCells:
    """The grid's cells as the search sees them: candidate k (a value of the searched axis, in
    plan order) at seed index i (the spec's seeds in order) is a block of cells (one, or one per
    value of the other axes the spec varies: its score is their mean)."""

    def __init__(self, plan: Plan, search: Search):
        self.search = search
        self.metric: Metric = REGISTRY[search.metric]
        value_of = _axis_reader(search.best)
        seed_index = {seed: i for i, seed in reversed(list(enumerate(plan.seeds)))}
        self.labels: list[str] = []
        self.blocks: dict[tuple[int, int], list[Cell]] = defaultdict(list)
        for cell in plan.cells:
            label = value_of(cell)
            if label not in self.labels:
                self.labels.append(label)
            self.blocks[(self.labels.index(label), seed_index[cell.seed])].append(cell)
        self.seeds = list(dict.fromkeys(plan.seeds))
        if len(self.labels) < 2:
            raise InputError("search.best", search.best, f"an axis with at least two values among the planned cells "
                             f"(this plan has {len(self.labels)})")

    def state(self, scores: dict[str, float | None]) -> SearchState:
        """Where the recorded scores leave the search (scores: cell key -> metric value, None: no score)."""
        return replay(self.table(scores), len(self.labels), len(self.seeds), self.search.confidence)

    def table(self, scores: dict[str, float | None], raw: bool = False) -> dict[tuple[int, int], float | None]:
        """(candidate, seed index) -> the block's mean, read in the metric's direction (raw: as
        logged), NO_SCORE if a cell of it has none; blocks not all recorded are left out."""
        out: dict[tuple[int, int], float | None] = {}
        for block, cells in self.blocks.items():
            if any(c.key not in scores for c in cells):
                continue
            values = [scores[c.key] for c in cells]
            if any(v is None for v in values):
                out[block] = NO_SCORE
                continue
            mean = sum(float(v) for v in values if v is not None) / len(values)
            out[block] = mean if raw else float(self.metric.goodness(mean))
        return out

    def cells(self, blocks: list[tuple[int, int]]) -> list[Cell]:
        return [c for b in blocks for c in self.blocks[b]]

    def grid_credits(self) -> float:
        return sum(c.credits for cells in self.blocks.values() for c in cells)


def _axis_reader(axis: str) -> Callable[[Cell], str]:
    """A cell's value on the searched axis, as text (the label a candidate goes by)."""
    if axis in SEARCH_AXES:
        return lambda cell: _text(getattr(cell, axis))
    catalog = load_catalog()

    def option(cell: Cell) -> str:
        # Defaults are left out of a cell's options (and key): a cell without it has the model's default.
        mspec = catalog.get(cell.model)
        field_spec = mspec.fields.get(axis) if mspec is not None else None
        return _text(cell.options.get(axis, field_spec.default if field_spec else None))
    return option


def _text(value: Any) -> str:
    return "(default)" if value is None else value if isinstance(value, str) else json.dumps(value)


@dataclass
class SearchReport:
    """What a search did: every round (decided from the recorded runs), why it ended, the winner,
    and its credits against the grid's. to_json() is the parent's search.json."""

    cells: SearchCells
    state: SearchState
    scores: dict[str, float | None]
    credits: dict[str, float | None]
    ended: str = ""
    expected_share: float | None = None  # a dry run's: the simulated share of the grid's cells
    round_credits: list[float] = field(default_factory=list)
    stopped_round_credits: float = 0.0  # what the round the budget (or an unscorable cell) stopped was charged

    def __post_init__(self) -> None:
        self.ended = self.ended or self.state.ended
        self.round_credits = [sum(self.credits.get(c.key) or 0.0 for c in self.cells.cells(
            [(k, s) for k in r.candidates for s in r.new_seeds])) for r in self.state.rounds]
        if self.stopped:
            self.stopped_round_credits = sum(self.credits.get(c.key) or 0.0
                                             for c in self.cells.cells(self.state.pending))

    @property
    def winner(self) -> str | None:
        """The verdict's candidate: None when the search stopped before one (budget, a cell it could not score)."""
        return self.cells.labels[self.state.winner] if self.state.winner is not None and not self.stopped else None

    @property
    def stopped(self) -> bool:
        return self.ended in (BUDGET, INCOMPLETE)

    @property
    def spent(self) -> float:
        """Every credit the search's cells were charged, a stopped round's included."""
        return sum(self.round_credits) + self.stopped_round_credits

    def to_json(self) -> dict[str, Any]:
        labels, seeds = self.cells.labels, self.cells.seeds
        raw = self.cells.table(self.scores, raw=True)
        leader = self.state.leader()
        return {
            "best": self.cells.search.best, "metric": self.cells.metric.name,
            "direction": self.cells.metric.best_text(), "confidence": self.cells.search.confidence,
            "method": "successive elimination on shared seeds; stochastic curtailment test, Bonferroni over looks",
            "candidates": labels, "seeds": seeds, "max_seeds": len(seeds),
            "rounds": [{"round": r.number, "candidates": [labels[k] for k in r.candidates],
                        "seeds": seeds[:r.seeds], "new_seeds": [seeds[i] for i in r.new_seeds],
                        "level": r.level, "spread": r.spread, "credits": credit,
                        "decisions": [{"candidate": labels[d.candidate], "mean": _mean(raw, d.candidate, r.seeds),
                                       "gap": d.gap, "interval": [d.low, d.high], "kept": d.kept, "why": d.why}
                                      for d in r.decisions]}
                       for r, credit in zip(self.state.rounds, self.round_credits, strict=True)],
            "ended": self.ended, "winner": self.winner,
            "leader": labels[leader] if leader is not None else None,
            "pending": [[labels[k], seeds[s]] for k, s in self.state.pending] if self.stopped else [],
            "cells": sum(len(self.cells.blocks[(k, s)]) for r in self.state.rounds for k in r.candidates
                         for s in r.new_seeds),
            "grid_cells": sum(len(b) for b in self.cells.blocks.values()),
            "credits": self.spent, "grid_credits_estimated": self.cells.grid_credits(),
        }

    def table(self) -> str:
        """The rounds as text for a terminal: one line per round, then who was dropped and why."""
        labels = [escape_controls(x if len(x) <= 30 else x[:27] + "...") for x in self.cells.labels]
        metric = self.cells.metric
        raw = self.cells.table(self.scores, raw=True)
        lines = [f"search: best {self.cells.search.best} by {metric.name} ({metric.best_text()}), "
                 f"confidence {self.cells.search.confidence:g}"]
        head = ["round", "seeds", "in", "kept", "dropped", "credits", "leader (mean)"]
        rows = []
        for r, credit in zip(self.state.rounds, self.round_credits, strict=True):
            kept = [d for d in r.decisions if d.kept]
            lead = min(kept, key=lambda d: d.gap) if kept else None
            lead_text = f"{labels[lead.candidate]} ({_mean(raw, lead.candidate, r.seeds):.4f})" if lead else "-"
            rows.append([str(r.number), str(r.seeds), str(len(r.candidates)), str(len(kept)),
                         str(len(r.candidates) - len(kept)), f"{credit:g}", lead_text])
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
        lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
        for r in self.state.rounds:
            lines += [f"  round {r.number}: dropped {labels[d.candidate]}: {d.why}" for d in r.dropped()]
        lines.append(self._ending(labels))
        return "\n".join(lines)

    def _ending(self, labels: list[str]) -> str:
        grid = self.cells.grid_credits()
        money = f"{self.spent:g} credits, the full grid about {grid:g}"
        if self.winner is not None:
            return f"winner: {escape_controls(self.winner)} ({self.ended}); {money}"
        leader = self.state.leader()
        so_far = f"; leader so far: {labels[leader]}" if leader is not None else ""
        why = {BUDGET: "the budget ran out", INCOMPLETE: "cells it needs have no score yet (see above)"}.get(
            self.ended, self.ended)
        return f"no winner: {why}{so_far}; {money}"


def _mean(raw: dict[tuple[int, int], float | None], k: int, seeds: int) -> float:
    values = [raw.get((k, s)) for s in range(seeds)]
    finite = [v for v in values if v is not None]
    return sum(finite) / len(finite) if finite else float("nan")


def search_estimate(plan: Plan, search: Search, to_create: list[Cell]) -> tuple[float, float, float]:
    """A dry run's figures: the most a search can cost (every grid cell not done), the expected cost
    (the simulated share of the grid's cells), and that share."""
    cells = SearchCells(plan, search)
    most = sum(c.credits for c in to_create)
    share = expected_share(len(cells.labels), len(cells.seeds), search.confidence)
    return most, min(most, share * cells.grid_credits()), share


class SearchLoop:
    """One search run: rounds until the verdict, the seeds' end, the budget or a cell it cannot score."""

    def __init__(self, runner: SweepRunner, journal: JournalStore, writer: SweepWriter):
        if runner.opts.force:
            raise InputError("--force", True, "a search without --force (it decides from the recorded runs; "
                             "a new experiment name starts one afresh)")
        if journal.claims() is not None:
            raise InputError("search", runner.spec.experiment, "a search on this machine's journal "
                             "(V2V_LAB_LEDGER_URL unset): a shared ledger runs whole grids")
        assert runner.spec.search is not None
        self.runner, self.journal, self.writer = runner, journal, writer
        self.cells = SearchCells(runner.plan, runner.spec.search)
        self.outcomes: dict[str, CellOutcome] = {}
        self.session: SweepSession | None = None
        self.most: list[Cell] = []  # the grid's cells not done: the most the search may create

    async def run(self, t0: float) -> SweepResult:
        metric = self.cells.metric.name
        scores = await asyncio.to_thread(self.writer.cell_scores, metric)
        state = self.cells.state(scores)
        if state.done:  # every round recorded before: nothing to open, nothing to ask
            return await self._record(await self._report(state, scores), t0)
        self.most = self.runner.classify(self.journal, await asyncio.to_thread(self.writer.done_cell_keys))[Group.NEW]
        # The endpoint is opened (and a paid run asked about) once, for the most the search may
        # create; its rounds' cells are held to the cap as they are created (SpendGuard).
        async with self.runner.session(self.journal, self.writer, new=[], ask=self.most, work=0) as (session, _):
            self.session = session
            try:
                report = await self._rounds(t0)
            except BaseException:
                self.writer.abandon_parent({"wall_time_s": time.monotonic() - t0})
                raise
        return await self._record(report, t0)

    async def _rounds(self, t0: float) -> SearchReport:
        metric = self.cells.metric.name
        while True:
            scores = await asyncio.to_thread(self.writer.cell_scores, metric)
            state = self.cells.state(scores)
            if state.done:
                return await self._report(state, scores)
            cells = self.cells.cells(state.pending)
            results = await self._run_round(cells, t0)
            if results is None or any(o.state not in (CellState.DONE, CellState.FAILED) for o in results):
                budget = results is not None and any(o.failure_code == "budget" for o in results)
                return await self._report(state, await asyncio.to_thread(self.writer.cell_scores, metric),
                                          BUDGET if budget else INCOMPLETE)
            failpoint("search_round")  # crash tests: a round's cells all logged, the next not yet planned

    async def _run_round(self, cells: list[Cell], t0: float) -> list[CellOutcome] | None:
        """The round's cells that can run now, run; None when some of them cannot (an unknown create,
        a paid output gone, a failure journalled before its run was logged): said in the outcomes."""
        runner, s = self.runner, self.session
        assert s is not None
        done = await asyncio.to_thread(self.writer.done_cell_keys)
        groups = runner.classify(self.journal, done, cells)
        runner._settle_journal(self.journal, groups, done)
        from .runner import _not_run  # the reasons a grid gives for the same cells

        blocked = _not_run({**groups, Group.DONE: []})
        for o in blocked:
            self.outcomes[o.cell.key] = o
        work = groups[Group.RESUME] + groups[Group.FINISH] + groups[Group.NEW]
        if blocked or not work:
            return None
        if self.writer.parent_run_id is None:
            limit = runner.opts.concurrency or runner.spec.concurrency
            await runner.start_parent(self.writer, cells_to_run=len(self.most),
                                      estimate=sum(c.credits for c in self.most), concurrency=limit)
        _, total, per_model = runner.slots(work, None)
        s.progress = Progress(len(work), runner.opts.progress, runner.plan)
        resume, finish = {c.key for c in groups[Group.RESUME]}, {c.key for c in groups[Group.FINISH]}
        try:
            results = await asyncio.gather(*(run_cell(s, c, (per_model[c.model], total), resume=c.key in resume,
                                                      finish=c.key in finish) for c in work))
        finally:
            s.progress.close()
        for o in results:
            self.outcomes[o.cell.key] = o
        return list(results)

    async def _report(self, state: SearchState, scores: dict[str, float | None], ended: str = "") -> SearchReport:
        credits = await asyncio.to_thread(self.writer.cell_scores, "credits")
        return SearchReport(self.cells, state, scores, credits, ended)

    async def _record(self, report: SearchReport, t0: float) -> SweepResult:
        """The outcome on a parent run: this run's own, or, when every round was recorded before
        (a rerun after a kill between the last cell and the verdict), a new one, unless a finished
        search of the experiment already names this winner."""
        runner, writer = self.runner, self.writer
        touched = [self.outcomes.get(c.key) or CellOutcome(c, CellState.DONE, note="already done")
                   for c in self._asked(report)]
        if writer.parent_run_id is None:
            known = await asyncio.to_thread(writer.search_winners)
            if report.winner is None or report.winner in known:
                return self._result(report, touched, None, t0)
            await runner.start_parent(writer, cells_to_run=0, estimate=0.0, concurrency=runner.spec.concurrency)
        await asyncio.to_thread(writer.record_search, report.winner, report.to_json())
        result = self._result(report, touched, writer.parent_run_id, t0)
        await runner.finish_parent(writer, result, {"search_cells": float(cells_run(report.state)),
                                                    "search_credits": report.spent})
        return result

    def _asked(self, report: SearchReport) -> list[Cell]:
        """Every cell the search's rounds asked for, the pending ones of where it stopped too."""
        blocks = [(k, s) for r in report.state.rounds for k in r.candidates for s in r.new_seeds]
        return self.cells.cells(blocks + (report.state.pending if report.stopped else []))

    def _result(self, report: SearchReport, outcomes: list[CellOutcome], parent: str | None, t0: float) -> SweepResult:
        notices = self.session.spend.notices if self.session is not None else []
        done = sum(o.note == "already done" for o in outcomes)
        return SweepResult(self.runner.plan, self.runner._in_plan_order(outcomes), parent, time.monotonic() - t0,
                           self.writer.uri, already_done=done, notices=notices, search=report)
