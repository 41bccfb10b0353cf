"""Fault and limit knobs of the emulator, drawn from seeded generators so a run can be replayed."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from ..errors import InputError

__all__ = ["ROUTES", "FaultConfig", "FaultDice"]

ROUTES = ("create", "task", "delete", "upload", "organization", "usage", "output")


@dataclass
class FaultConfig:
    """Every rate is a probability per request (or per task) in [0, 1]."""

    seed: int = 0
    server_error_rate: dict[str, float] = field(default_factory=dict)  # route -> rate of 502/503
    create_429_rate: float = 0.0       # create answered 429 (no task made)
    retry_after_s: float | None = None  # the Retry-After a 429 carries (None: none, as the emulator did before)
    drop_rate: float = 0.0             # connection dropped: half before, half after the work was done
    truncate_rate: float = 0.0         # output download cut short of its Content-Length
    corrupt_output_rate: float = 0.0   # output answered 200 in full, but the bytes are not a video
    slow_download_s: float = 0.0       # extra seconds spread over each output download
    task_failure_rate: float = 0.0     # tasks that end FAILED with INTERNAL.*
    safety_output_rate: float = 0.0    # tasks that end FAILED with SAFETY.OUTPUT.*
    request_latency_s: float = 0.0     # added to every API request
    # A cancelled task still read as CANCELLED (the shape Runway's task union has) until deleted
    # again, instead of gone at once (Runway's retention rule, the default).
    cancelled_readable: bool = False
    blocklist: tuple[str, ...] = ("gore", "nsfw", "beheading")

    def __post_init__(self) -> None:
        for name in ("create_429_rate", "drop_rate", "truncate_rate", "corrupt_output_rate", "task_failure_rate", "safety_output_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(name, value, "a probability in [0, 1]")
        if self.retry_after_s is not None and not 0.0 <= self.retry_after_s <= 60.0:
            raise InputError("retry_after_s", self.retry_after_s, "seconds from 0 to 60")
        for route, rate in self.server_error_rate.items():
            if route not in ROUTES:
                raise InputError("server_error_rate", route, f"a route among {', '.join(ROUTES)}")
            if not 0.0 <= rate <= 1.0:
                raise InputError(f"server_error_rate[{route}]", rate, "a probability in [0, 1]")


class FaultDice:
    """Thread-safe draws from the fault seed; each injected fault is counted by kind.

    Each kind of fault draws from its own stream (seeded by the seed and the kind), so the n-th
    draw of a kind gives the same answer however requests of other kinds interleave with it:
    a run's faults replay even though concurrent requests arrive in a different order.
    """

    def __init__(self, config: FaultConfig):
        self.config = config
        self._streams: dict[str, random.Random] = {}
        self._choices = random.Random(f"{config.seed}:choice")
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def roll(self, rate: float, kind: str) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            stream = self._streams.get(kind)
            if stream is None:
                stream = self._streams[kind] = random.Random(f"{self.config.seed}:{kind}")
            hit = stream.random() < rate
            if hit:
                self.injected[kind] = self.injected.get(kind, 0) + 1
        return hit

    def choice(self, options: list[str]) -> str:
        with self._lock:
            return self._choices.choice(options)
