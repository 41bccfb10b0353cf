"""Each models: entry as its own axes: the fields it sets checked against the catalog (one line
naming the model, the field and what it takes), expanded into variants, each with its ratio axis,
and a plan line for every spec value a model cannot take (nothing is left out silently)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api.catalog import ITEM_KEYS, ITEM_MEDIA, FieldSpec, ModelSpec
from ..errors import InputError
from .spec import ModelEntry, SweepSpec

__all__ = ["SPEC_OWN_FIELDS", "Variant", "model_variants", "variant_count"]

# Fields a spec sets for every model with keys of its own: never per model.
SPEC_OWN_FIELDS = {"seed": "seeds", "content_moderation": "content_moderation"}


@dataclass(frozen=True)
class Variant:
    """One combination of a models: entry's own values: the options its cells set (defaults left
    out), the ratios its cells take, and whether the spec's references apply to it."""

    model: str
    options: dict[str, Any]
    ratios: tuple[str | None, ...]
    global_ratios: bool        # its ratios are the spec's ratios: (values it cannot take are left out)
    global_references: bool


def variant_count(entry: ModelEntry) -> int:
    """At most how many variants an entry makes, none of them built (for the plan's size check,
    before the catalog says which fields are lists: a media list counts as an axis of its items)."""
    n = 1
    for value in entry.fields.values():
        n *= max(1, len(value)) if isinstance(value, list) else 1
    return n


def model_variants(spec: SweepSpec, specs: dict[str, ModelSpec], resolve: Callable[[str], str]
                   ) -> tuple[list[Variant], list[str]]:
    """The variants of every entry whose model runs here, and the plan's lines about them.
    resolve: a spec-relative path to the path the request reads."""
    variants: list[Variant] = []
    warnings: list[str] = []
    for entry in spec.model_entries():
        mspec = specs.get(entry.name)
        if mspec is None:
            continue  # not offered by this provider: said once by the plan
        axes = {name: _axis(spec, entry, mspec, name, value, resolve) for name, value in entry.fields.items()}
        names = list(axes)
        for combo in itertools.product(*(axes[n] for n in names)):
            options = {n: v for n, v in zip(names, combo, strict=True) if v is not None}
            _check_rules(spec, entry, mspec, options)
            variants.append(_variant(spec, mspec, options, warnings))
    return variants, list(dict.fromkeys(warnings))


def _variant(spec: SweepSpec, mspec: ModelSpec, options: dict[str, Any], warnings: list[str]) -> Variant:
    own_ratio = options.pop("ratio", None)
    refs = "references" not in options
    if not refs and any(r is not None for r in spec.references):
        warnings.append(f"{mspec.name}: references: do not apply where its entry sets references (its own list "
                        "is sent)")
    if own_ratio is not None:
        return Variant(mspec.name, options, (own_ratio,), False, refs)
    asked = [r for r in spec.ratios if r is not None]
    if not asked:
        return Variant(mspec.name, options, (None,), False, refs)
    if not mspec.ratios:  # no ratio field, or an untyped one the output never follows
        why = ("its ratio field is untyped and the endpoint ignores it" if mspec.takes_ratio
               else "it has no ratio field")
        warnings.append(f"{mspec.name}: takes no ratio from ratios: ({why}: its output follows its input); "
                        "its cells are planned without a ratio")
        return Variant(mspec.name, options, (None,), False, refs)
    broken = mspec.broken_rule({**options, "ratio": asked[0]})
    if broken is not None and broken[1] == "ratio":
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        warnings.append(f"{mspec.name} {shown}: takes no ratio ({broken[0].why}); its cells are planned without one")
        return Variant(mspec.name, options, (None,), False, refs)
    return Variant(mspec.name, options, tuple(spec.ratios), True, refs)


def _where(entry: ModelEntry, name: str | None = None) -> tuple[str, tuple[str | int, ...]]:
    loc: tuple[str | int, ...] = ("models", entry.index, entry.name) + ((name,) if name else ())
    return f"models[{entry.index}].{entry.name}" + (f".{name}" if name else ""), loc


