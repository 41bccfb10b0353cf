"""Backoff with jitter, which transport failures left a request unsent, and the one loop that
retries: each caller's attempt decides what may be tried again (RetryLater, by the retry policy's
rules in retry_policy.py), the loop only counts and waits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")


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


class RetryLater(Exception):
    """Raised by one attempt that may be tried again: `error` is what the caller gets when no try
    is left; `retry_after` (seconds) overrides the backoff (a server's Retry-After, or 0 to go at once)."""

    def __init__(self, error: Exception, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


async def with_retries(policy: RetryPolicy, attempt: Callable[[int], Awaitable[T]], *, tries: int | None = None) -> T:
    """attempt(n) for n = 0, 1, ... until it returns or raises anything but RetryLater; at most
    `tries` attempts (the policy's 1 + max_retries by default), the policy's delay between them.
    Whether a failure may be retried is the attempt's call alone: a create that may have arrived
    raises its own error and is never tried again here."""
    tries = policy.max_retries + 1 if tries is None else tries
    n = 0
    while True:
        try:
            return await attempt(n)
        except RetryLater as again:
            if n + 1 >= tries:
                raise again.error from None
            await asyncio.sleep(policy.delay(n, again.retry_after))
            n += 1
