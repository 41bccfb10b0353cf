"""At the end of a paid sweep: what it recorded per model against what the account reports
(`POST /v1/organization/usage`) for the days it ran. The account spending more is normal (other
work on it); the account reporting less than the sweep recorded is not, and is said plainly."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..api.client import AsyncRunwayClient
from ..errors import V2VError
from .outcome import CellOutcome

__all__ = ["Reconciliation", "account_usage", "reconcile", "recorded_by_model"]

Reconciliation = dict[str, tuple[float, float | None]]  # model -> (this sweep recorded, the account reported)


def recorded_by_model(outcomes: Iterable[CellOutcome]) -> dict[str, float]:
    """What this sweep's own tasks cost per model (outputs an earlier run paid for are not counted)."""
    out: dict[str, float] = defaultdict(float)
    for o in outcomes:
        if o.task_id and not o.from_kept and o.credits:
            out[o.cell.model] += o.credits
    return dict(out)


def account_usage(body: Any) -> dict[str, float]:
    """The usage answer's net credits per model, summed over its days."""
    out: dict[str, float] = defaultdict(float)
    for day in (body or {}).get("results") or []:
        for used in day.get("usedCredits") or []:
            out[str(used.get("model"))] += float(used.get("amount") or 0)
    return dict(out)


async def reconcile(client: AsyncRunwayClient, outcomes: list[CellOutcome], started: dt.date
                    ) -> tuple[Reconciliation, list[str]]:
    """Per model: (recorded, reported), and the lines to say (a difference, or usage not readable)."""
    recorded = recorded_by_model(outcomes)
    if not recorded:
        return {}, []
    today = dt.datetime.now(dt.timezone.utc).date()
    try:
        reported = account_usage(await client.usage(started, today + dt.timedelta(days=1)))
    except V2VError as exc:
        return {m: (c, None) for m, c in recorded.items()}, [
            f"reconciliation: the account's usage could not be read ({exc}); this sweep recorded "
            + ", ".join(f"{c:g} credits on {m}" for m, c in recorded.items())]
    lines = []
    for model, mine in recorded.items():
        diff = reported.get(model, 0.0) - mine
        if diff >= 0.5:
            lines.append(f"reconciliation: the account spent {diff:g} credits more than this sweep recorded on "
                         f"{model} (other work on the account, from {started} on)")
        elif diff <= -0.5:
            lines.append(f"reconciliation: the account reports {-diff:g} credits less than this sweep recorded on "
                         f"{model} ({reported.get(model, 0.0):g} against {mine:g}): check the provider's usage page")
    return {m: (c, reported.get(m, 0.0)) for m, c in recorded.items()}, lines
