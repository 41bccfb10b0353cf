"""Provider profiles: where each endpoint lives, which key it reads, how fast it may be polled."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .._env import env_text
from .._net import is_loopback_host
from ..errors import InputError

__all__ = ["BASE_URL_ENV", "EMULATOR_KEY_ENV", "PROVIDERS", "Provider", "get_provider"]

# The key a keyed emulator (`v2v-lab emulator --key ...`) wants, for provider local: read from the
# environment, never from a command-line argument (process lists show those).
EMULATOR_KEY_ENV = "V2V_LAB_EMULATOR_KEY"
BASE_URL_ENV = "V2V_LAB_BASE_URL"


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
        return env_text(self.key_env) if self.key_env else None

    def require_key(self, api_key: str | None = None) -> str | None:
        """The key to use (given, else from the environment); a paid provider without one is an
        InputError raised before anything is set up or sent. A key that cannot be an HTTP header
        value (a newline, a non-ASCII character: a paste gone wrong) is refused here, by name and
        never by value, instead of failing deep in httpx."""
        key = api_key or self.key_from_env()
        if not key and self.paid:
            raise InputError("api_key", None, f"a key in {self.key_env} (or api_key=...) for provider {self.name}")
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            where = "api_key" if api_key else (self.key_env or "api_key")
            raise InputError(where, "(not shown)", "a key of printable ASCII characters with no spaces or line "
                             "breaks (check for a stray newline or quote)")
        return key

    def check_base_url(self, url: str, field: str, line: int | None = None) -> str:
        """Where this provider's key may be sent: over https, or plain http to a loopback address
        only (an emulator or a local proxy), for every provider: the emulator's key too, and the
        prompts and videos, are nobody else's to read on the way. Never a URL that is not http(s)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(field, url, "an http(s) URL such as https://api.dev.runwayml.com", line=line)
        # 0.0.0.0 is this machine too: what `v2v-lab emulator --host 0.0.0.0` prints as its address.
        if parts.scheme == "http" and not (is_loopback_host(parts.hostname) or parts.hostname in ("0.0.0.0", "::")):
            raise InputError(field, url, "an https URL (your key and media are sent there; plain http only "
                             "to a loopback address)", line=line)
        return url.rstrip("/")

    def check_spec_base_url(self, url: str, line: int | None) -> None:
        """A base_url written in a spec file, which people share: it may not send the user's key
        anywhere. A key (a paid provider's, or the emulator's in V2V_LAB_EMULATOR_KEY) goes only to
        a host the user named outside the spec: --base-url, or V2V_LAB_BASE_URL."""
        if self.paid or self.key_from_env():
            what = f"provider {self.name}" if self.paid else f"{self.key_env} set"
            raise InputError("base_url", url, f"no base_url in a spec file with {what} (a shared spec must not "
                             "redirect your key): pass --base-url, or remove it from the spec and set "
                             "V2V_LAB_BASE_URL yourself", line=line)
        self.check_base_url(url, "base_url", line)


PROVIDERS: dict[str, Provider] = {
    "runway": Provider(name="runway", base_url="https://api.dev.runwayml.com", key_env="RUNWAYML_API_SECRET",
                       min_poll_interval_s=5.0, has_uploads=True, max_data_uri_bytes=5_000_000, paid=True,
                       https_only=True),
    "cometapi": Provider(name="cometapi", base_url="https://api.cometapi.com/runwayml", key_env="COMETAPI_API_KEY",
                         min_poll_interval_s=5.0, has_uploads=False, max_data_uri_bytes=5_000_000, paid=True,
                         https_only=True),
    "local": Provider(name="local", base_url=None, key_env=EMULATOR_KEY_ENV, min_poll_interval_s=0.05,
                      has_uploads=True, max_data_uri_bytes=16_000_000, paid=False, https_only=False),
}


def get_provider(name: str | None) -> Provider:
    """The named provider; with no name, the first whose key is set, else the local emulator."""
    if name is None:
        keyed = [p for p in PROVIDERS.values() if p.paid and p.key_from_env()]  # runway first, as listed
        return keyed[0] if keyed else PROVIDERS["local"]
    if name not in PROVIDERS:
        raise InputError("provider", name, "runway, cometapi, local")
    return PROVIDERS[name]
