"""Values into HTML: the one place a dashboard or page turns a value it shows into markup-safe text."""

from __future__ import annotations

import html

__all__ = ["esc"]


def esc(value: object) -> str:
    """A value as HTML text, quotes included (it may sit in an attribute). Prompts, model and group
    names, statuses and errors come from whoever wrote the spec, the store or the page's address:
    shown literally, never run as markup."""
    return html.escape(str(value), quote=True)