def _axis(spec: SweepSpec, entry: ModelEntry, mspec: ModelSpec, name: str, value: Any,
          resolve: Callable[[str], str]) -> list[Any]:
    """The values one field of an entry takes, each checked and canonical (None: the default)."""
    label, loc = _where(entry, name)
    line = spec.line_at(*loc)
    if name in SPEC_OWN_FIELDS:
        raise InputError(label, value, f"the spec's own {SPEC_OWN_FIELDS[name]}: key (not one per model)", line=line)
    if name not in mspec.fields:
        where, wloc = _where(entry)
        raise InputError(where, name, f"a field {mspec.name} takes: {', '.join(sorted(mspec.fields)) or 'none'}",
                         line=spec.line_at(*wloc))
    f = mspec.fields[name]
    if f.type == "list":  # a list is one value; a list of lists, an axis of them
        axis = value if isinstance(value, list) and value and all(isinstance(v, list) for v in value) else [value]
    else:
        axis = value if isinstance(value, list) else [value]
    if not axis:
        raise InputError(label, value, f"{f.takes()} for {mspec.name}, or a non-empty list of them", line=line)
    return [_one_value(f, mspec, v, label, line, resolve) for v in axis]


def _one_value(f: FieldSpec, mspec: ModelSpec, value: Any, label: str, line: int | None,
               resolve: Callable[[str], str]) -> Any:
    value = _canonical_spelling(f, value)
    if not f.accepts(value):
        # YAML 1.1 reads an unquoted 2:1 as the base-60 number 121: say so, or the value named is a mystery.
        hint = " (in quotes: YAML reads an unquoted 2:1 as a number)" if f.type == "string" and isinstance(
            value, int) and not isinstance(value, bool) else ""
        raise InputError(label, value, f"{f.takes()} for {mspec.name}{hint}", line=line)
    if f.type == "list":
        value = [_item(f, mspec, item, f"{label}[{k}]", line, resolve) for k, item in enumerate(value)]
    # A ratio named is the cell's ratio, default or not: it replaces the spec's ratios for this entry.
    return None if f.default is not None and value == f.default and f.name != "ratio" else value


def _canonical_spelling(f: FieldSpec, value: Any) -> Any:
    """A deprecated spelling (hailuo3's 768P) as the value it stands for: one cell, one key."""
    if isinstance(value, str) and value in f.deprecated:
        for v in f.enum:
            if str(v).lower() == value.lower():
                return v
    return value


def _item(f: FieldSpec, mspec: ModelSpec, item: Any, label: str, line: int | None,
          resolve: Callable[[str], str]) -> Any:
    """One item of a media list: a path or URI (its wire form is built when the request is), or a
    mapping of the SDK's item keys with a uri (keyframes: {uri, seconds | at})."""
    keys = ITEM_KEYS.get(f.items or "", ("uri",))
    media = ITEM_MEDIA.get(f.items or "", "image")
    if f.items == "keyframe":
        if (isinstance(item, dict) and isinstance(item.get("uri"), str) and set(item) <= set(keys)
                and ("seconds" in item) != ("at" in item)):
            return {**item, "uri": resolve(item["uri"])}
        raise InputError(label, item, f"{{uri, seconds}} or {{uri, at}} of an image for {mspec.name}", line=line)
    if isinstance(item, str) and item.strip():
        return resolve(item)
    if f.name != "references" and isinstance(item, dict) and isinstance(item.get("uri"), str) and set(item) <= set(keys):
        return {**item, "uri": resolve(item["uri"])}
    raise InputError(label, item, f"a path or URI of {'an' if media == 'image' else 'a'} {media} for {mspec.name}",
                     line=line)


def _check_rules(spec: SweepSpec, entry: ModelEntry, mspec: ModelSpec, options: dict[str, Any]) -> None:
    """Values an entry sets together must keep the model's rules (the spec's ratios are fitted
    to them afterwards: a rule that forbids a ratio plans those cells without one)."""
    broken = mspec.broken_rule(options)
    if broken is None:
        return
    rule, name = broken
    label, loc = _where(entry, name)
    raise InputError(label, options.get(name), f"{rule.why or 'a value its rules allow'} for {mspec.name}",
                     line=spec.line_at(*loc) or spec.line_at(*_where(entry)[1]))
