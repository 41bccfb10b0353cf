"""Keeping keys out of reprs, messages and anything written."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

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


def redact_received(value: Any, *secrets: Secret | str | None) -> Any:
    """A parsed answer (JSON: dicts, lists, strings) with the given keys removed from every string in
    it, as sent, and percent-encoded as a URL would carry them: an endpoint that echoes the caller's
    key (in a task id, a failure text, an output URL) must not get it into the journal, MLflow or a
    message. Only the exact keys: an answer's own text is otherwise kept as it came."""
    values = {v for s in secrets if (v := s.reveal() if isinstance(s, Secret) else s) and len(v) >= 6}
    if not values:
        return value
    forms = sorted(values | {quote(v, safe="") for v in values}, key=len, reverse=True)

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            for form in forms:
                if form in item:
                    item = item.replace(form, "***")
            return item
        if isinstance(item, dict):
            return {clean(k): clean(v) for k, v in item.items()}
        if isinstance(item, list):
            return [clean(v) for v in item]
        return item

    return clean(value)
