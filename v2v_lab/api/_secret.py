"""Keeping keys out of reprs, messages and anything written."""

from __future__ import annotations

import re

_KEY_SHAPE = re.compile(r"key_[0-9a-fA-F]{16,}")


class Secret:
    """A key that never shows itself: repr, str and format all give '***'."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Remove the given keys, and anything shaped like a Runway key, from text."""
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value and len(value) >= 6:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)(bearer\s+)[^\s\"',]+", r"\1***", text)
    return _KEY_SHAPE.sub("key_***", text)
