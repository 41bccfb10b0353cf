"""Sweep specs, plans with costs, the durable journal and the runner."""

from ..errors import BudgetError
from .journal import Journal, state_dir
from .outcome import CellOutcome, SweepOptions, SweepResult
from .plan import Cell, Plan, build_plan, cell_key
from .runner import SweepRunner, plan_sweep, run_sweep, sweep_runner
from .spec import SweepSpec, load_spec, parse_spec
from .states import CellState, JournalState

__all__ = [
    "BudgetError", "Cell", "CellOutcome", "CellState", "Journal", "JournalState", "Plan", "SweepOptions",
    "SweepResult", "SweepRunner", "SweepSpec", "build_plan", "cell_key", "load_spec", "parse_spec", "plan_sweep",
    "run_sweep", "state_dir", "sweep_runner",
]
