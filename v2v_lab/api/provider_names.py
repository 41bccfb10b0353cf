"""The providers' names, in one place: the CLI's choices, a spec's `provider`, a catalog entry's
`providers` and the adapters in providers.py (a test holds PROVIDERS to these names)."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["PROVIDER_NAMES", "ProviderName", "names_text"]

ProviderName = Literal["runway", "cometapi", "local"]
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)


def names_text(conjunction: str = ",") -> str:
    """'runway, cometapi, local' (or 'runway, cometapi or local' with conjunction='or')."""
    if conjunction == ",":
        return ", ".join(PROVIDER_NAMES)
    return f"{', '.join(PROVIDER_NAMES[:-1])} {conjunction} {PROVIDER_NAMES[-1]}"
