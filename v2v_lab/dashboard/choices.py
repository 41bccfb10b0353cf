"""A filter's list of a column's values that keeps every value reachable at 100,000 runs.

A list of 100,000 values takes seconds to build and no one scrolls it, so the list shows at most
FILTER_CHOICES of them; past that a box under the list finds values by the text typed in it (a
seed, a part of a prompt), and the list shows the values that match. Values already chosen stay
listed and chosen whatever is typed, so narrowing the list never changes what the filter keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

__all__ = ["FILTER_CHOICES", "ChoiceFilter"]

FILTER_CHOICES = 1000


class ChoiceFilter:
    """`select` (the list a person picks from) and `find` (shown only past FILTER_CHOICES values)."""

    def __init__(self, description: str, rows: int = 3):
        self.select = w.SelectMultiple(description=description, rows=rows)
        self.find = w.Text(placeholder=f"find a {description}", layout=w.Layout(display="none", width="auto"))
        self.find.observe(lambda _: self._narrow(), "value")
        self.box = w.VBox([self.select, self.find])
        self._values: list[str] = []
        self._lowered: list[str] = []
        self._narrowing = False

    @property
    def value(self) -> tuple[str, ...]:
        return tuple(self.select.value)

    def observe(self, callback: Callable[[Any], None]) -> None:
        """callback(change) when the chosen values change (not while the list is being narrowed)."""
        self.select.observe(lambda change: None if self._narrowing else callback(change), "value")

    def fill(self, values: Iterable[Any]) -> None:
        """The column's values (in order), nothing chosen, nothing typed."""
        self._values = [str(v) for v in values]
        self._lowered = [v.lower() for v in self._values]
        many = len(self._values) > FILTER_CHOICES
        self.find.layout.display = None if many else "none"
        self.select.value = ()
        if self.find.value:
            self.find.value = ""  # narrows, to the first values
        else:
            self._narrow()

    def _narrow(self) -> None:
        needle = self.find.value.strip().lower()
        chosen = set(self.select.value)
        shown, matched = [], 0
        for value, lowered in zip(self._values, self._lowered, strict=True):
            if value in chosen:
                shown.append(value)
            elif matched < FILTER_CHOICES and needle in lowered:
                shown.append(value)
                matched += 1
        total = len(self._values)
        self.select.tooltip = (None if total <= FILTER_CHOICES else
                               f"{matched} of {total} values listed; type in the box below to find others")
        kept = tuple(v for v in shown if v in chosen)
        self._narrowing = True  # the options' change clears the value for a moment: no refresh for that
        try:
            self.select.options = shown
            self.select.value = kept
        finally:
            self._narrowing = False
