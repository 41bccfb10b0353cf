"""Provider profiles: where each endpoint lives, which key it reads, how fast it may be polled."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None
    key_env: str | None
    # Runway asks for no more than one poll per task every 5 s; the emulator can be polled fast.
    min_poll_interval_s: float
    has_uploads: bool
    max_data_uri_bytes: int
    paid: bool
    https_only: bool

    def key_from_env(self) -> str | None:
        return os.environ.get(self.key_env) if self.key_env else None

    def require_key(self, api_key: str | None = None) -> str | None:
        """The key to use (given, else from the environment); a paid provider without one is an
        InputError raised before anything is set up or sent."""
        key = api_key or self.key_from_env()
        if not key and self.paid:
            from ..errors import InputError

            raise InputError("api_key", None, f"a key in {self.key_env} (or api_key=...) for provider {self.name}")
        return key


PROVIDERS: dict[str, Provider] = {
    "runway": Provider("runway", "https://api.dev.runwayml.com", "RUNWAYML_API_SECRET",
                       5.0, True, 5_000_000, True, True),
    "cometapi": Provider("cometapi", "https://api.cometapi.com/runwayml", "COMETAPI_API_KEY",
                         5.0, False, 5_000_000, True, True),
    "local": Provider("local", None, None, 0.05, True, 16_000_000, False, False),
}


def get_provider(name: str | None) -> Provider:
    """The named provider; with no name, the first whose key is set, else the local emulator."""
    if name is None:
        if os.environ.get("RUNWAYML_API_SECRET"):
            return PROVIDERS["runway"]
        if os.environ.get("COMETAPI_API_KEY"):
            return PROVIDERS["cometapi"]
        return PROVIDERS["local"]
    if name not in PROVIDERS:
        raise InputError("provider", name, "runway, cometapi, local")
    return PROVIDERS[name]
