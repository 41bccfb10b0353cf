"""What the endpoint answers, typed: the organization (limits, balance) and error statuses as
v2v_lab's errors (messages name the request and never hold a key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from ._secret import Secret, redact, redact_received

__all__ = ["ModelLimits", "Organization", "parse_organization", "received_json", "status_error"]


@dataclass(frozen=True)
class ModelLimits:
    max_concurrent: int
    max_daily: int
    daily_used: int


@dataclass(frozen=True)
class Organization:
    credit_balance: float
    max_monthly_spend: int | None
    models: dict[str, ModelLimits]


def received_json(response: httpx.Response, key: Secret | None) -> Any:
    """An answer's JSON body, the one place every answer is parsed: with the caller's key taken out
    of everything in it, so an endpoint that echoes the key (in a task id, a failure, an output URL)
    never gets it stored or shown. Raises ValueError when the body is not JSON."""
    return redact_received(response.json(), key)


def status_error(response: httpx.Response, key: Secret | None, request: str = "") -> APIError:
    """The typed error for an error status; its message names the request (method and path, never
    a query string, which may hold a signature) and the endpoint's own words, with any key redacted."""
    try:
        body: Any = received_json(response, key)
    except ValueError:
        body = redact(response.text[:500], key)
    message = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else str(body)
    message = redact(message or f"HTTP {response.status_code}", key)
    code = response.status_code
    cls: type[APIError]
    if code == 400:
        error = BadRequestError(message, status_code=code, body=body)
        if request:  # the field: reason parse stays on the endpoint's own words
            error.args = (f"{request}: HTTP 400: {message}",)
        return error
    cls = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError, 429: RateLimitError}.get(
        code, ServerError if code >= 500 else APIError)
    where = f"{request}: " if request else ""
    return cls(f"{where}HTTP {code}: {message}", status_code=code, body=body)


NO_LIMIT = 10**9  # a limit the API sends as null: none


def _limit(limits: dict[str, Any], key: str, absent: int) -> int:
    """A per-model limit: `absent` when the field is missing, NO_LIMIT when the API sends null
    (Runway's current API may: no limit on that model)."""
    if key not in limits:
        return absent
    value = limits[key]
    return NO_LIMIT if value is None else int(value)


def parse_organization(body: dict[str, Any]) -> Organization:
    """GET /v1/organization's body: balance, monthly cap, and per model its limits and today's use."""
    tier_models = (body.get("tier") or {}).get("models") or {}
    usage = (body.get("usage") or {}).get("models") or {}
    models = {
        m: ModelLimits(_limit(v, "maxConcurrentGenerations", 1), _limit(v, "maxDailyGenerations", 0),
                       int((usage.get(m) or {}).get("dailyGenerations") or 0))
        for m, v in tier_models.items()
    }
    return Organization(float(body.get("creditBalance", 0)), (body.get("tier") or {}).get("maxMonthlyCreditSpend"),
                        models)
