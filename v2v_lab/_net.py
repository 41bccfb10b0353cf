"""Small network facts shared by the client side and the emulator (which imports no client code),
and how a URL is printed (never its password)."""

from __future__ import annotations

import ipaddress
import re
import socket


def free_port() -> int:
    """A TCP port nothing listens on right now, on loopback: for starting a server (mlflow server,
    Voila, the team stack) on a port that must be named before it binds. The one copy: the tests,
    tools/ and bench/ take it from here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_loopback_host(host: str | None) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1): a host that is this machine."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# The emulator says on each task it answers for how often that task may change (a task there moves
# within tens of milliseconds, not at the real API's pace of about 5 s), and a client talking to an
# endpoint on this machine may poll at that pace instead of its provider's floor: a study on the
# emulator waits for its tasks, not for a poll interval meant for the real API.
TASK_PACE_HEADER = "x-v2v-lab-task-pace"
EMULATOR_TASK_PACE_S = 0.05
# And on each task it answers for, in seconds from now, when that task next changes status on its
# own (a pending task starts, a running one ends): a client on loopback reads the task again then,
# not every pace before it. Absent when no one can say (a task waiting for a slot, an ended one).
TASK_DUE_HEADER = "x-v2v-lab-task-due"


# scheme://userinfo@ : a URL's userinfo, up to the last "@" before the host (a password may hold
# "@" unencoded; "/", "?", "#", quotes and spaces end the authority).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s@'\"]*(?:@[^/?#\s@'\"]*)*)@")


def mask_credentials(text: str) -> str:
    """Text (a URL, or a message holding URLs) with every URL's password shown as ***: what
    v2v-lab prints of a store, ledger or endpoint URL (`http://member:S3CRET@host` ->
    `http://member:***@host`). A user name alone stays: it is not secret, and says who connects."""
    def masked(m: re.Match[str]) -> str:
        user, sep, _ = m.group("userinfo").partition(":")
        return f"{m.group('scheme')}{user}{':***' if sep else ''}@"

    return _USERINFO.sub(masked, text) if "@" in text else text
