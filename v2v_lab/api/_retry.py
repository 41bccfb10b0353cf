"""Backoff with jitter, and which failures a request may be retried after."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """0.5 s x 2^n capped at 8 s, minus up to 50% jitter (Runway's advice); Retry-After wins when sane."""
        if retry_after is not None and 0 <= retry_after <= 60:
            return retry_after
        return min(self.cap_s, self.base_s * 2**attempt) * random.uniform(0.5, 1.0)


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# Raised before a single byte of the request left this machine: a create may be sent again.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# Anything else on the wire: the request may have been received and acted on.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)


def retry_after_seconds(response: httpx.Response) -> float | None:
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None
