"""Sweep specs, plans with costs, the durable journal and the runner."""

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
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

__getattr__, __dir__ = lazy(__name__, {
    'BudgetError': ('..errors', 'BudgetError'),
    'Journal': ('.journal', 'Journal'),
    'state_dir': ('.journal', 'state_dir'),
    'CellOutcome': ('.outcome', 'CellOutcome'),
    'SweepOptions': ('.outcome', 'SweepOptions'),
    'SweepResult': ('.outcome', 'SweepResult'),
    'Cell': ('.plan', 'Cell'),
    'Plan': ('.plan', 'Plan'),
    'build_plan': ('.plan', 'build_plan'),
    'cell_key': ('.plan', 'cell_key'),
    'SweepRunner': ('.runner', 'SweepRunner'),
    'plan_sweep': ('.runner', 'plan_sweep'),
    'run_sweep': ('.runner', 'run_sweep'),
    'sweep_runner': ('.runner', 'sweep_runner'),
    'SweepSpec': ('.spec', 'SweepSpec'),
    'load_spec': ('.spec', 'load_spec'),
    'parse_spec': ('.spec', 'parse_spec'),
    'CellState': ('.states', 'CellState'),
    'JournalState': ('.states', 'JournalState'),
}, globals())
