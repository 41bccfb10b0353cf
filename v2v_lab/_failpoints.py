"""Crash points for the crash-and-resume tests: kill this process at a named moment.

V2V_LAB_FAILPOINTS="create_answered=3" makes the 3rd pass through failpoint("create_answered")
send SIGKILL to the process itself (kill -9: no cleanup, no flush), exactly like a crash there.
With V2V_LAB_FAILPOINT_LOG set to a file, the failpoint writes its name there (synced) before the
kill, so a test can prove that each kill happened where it was meant to and not somewhere else.
Unset (always, outside tests) a failpoint is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal
import threading

from ._env import env_text
from .errors import InputError

_counts: dict[str, int] = {}
_lock = threading.Lock()


def _armed() -> dict[str, int]:
    spec = env_text("V2V_LAB_FAILPOINTS") or ""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("=")
        if not (nth or "1").isdigit():
            raise InputError("V2V_LAB_FAILPOINTS", spec, "name=N,... with N a whole number (tests only)")
        out[name] = int(nth or 1)
    return out


_ARMED = _armed()


def failpoint(name: str) -> None:
    if not _ARMED or name not in _ARMED:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == _ARMED[name]
    if hit:
        log = env_text("V2V_LAB_FAILPOINT_LOG")
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(fd, f"{name}={_ARMED[name]}\n".encode())
            os.fsync(fd)
            os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
