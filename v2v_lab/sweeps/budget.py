"""Money before it is spent: the estimate against the cap, the balance and the daily limits, and
asking the person at the terminal. Nothing here sends a request."""

from __future__ import annotations

import os
import select
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BudgetError

__all__ = ["DOLLARS_PER_CREDIT", "check_budget", "confirm_spend", "spend_question"]

DOLLARS_PER_CREDIT = 0.01


def check_budget(models: Sequence[str], credits: float, cap: float | None, org: Any | None,
                 committed: float = 0.0) -> None:
    """models: one entry per generation to create; credits: their estimate. org: the account's
    organization (balance and per-model limits) when it could be read. committed: what the
    experiment's earlier tasks cost or may still cost (the cap is the experiment's)."""
    n = len(models)
    if cap is not None and credits + committed > cap:
        earlier = f" and its earlier tasks {committed:g}" if committed else ""
        raise BudgetError("budget.max_credits", cap, f"an estimate within it: these {n} cells "
                          f"need {credits:g} credits{earlier}, {credits + committed - cap:g} over")
    if org is None:
        return
    if credits > org.credit_balance:
        raise BudgetError("credits", org.credit_balance, f"a balance that covers the estimate: need {credits:g}, "
                          f"{credits - org.credit_balance:g} short")
    for model, count in Counter(models).items():
        limits = org.models.get(model)
        if limits is None:
            raise BudgetError("models", model, f"a model your organization has ({', '.join(org.models)})")
        left = limits.max_daily - limits.daily_used
        if count > left:
            raise BudgetError(f"daily limit ({model})", count, f"at most {left} more generations today "
                              f"({limits.daily_used} of {limits.max_daily} used); {count - left} over")


def spend_question(generations: int, provider: str, credits: float) -> str:
    return (f"Run {generations} paid generation(s) on {provider}: about {credits:g} credits "
            f"(${credits * DOLLARS_PER_CREDIT:.2f})? [y/N] ")


def confirm_spend(question: str, confirm: Callable[[str], bool] | None = None) -> None:
    """Ask before spending: `confirm` when given (notebooks, tests), else the terminal. With no
    terminal to ask on, refuse: spending needs --yes there. Ctrl-D is a no."""
    if confirm is not None:
        ok = confirm(question)
    elif sys.stdin is not None and sys.stdin.isatty():
        # The question goes to stderr, like any prompt: stdout stays the command's output.
        sys.stderr.write(question)
        sys.stderr.flush()
        try:
            ok = _answer().strip().lower() in ("y", "yes")
        except EOFError:
            print(file=sys.stderr)
            ok = False
    else:
        raise BudgetError("--yes", False, "--yes to spend credits without a terminal to ask on")
    if not ok:
        raise BudgetError("confirmation", "no", "yes (or --yes) to spend credits")


def _answer() -> str:
    """A line from the terminal. The wait is in short slices: Ctrl-C is then seen within a fraction
    of a second whichever thread the terminal's SIGINT lands on (a read blocking in the main thread
    is interrupted only when it lands there, and not at all when it came just before the read)."""
    if os.name == "nt":  # pragma: no cover - no select() on a console there
        return input()
    while not select.select([sys.stdin], [], [], 0.2)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
