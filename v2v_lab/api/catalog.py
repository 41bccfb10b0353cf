"""The model catalog: what each video_to_video model accepts, costs and who offers it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._env import env_text
from ..errors import InputError
from .pricing import Price, PriceRules, price_task
from .provider_names import PROVIDER_NAMES, names_text

__all__ = [
    "ITEM_KEYS", "ITEM_MEDIA", "OUTPUT_SUFFIXES", "PROVIDER_NAMES", "RUNWAY_API_VERSION", "Catalog", "FieldSpec", "InputLimits",
    "ModelSpec", "Rule", "build_catalog", "load_catalog", "models_table", "option_names", "seed_range", "wire_name",
]

RUNWAY_API_VERSION = "2024-11-06"
# What each output_format comes back as: ProRes in a QuickTime .mov, a PNG sequence as a .zip of
# frames, seedance2_5's mov as a QuickTime file, a 10-bit HEVC in an .mp4.
OUTPUT_SUFFIXES: dict[str, str] = {"mp4": ".mp4", "mov": ".mov", "prores": ".mov", "png_sequence": ".zip",
                                   "sdr_rec709_10bit": ".mp4"}


class InputLimits(BaseModel):
    # Lengths and sizes are finite and positive: a NaN or a 0 here would wave every input through.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_bytes: int = Field(gt=0)
    max_seconds: float = Field(gt=0)
    min_seconds: float = Field(default=0.0, ge=0)
    max_width: int = Field(gt=0)
    max_height: int = Field(gt=0)
    # Frame rates the model takes, where a source states them (none is first-party today: aleph2's
    # 24-30 fps comes from copies of Runway's guide, so it is left to a user's catalog file to set).
    min_fps: float | None = Field(default=None, gt=0)
    max_fps: float | None = Field(default=None, gt=0)


# What a list field holds, as the wire writes each item (the SDK's TypedDict keys).
ITEM_KEYS: dict[str, tuple[str, ...]] = {
    "image": ("uri",), "image_typed": ("type", "uri"), "image_positioned": ("position", "uri"),
    "video": ("type", "uri"), "audio": ("type", "uri"), "keyframe": ("at", "range", "seconds", "uri"),
}
# The kind of media each item names (a local file is probed as one and uploaded).
ITEM_MEDIA: dict[str, str] = {"image": "image", "image_typed": "image", "image_positioned": "image",
                              "video": "video", "audio": "audio", "keyframe": "image"}


def wire_name(name: str) -> str:
    """A field's wire name: the SDK's snake_case name in camelCase (target_aspect_ratio -> targetAspectRatio)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class FieldSpec(BaseModel):
    """One request field of one model, as the SDK types it. `name` is the SDK's snake_case name."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    type: Literal["string", "integer", "boolean", "list", "object"] = "string"
    enum: tuple[str | int, ...] = ()
    deprecated: tuple[str, ...] = ()    # spellings the server still takes but no longer offers
    minimum: int | None = None
    maximum: int | None = None
    auto: bool = False                  # an integer that also takes "auto"
    items: Literal["image", "image_typed", "image_positioned", "video", "audio", "keyframe"] | None = None
    max_items: int | None = Field(default=None, gt=0)
    keys: tuple[str, ...] = ()          # an object's wire keys
    default: Any = None
    required: bool = False

    @property
    def wire(self) -> str:
        return wire_name(self.name)

    @property
    def scalar(self) -> bool:
        """A string, integer or boolean: a list of them in a spec is an axis."""
        return self.type in ("string", "integer", "boolean")

    def takes(self) -> str:
        """What the field takes, in words for an error line."""
        if self.enum:
            return "one of " + ", ".join(str(v) for v in self.enum)
        if self.type == "integer":
            low = "" if self.minimum is None else f" from {self.minimum}"
            high = "" if self.maximum is None else f" to {self.maximum}"
            return f"an integer{low}{high}" + (" or auto" if self.auto else "")
        if self.type == "boolean":
            return "true or false"
        if self.type == "list":
            what = ITEM_MEDIA.get(self.items or "", "item")
            most = f"at most {self.max_items} " if self.max_items else ""
            return f"a list of {most}{what}s" + (" ({uri, seconds | at})" if self.items == "keyframe" else "")
        if self.type == "object":
            return "a mapping of " + ", ".join(self.keys)
        return "a non-empty text"

    def accepts(self, value: Any) -> bool:
        """Whether a wire value has this field's type, enum and range (list items are checked
        for form when the request is built)."""
        if self.enum or self.deprecated:
            return value in self.enum or value in self.deprecated
        if self.type == "integer":
            if self.auto and value == "auto":
                return True
            if isinstance(value, bool) or not isinstance(value, int):
                return False
            return ((self.minimum is None or value >= self.minimum)
                    and (self.maximum is None or value <= self.maximum))
        if self.type == "boolean":
            return isinstance(value, bool)
        if self.type == "list":
            return isinstance(value, (list, tuple)) and bool(value) and (
                self.max_items is None or len(value) <= self.max_items)
        if self.type == "object":
            return isinstance(value, dict)
        return isinstance(value, str) and bool(value.strip())


class Rule(BaseModel):
    """A rule between fields, as the SDK's docs state it: when the fields in `when` hold those
    values ("*": any value given), the fields in `forbid` may not be given and those in `require`
    must hold the value named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, Any]
    forbid: tuple[str, ...] = ()
    require: dict[str, Any] = Field(default_factory=dict)
    why: str = ""

    def applies(self, values: Mapping[str, Any]) -> bool:
        return all(k in values and (v == "*" or values[k] == v) for k, v in self.when.items())

    def broken_by(self, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str | None:
        """The field the given values break this rule on, or None (a field not given holds its
        default for `require`, and is absent for `forbid`)."""
        if not self.applies(values):
            return None
        for name in self.forbid:
            if name in values:
                return name
        for name, want in self.require.items():
            if values.get(name, defaults.get(name)) != want:
                return name
        return None


# Keys of the catalog's format before per-model fields: a user's catalog file may still use them.
_LEGACY_KEYS = ("ratios", "target_aspect_ratios", "max_references", "max_keyframes", "seed_min", "seed_max",
                "ratio_ignored_since")


def _from_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """An entry written in the older format (ratios:, max_references:, seed_min: ...) as fields."""
    if not any(k in data for k in _LEGACY_KEYS):
        return data
    data = dict(data)
    fields = {k: dict(v) for k, v in (data.get("fields") or {}).items()}
    ratios = data.pop("ratios", None)
    if ratios:
        fields["ratio"] = {**fields.get("ratio", {}), "enum": list(ratios)}
    aspects = data.pop("target_aspect_ratios", None)
    if aspects:
        fields["target_aspect_ratio"] = {**fields.get("target_aspect_ratio", {}), "enum": list(aspects)}
    for key, name, items in (("max_references", "references", "image_typed"), ("max_keyframes", "keyframes", "keyframe")):
        _list_from_legacy(fields, data.pop(key, None), name, items)
    for key, bound in (("seed_min", "minimum"), ("seed_max", "maximum")):
        if key in data:
            fields["seed"] = {"type": "integer", **fields.get("seed", {}), bound: data.pop(key)}
    if "ratio_ignored_since" in data:
        since = data.pop("ratio_ignored_since")
        data["ratio_ignored"] = f"since {since}: the input video decides the output size" if since else None
    data["fields"] = fields
    return data


def _list_from_legacy(fields: dict[str, Any], most: int | None, name: str, items: str) -> None:
    """max_references: N / max_keyframes: N as a list field (0: the model takes none)."""
    if most is None:
        return
    if most:
        fields[name] = {"type": "list", "items": items, **fields.get(name, {}), "max_items": most}
    else:
        fields.pop(name, None)


class ModelSpec(BaseModel):
    """One catalog entry: everything a request to this model may hold, its limits and its price.
    The one home of a model's request shape: validation, the request body, the emulator's checks,
    the spec's per-model options and the run tables all read it."""

    # A price or a length that is NaN, infinite, zero or negative would price cells at 0 (or NaN)
    # and wave them past every budget: refused by name when the catalog is read.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    endpoint: str = "video_to_video"
    video_field: str = "videoUri"
    prompt_required: bool = True
    prompt_max_utf16: int = Field(default=1000, gt=0)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    ratio_ignored: str | None = None
    retired: str | None = None
    input: InputLimits
    credits_per_second: float = Field(gt=0)
    credits_per_second_confirmed: bool = True
    price_rules: PriceRules = Field(default_factory=PriceRules)  # tiers, surcharges, minimum (api/pricing.py)
    max_output_seconds: float = Field(gt=0)
    output_seconds: Literal["input", "duration"] = "input"
    output_fps: float = Field(default=24, gt=0)
    providers: tuple[str, ...]

    @model_validator(mode="before")
    @classmethod
    def _fields_named(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = _from_legacy(data)
        raw = data.get("fields") or {}
        if isinstance(raw, dict):
            data = {**data, "fields": {k: ({"name": k, **v} if isinstance(v, dict) else v) for k, v in raw.items()}}
        return data

    # -- what older code reads, derived from the fields -----------------------------------------
    def _enum(self, name: str) -> tuple[str, ...]:
        f = self.fields.get(name)
        return tuple(str(v) for v in f.enum) if f else ()

    def _most_items(self, name: str) -> int:
        f = self.fields.get(name)
        return (f.max_items or 1) if f else 0

    @property
    def ratios(self) -> tuple[str, ...]:
        return self._enum("ratio")

    @property
    def takes_ratio(self) -> bool:
        return "ratio" in self.fields

    @property
    def target_aspect_ratios(self) -> tuple[str, ...]:
        return self._enum("target_aspect_ratio")

    @property
    def max_references(self) -> int:
        return self._most_items("references")

    @property
    def max_keyframes(self) -> int:
        return self._most_items("keyframes")

    @property
    def takes_seed(self) -> bool:
        return "seed" in self.fields

    @property
    def seed_min(self) -> int:
        f = self.fields.get("seed")
        return f.minimum if f and f.minimum is not None else 0

    @property
    def seed_max(self) -> int:
        f = self.fields.get("seed")
        return f.maximum if f and f.maximum is not None else 2**32 - 1  # Runway's unsigned 32-bit seed

    @property
    def wire_fields(self) -> dict[str, str]:
        """Every wire name a body to this model may hold, to its field name."""
        names = {"model": "model", "promptText": "prompt_text", self.video_field: "video"}
        return {**names, **{f.wire: n for n, f in self.fields.items()}}

    def field(self, name: str, label: str) -> FieldSpec:
        """The field by its snake_case name; an unknown one is refused naming what the model takes."""
        if name not in self.fields:
            raise InputError(label, name, f"a field {self.name} takes: {', '.join(sorted(self.fields)) or 'none'}")
        return self.fields[name]

    def broken_rule(self, values: Mapping[str, Any]) -> tuple[Rule, str] | None:
        """The first rule these option values break, and the field they break it on."""
        defaults = {n: f.default for n, f in self.fields.items() if f.default is not None}
        for rule in self.rules:
            name = rule.broken_by(values, defaults)
            if name is not None:
                return rule, name
        return None

    def expected_output_seconds(self, input_seconds: float | None,
                                options: Mapping[str, Any] | None = None) -> float:
        """Output length: what `duration` asks ("auto" or absent: the input's length), else the
        input's, capped by what the model renders."""
        longest = self.max_output_seconds if input_seconds is None else min(self.max_output_seconds, input_seconds)
        if self.output_seconds == "duration" and "duration" in self.fields:
            asked = (options or {}).get("duration", self.fields["duration"].default)
            if isinstance(asked, int) and not isinstance(asked, bool):
                return float(min(asked, self.max_output_seconds))
        return longest

    def output_suffix(self, options: Mapping[str, Any] | None = None) -> str:
        """The file suffix of what a task with these options returns (output_format decides)."""
        fmt = (options or {}).get("output_format")
        if fmt is None and "output_format" in self.fields:
            fmt = self.fields["output_format"].default
        return OUTPUT_SUFFIXES.get(str(fmt), ".mp4") if fmt is not None else ".mp4"

    def billed_seconds(self, input_seconds: float | None, options: Mapping[str, Any] | None = None) -> float:
        """The seconds a task is billed for up front: `duration: "auto"` is reserved at the model's
        maximum (the server refunds the unused part afterwards), anything else as it renders."""
        if self.output_seconds == "duration" and (options or {}).get("duration") == "auto":
            return self.max_output_seconds
        return self.expected_output_seconds(input_seconds, options)

    def price(self, input_seconds: float | None, options: Mapping[str, Any] | None = None, *,
              ratio: str | None = None, input_size: tuple[int, int] | None = None, references: int = 0,
              seconds: float | None = None) -> Price:
        """The estimate for one task (the one price function: api/pricing.py); `ratio` and the
        number of reference images count as the request's own fields do (a `references` option is
        counted too). `seconds`: the length billed when it is known (a finished task's output, as
        the server bills it after refunding the unused part of `duration: "auto"`)."""
        # What the server assumes for a field not sent decides the price as much as what is sent.
        asked = {**{n: f.default for n, f in self.fields.items() if f.default is not None}, **(options or {})}
        if ratio is not None:
            asked.setdefault("ratio", ratio)
        listed = asked.get("references")
        references = references or (len(listed) if isinstance(listed, (list, tuple)) else 0)
        billed = self.billed_seconds(input_seconds, asked) if seconds is None else seconds
        return price_task(base_per_second=self.credits_per_second, confirmed=self.credits_per_second_confirmed,
                          rules=self.price_rules, seconds=billed, options=asked, input_size=input_size,
                          references=references)

    def estimate_credits(self, input_seconds: float | None, options: Mapping[str, Any] | None = None, *,
                         ratio: str | None = None, input_size: tuple[int, int] | None = None,
                         references: int = 0, seconds: float | None = None) -> float:
        return self.price(input_seconds, options, ratio=ratio, input_size=input_size, references=references,
                          seconds=seconds).credits

    def differences_from_sdk(self, sdk_model: Any) -> list[str]:
        """One line per way this entry differs from what the official SDK types for the model
        (tools/sdk_fields.py reads the SDK; tests/test_catalog_sdk.py asks for none)."""
        out: list[str] = []
        mine = {n: f for n, f in self.fields.items()}
        theirs = {n: f for n, f in sdk_model.fields.items() if n not in ("prompt_text",) and f.wire != self.video_field}
        for n in sorted(set(theirs) - set(mine)):
            out.append(f"{self.name}.{n}: in the SDK ({theirs[n].kind}), not in the catalog")
        for n in sorted(set(mine) - set(theirs)):
            out.append(f"{self.name}.{n}: in the catalog, not in the SDK")
        if self.video_field not in {f.wire for f in sdk_model.fields.values() if f.required}:
            out.append(f"{self.name}: the source video goes in {self.video_field}, the SDK has no such required field")
        prompt = sdk_model.fields.get("prompt_text")
        if prompt is None or prompt.required != self.prompt_required:
            out.append(f"{self.name}.prompt_text: required is {self.prompt_required} here, "
                       f"{'absent' if prompt is None else prompt.required} in the SDK")
        for n in sorted(set(mine) & set(theirs)):
            out += _field_differences(self.name, mine[n], theirs[n])
        return out


def _field_differences(model: str, mine: FieldSpec, theirs: Any) -> list[str]:
    out = []
    where = f"{model}.{mine.name}"
    if mine.wire != theirs.wire:
        out.append(f"{where}: wire name {mine.wire} here, {theirs.wire} in the SDK")
    kind = "string" if mine.enum and all(isinstance(v, str) for v in mine.enum) else mine.type
    if kind != theirs.kind:
        out.append(f"{where}: {kind} here, {theirs.kind} in the SDK")
    if mine.required != theirs.required:
        out.append(f"{where}: required is {mine.required} here, {theirs.required} in the SDK")
    if set(mine.enum) | set(mine.deprecated) != set(theirs.enum):
        added = sorted(map(str, set(theirs.enum) - set(mine.enum) - set(mine.deprecated)))
        gone = sorted(map(str, (set(mine.enum) | set(mine.deprecated)) - set(theirs.enum)))
        out.append(f"{where}: enum differs (the SDK adds {added or 'none'}, drops {gone or 'none'})")
    if mine.auto != theirs.auto:
        out.append(f"{where}: takes 'auto' is {mine.auto} here, {theirs.auto} in the SDK")
    keys = ITEM_KEYS.get(mine.items or "", ()) if mine.type == "list" else mine.keys
    if sorted(keys) != sorted(theirs.item_keys):
        out.append(f"{where}: keys {sorted(keys)} here, {sorted(theirs.item_keys)} in the SDK")
    return out


class Catalog(Mapping[str, ModelSpec]):
    """Read-only mapping of model name to ModelSpec, with errors that say what exists."""

    def __init__(self, models: dict[str, ModelSpec]):
        self._models = dict(models)

    def __getitem__(self, name: str) -> ModelSpec:
        return self._models[name]

    def __iter__(self):
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def get_model(self, name: str, field: str = "model") -> ModelSpec:
        if name not in self._models:
            raise InputError(field, name, "one of " + ", ".join(sorted(self._models)))
        return self._models[name]

    def models_for(self, provider: str) -> list[str]:
        return [n for n, m in self._models.items() if provider in m.providers]


def _read_yaml(text: str, origin: str, setting: str = "catalog") -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(setting, origin, f"a catalog file of valid YAML ({exc.__class__.__name__})") from None
    except RecursionError:  # PyYAML composes nested lists by recursion
        raise InputError(setting, origin, "a catalog file of valid YAML a few levels deep (this one nests "
                         "thousands deep)") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise InputError(setting, origin, "a catalog file: a mapping with a top-level 'models:' key")
    return models


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_catalog(raw: dict[str, dict[str, Any]], origin: str = "catalog") -> Catalog:
    """origin: where the entries come from, named in an error (the user's files: the built-in one is valid)."""
    models: dict[str, ModelSpec] = {}
    for name, fields in raw.items():
        try:
            if fields is not None and not isinstance(fields, dict):
                raise InputError(f"models.{name}", fields, f"a mapping of the model's fields (in {origin})")
            models[name] = ModelSpec(name=name, **(fields or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise InputError(f"models.{name}.{loc}", err.get("input"), f"{err['msg']} (in {origin})") from None
        unknown = set(models[name].providers) - set(PROVIDER_NAMES)
        if unknown:
            raise InputError(f"models.{name}.providers", sorted(unknown), names_text())
    return Catalog(models)


@lru_cache(maxsize=8)
def _load_cached(extra: tuple[tuple[str, str], ...]) -> Catalog:
    """extra: (the setting that named it, path) of each user file, merged in order."""
    raw = _read_yaml(resources.files("v2v_lab.api").joinpath("models.yaml").read_text(), "models.yaml")
    for setting, path in extra:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise InputError(setting, path, f"an existing, readable YAML catalog file ({why})") from None
        for name, fields in _read_yaml(text, path, setting).items():
            if fields is not None and not isinstance(fields, dict):
                raise InputError(f"models.{name}", fields, f"a mapping of the model's fields (in {path})")
            raw[name] = _merge(raw.get(name, {}), fields or {})
    return build_catalog(raw, ", ".join(path for _, path in extra) or "models.yaml")


def load_prices(path: str | os.PathLike[str]) -> Catalog:
    """The built-in catalog with one file merged (`v2v-lab emulator --prices FILE`): an endpoint
    charging other prices than the client's catalog (V2V_LAB_CATALOG is the client's, left out)."""
    return _load_cached((("--prices", os.fspath(path)),))


def seed_range() -> tuple[int, int]:
    """The seeds some model of the catalog takes: what a spec or the CLI may ask for before a model
    is chosen (each model's own range is checked again when its request is built)."""
    models = load_catalog().values()
    return min(m.seed_min for m in models), max(m.seed_max for m in models)


def option_names(catalog: Catalog | None = None) -> tuple[str, ...]:
    """Every per-model field some model of the catalog takes, beyond the ones a sweep names on its
    own (seed, ratio, references, content_moderation): the run tables' option columns."""
    catalog = catalog or load_catalog()
    own = {"seed", "ratio", "references", "content_moderation"}
    return tuple(sorted({n for m in catalog.values() for n in m.fields} - own))


def models_table(catalog: Catalog | None = None) -> list[str]:
    """The catalog as the README's table of models (a test holds the README to it)."""
    out = ["| model | source field | seed | its own fields | credits/s | retired on Runway's API |",
           "|---|---|---|---|---|---|"]
    for name, m in (catalog or load_catalog()).items():
        own = ", ".join(f"`{f}`" for f in sorted(m.fields) if f != "seed") or "none"
        price = m.price_rules.describe(m.credits_per_second) + ("" if m.credits_per_second_confirmed else " (unconfirmed)")
        out.append(f"| `{name}` | `{m.video_field}` | {'yes' if m.takes_seed else 'no'} | {own} | {price} | "
                   f"{'yes' if m.retired else 'no'} |")
    return out


def load_catalog(*extra: str | os.PathLike[str]) -> Catalog:
    """The built-in catalog, merged with V2V_LAB_CATALOG and any files given (later wins)."""
    paths = [("V2V_LAB_CATALOG", user)] if (user := env_text("V2V_LAB_CATALOG")) else []
    paths += [("catalog", os.fspath(p)) for p in extra]
    return _load_cached(tuple(paths))
