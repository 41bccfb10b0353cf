"""Small network facts shared by the client side and the emulator (which imports no client code)."""

from __future__ import annotations

import ipaddress


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
