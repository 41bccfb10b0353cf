"""The sweep spec: a YAML file validated with pydantic; errors name the key and its line."""

from __future__ import annotations

import glob
import itertools
import math
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..api.catalog import seed_range
from ..api.provider_names import ProviderName
from ..errors import InputError
from ..metrics._guard import DEFAULT_TIME_LIMIT_S
from ..scoring_config import DEFAULT_SCORING, ScoringConfig
from .spec_yaml import expanded_size, loc_text, node_line, too_deep

__all__ = [
    "MAX_SPEC_BYTES", "MAX_SPEC_DEPTH", "MAX_SPEC_NODES", "Budget", "EmulatorOptions", "ModelEntry", "PromptFile", "PromptTemplate", "Sample",
    "SEARCH_AXES", "Scoring", "Search", "SeedRandom", "SeedRange", "SweepSpec", "load_spec", "parse_spec",
]

MAX_SPEC_BYTES = 1_000_000
# A spec is a few hundred nodes; YAML aliases can make a 500-byte file expand to billions.
MAX_SPEC_NODES = 200_000
# A spec nests a few levels (a template's vars are three); no key needs more than this.
MAX_SPEC_DEPTH = 32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptFile(_Strict):
    file: str


class PromptTemplate(_Strict):
    template: str
    vars: dict[str, list[str]]

    @model_validator(mode="after")
    def _vars_match(self) -> PromptTemplate:
        try:
            fields = [(f, conv, fmt) for _, f, fmt, conv in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:
            raise ValueError(f"a template with {{name}} fields ({exc})") from None
        for name, conv, fmt in fields:
            if not name.isidentifier():
                raise ValueError(f"template fields named like {{subject}} (got {{{name}}})")
            if conv not in (None, "r", "s", "a") or fmt:
                raise ValueError(f"plain {{name}} fields, without conversions or formats (got {{{name}!{conv}}})"
                                 if conv else f"plain {{name}} fields, without formats (got {{{name}:{fmt}}})")
        names = {name for name, _, _ in fields}
        missing = names - set(self.vars)
        if missing:
            raise ValueError(f"template variable(s) {sorted(missing)} have no list under vars")
        unused = set(self.vars) - names
        if unused:
            raise ValueError(f"vars {sorted(unused)} do not appear in the template")
        return self

    def count(self) -> int:
        """How many prompts expand() makes, without making them (a few lists can multiply to 10^12)."""
        return math.prod(len(values) for values in self.vars.values())

    def expand(self) -> list[str]:
        keys = sorted(self.vars)
        return [self.template.format(**dict(zip(keys, combo, strict=True)))
                for combo in itertools.product(*(self.vars[k] for k in keys))]


class SeedRange(_Strict):
    count: int = Field(ge=1, le=100_000)
    start: int = 0

    @field_validator("start")
    @classmethod
    def _a_seed(cls, start: int) -> int:
        # The catalog's range, read when a spec is checked, not when this module is imported: a
        # broken user catalog is then one line from the command, not a traceback on `import v2v_lab`.
        low, high = seed_range()
        if not low <= start <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return start


class SeedRandom(_Strict):
    random: int = Field(ge=1, le=100_000)


class Sample(_Strict):
    k: int = Field(ge=1)
    seed: int = 0


class Budget(_Strict):
    max_credits: float | None = Field(default=None, ge=0)


class Scoring(_Strict):
    enabled: bool = True
    metrics: list[str] | None = None
    # Defaults and ranges: v2v_lab.scoring_config, which score(), rescore and the CLI read too.
    frames: int = DEFAULT_SCORING.frames
    size: int = DEFAULT_SCORING.size
    crop: str = DEFAULT_SCORING.crop
    # How long each metric's code may run on one output; past it the metric is abandoned and its
    # failure recorded on the run (a plugin that hangs never hangs the sweep).
    metric_time_limit_s: float = Field(default=DEFAULT_TIME_LIMIT_S, gt=0, le=86400, allow_inf_nan=False)

    @field_validator("frames", "size")
    @classmethod
    def _in_range(cls, value: int, info: ValidationInfo) -> int:
        bound = ScoringConfig.FRAMES if info.field_name == "frames" else ScoringConfig.SIZE
        if not bound.holds(value):
            raise ValueError(bound.allowed)
        return value

    @field_validator("crop")
    @classmethod
    def _known_crop(cls, value: str) -> str:
        if value not in ScoringConfig.CROPS:
            raise ValueError(", ".join(ScoringConfig.CROPS))
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str] | None) -> list[str] | None:
        from ..metrics import REGISTRY  # the registry fills as the metric modules import

        for name in names or []:
            if name not in REGISTRY:
                raise ValueError(f"a metric name: one of {', '.join(sorted(REGISTRY))} (got {name!r})")
        return names


# The axes a search can ask the best value of, by the name a cell's field has; a model's own field
# that a models: entry gives as a list (duration: [5, 10]) is one too, by its name.
SEARCH_AXES = ("prompt", "model", "ratio", "video", "reference")


class Search(_Strict):
    """search: {best: AXIS, metric: M, confidence: C}: the best value of one axis, found in rounds
    on shared seeds instead of the whole grid (sweeps/search.py says how, and why)."""

    best: str = Field(min_length=1)
    metric: str
    confidence: float = 0.95

    @field_validator("confidence")
    @classmethod
    def _a_probability(cls, value: float) -> float:
        if not 0.5 < value < 1:
            raise ValueError("a number between 0.5 and 1, both excluded (0.9, 0.95)")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        from ..metrics import REGISTRY  # the registry fills as the metric modules import

        if name not in REGISTRY:
            raise ValueError(f"a metric name: one of {', '.join(sorted(REGISTRY))} (got {name!r})")
        return name


class EmulatorOptions(_Strict):
    """Options for the emulator a local sweep starts (ignored with a base_url)."""

    render_scale: float = Field(default=1.0, gt=0, le=1.0)
    run_s: float = Field(default=0.0, ge=0)
    queue_s: float = Field(default=0.05, ge=0)


@dataclass(frozen=True)
class ModelEntry:
    """One models: entry: its index in the list, the model's name, and the fields it sets by
    their snake_case names (each a value, or for an axis a list of values)."""

    index: int
    name: str
    fields: dict[str, Any]


def _default_models() -> list[Any]:
    return ["gen4_aleph"]


def _model_entry(entry: Any) -> str | dict[str, dict[str, Any] | None]:
    """A models: entry's shape only: whether the model takes a field, and the value, is the
    catalog's to say (sweeps.axes checks each entry against it, naming the model and the field)."""
    shape = "a model name or {name: {field: value or [values]}}, one model per entry"
    if isinstance(entry, str):
        if not entry.strip():
            raise ValueError(shape)
        return entry
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError(shape)
    name, fields = next(iter(entry.items()))
    if not isinstance(name, str) or not name.strip() or not (fields is None or isinstance(fields, dict)):
        raise ValueError(shape)
    if fields and not all(isinstance(k, str) for k in fields):
        raise ValueError(f"{shape} (field names are text)")
    return entry


def _one_none() -> list[str | None]:
    return [None]


class SweepSpec(_Strict):
    experiment: str = Field(min_length=1, max_length=200)
    provider: ProviderName = "local"
    base_url: str | None = None
    videos: list[str] = Field(min_length=1)
    # A model's name, or {name: {field: value | [values]}}: its own fields (the catalog's names),
    # a list of scalars an axis for that model alone (see model_entries).
    models: list[Annotated[Any, AfterValidator(_model_entry)]] = Field(default_factory=_default_models, min_length=1)
    prompts: list[str] | PromptFile | PromptTemplate
    seeds: list[Any] | SeedRange | SeedRandom = Field(default_factory=lambda: [0])
    ratios: list[str | None] = Field(default_factory=_one_none, min_length=1)
    references: list[str | None] = Field(default_factory=_one_none, min_length=1)
    content_moderation: dict[str, str] | None = None
    repeats: int = Field(default=1, ge=1, le=100)
    sample: Sample | None = None
    budget: Budget = Field(default_factory=Budget)
    concurrency: int = Field(default=4, ge=1, le=64)
    max_task_retries: int = Field(default=2, ge=0, le=10)
    scoring: Scoring = Field(default_factory=Scoring)
    tags: dict[str, str] = Field(default_factory=dict)
    emulator: EmulatorOptions = Field(default_factory=EmulatorOptions)
    search: Search | None = None

    # Where the spec file lives (relative paths in it are read from there), and the line each
    # top-level key stands on: not keys of the spec itself, so a spec file cannot set them.
    _base_dir: str = PrivateAttr(default=".")
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)
    _node: yaml.Node | None = PrivateAttr(default=None)

    @field_validator("videos")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        for v in values:
            if not isinstance(v, str) or not v.strip():
                raise ValueError("entries must be non-empty strings")
        return values

    @field_validator("seeds", "prompts")
    @classmethod
    def _not_an_empty_list(cls, value: Any, info: ValidationInfo) -> Any:
        # Their other forms ({count}, {random}, {file}, {template}) check their own sizes.
        if isinstance(value, list) and not value:
            raise ValueError({"seeds": "at least one seed (a list, {count: N} or {random: N})",
                              "prompts": "at least one prompt"}[info.field_name or ""])
        return value

    @property
    def base_dir(self) -> str:
        return self._base_dir

    def line_of(self, key: str) -> int | None:
        """The spec file line a top-level key stands on (None for specs built in code)."""
        return self._lines.get(key)

    def line_at(self, *loc: str | int) -> int | None:
        """The spec file line of a value deeper in (models, 2, "hailuo3", "resolution"), as deep as
        the file has it; None for specs built in code or keys changed since the file was read."""
        if not loc or str(loc[0]) not in self._lines or self._node is None:
            return None
        return node_line(self._node, tuple(loc))

    def model_entries(self) -> list[ModelEntry]:
        """The models: entries, each a name and the fields it sets (a value, or a list of them)."""
        out = []
        for k, entry in enumerate(self.models):
            if isinstance(entry, str):
                out.append(ModelEntry(k, entry, {}))
            else:
                name, fields = next(iter(entry.items()))
                out.append(ModelEntry(k, name, dict(fields or {})))
        return out

    def model_names(self) -> list[str]:
        """Each model once, in the order the spec names them."""
        return list(dict.fromkeys(e.name for e in self.model_entries()))

    def came_from_file(self, key: str) -> bool:
        return key in self._lines

    def resolve_path(self, value: str) -> str:
        if "://" in value or value.startswith("data:") or os.path.isabs(value):
            return value
        return os.path.normpath(os.path.join(self.base_dir, value))

    def video_list(self) -> list[str]:
        """Paths, globs (sorted) and URLs; a glob that matches nothing is an error."""
        out: list[str] = []
        for k, entry in enumerate(self.videos):
            if "://" in entry or entry.startswith("data:"):
                out.append(entry)
                continue
            path = self.resolve_path(entry)
            if any(ch in entry for ch in "*?["):
                found = sorted(glob.glob(path))
                if not found:
                    raise InputError(f"videos[{k}]", entry, "a glob that matches at least one file")
                out.extend(found)
            else:
                out.append(path)
        return out

    def prompt_list(self) -> list[str]:
        if isinstance(self.prompts, list):
            prompts = self.prompts
        elif isinstance(self.prompts, PromptFile):
            path = Path(self.resolve_path(self.prompts.file))
            if not path.is_file():
                raise InputError("prompts.file", self.prompts.file, "an existing text file, one prompt per line")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise InputError("prompts.file", self.prompts.file, "a UTF-8 text file, one prompt per line "
                                 "(this one is binary or in another encoding)") from None
            if "\0" in text:
                raise InputError("prompts.file", self.prompts.file, "a text file (this one holds NUL bytes)")
            prompts = [line.strip() for line in text.splitlines()
                       if line.strip() and not line.lstrip().startswith("#")]
        else:
            prompts = self.prompts.expand()
        if not prompts:
            raise InputError("prompts", prompts, "at least one prompt")
        return prompts

    def prompt_count(self) -> int:
        """How many prompts prompt_list() gives, a template's counted without expanding it."""
        return self.prompts.count() if isinstance(self.prompts, PromptTemplate) else len(self.prompt_list())

    def seed_count(self) -> int:
        """How many seeds the spec asks for, none of them drawn."""
        if isinstance(self.seeds, SeedRange):
            return self.seeds.count
        if isinstance(self.seeds, SeedRandom):
            return self.seeds.random
        return len(self.seeds)

    def varied_axes(self) -> dict[str, bool | None]:
        """Each axis a search can take: whether the spec varies it (None: not known before the
        plan reads a file or a glob: a prompt file, a videos glob)."""
        def distinct(values: list[Any]) -> bool:
            return len({repr(v) for v in values}) > 1

        prompts = (None if isinstance(self.prompts, PromptFile) else
                   self.prompt_count() > 1 if isinstance(self.prompts, PromptTemplate) else distinct(self.prompts))
        globbed = any(ch in v for v in self.videos for ch in "*?[")
        axes: dict[str, bool | None] = {
            "prompt": prompts, "model": len(self.model_names()) > 1, "ratio": distinct(self.ratios),
            "video": True if distinct(self.videos) else None if globbed else False,
            "reference": distinct(self.references)}
        for entry in self.model_entries():
            for name, value in entry.fields.items():
                if name not in axes or not axes[name]:
                    axes[name] = isinstance(value, list) and distinct(value)
        return axes

    def reference_list(self) -> list[str | None]:
        return [None if r is None else self.resolve_path(r) for r in self.references]

    def override(self, **changes: Any) -> SweepSpec:
        """A copy with some keys changed, validated as a spec file is (a bad value raises InputError
        naming the key). Mappings merge into what is there:
        spec.override(provider="runway", emulator={"render_scale": 0.25}, scoring={"frames": 8})."""
        data = self.model_dump(exclude_unset=True)
        for key, value in changes.items():
            current = data.get(key)
            data[key] = {**current, **value} if isinstance(value, dict) and isinstance(current, dict) else value
        spec = _validated(data, None, self.base_dir)
        # Keys kept from the file keep their file lines (a spec's base_url stays "from a file").
        spec._lines = {k: v for k, v in self._lines.items() if k not in changes}
        spec._node = self._node
        return spec


def parse_spec(text: str, origin: str = "spec", base_dir: str = ".") -> SweepSpec:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise InputError("spec", origin, f"a spec file of at most {MAX_SPEC_BYTES // 1000} kB "
                         "(long prompt lists belong in prompts: {file: ...})")
    try:
        deep_at = too_deep(text, MAX_SPEC_DEPTH)
        if deep_at is not None:
            raise InputError("spec", origin, f"a spec nested at most {MAX_SPEC_DEPTH} levels deep (this one "
                             "nests deeper)", line=deep_at)
        node = yaml.compose(text)
        if node is not None and expanded_size(node, MAX_SPEC_NODES) > MAX_SPEC_NODES:
            raise InputError("spec", origin, f"a spec of at most {MAX_SPEC_NODES} values once YAML aliases "
                             "are expanded (this one expands past that: an alias bomb?)")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError("spec", origin, f"valid YAML ({getattr(exc, 'problem', 'parse error')})",
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("spec", origin, "a YAML mapping with experiment, videos, prompts, ...")
    spec = _validated(data, node, base_dir)
    if isinstance(node, yaml.MappingNode):
        spec._lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        spec._node = node
    return spec


def _validated(data: dict[str, Any], node: yaml.Node | None, base_dir: str) -> SweepSpec:
    try:
        spec = SweepSpec.model_validate(data)
        spec._base_dir = base_dir
    except ValidationError as exc:
        err = _best_error(exc)
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
        if err["type"] == "extra_forbidden":
            msg = f"a known key (this one is unknown; known here: {', '.join(_known_keys(loc))})"
        raise InputError(loc_text(loc), err.get("input"), msg, line=node_line(node, loc)) from None
    if spec.search is not None:
        _check_search(spec, spec.search, node)
    return spec


def _check_search(spec: SweepSpec, search: Search, node: yaml.Node | None) -> None:
    """What a search needs of the rest of the spec: an axis it varies, seeds to share, its metric scored."""
    def refuse(key: str, value: Any, allowed: str) -> InputError:
        return InputError(f"search.{key}", value, allowed, line=node_line(node, ("search", key)))

    axes = spec.varied_axes()
    varied = [name for name, varies in axes.items() if varies is not False]
    if search.best not in axes:
        raise refuse("best", search.best, f"an axis: {', '.join(SEARCH_AXES)}, or a field a models: entry "
                     "lists values of")
    if axes[search.best] is False:
        raise refuse("best", search.best, f"an axis the spec varies (it gives one {search.best}; "
                     f"varied here: {', '.join(varied) or 'none'})")
    if not spec.scoring.enabled or (spec.scoring.metrics is not None and search.metric not in spec.scoring.metrics):
        raise refuse("metric", search.metric, "a metric the sweep scores (scoring: enabled, with it among "
                     "scoring.metrics)")
    if spec.sample is not None:
        raise refuse("best", search.best, "a search without sample: (a search picks its own cells)")


def _best_error(exc: ValidationError) -> dict[str, Any]:
    """Of a union's several complaints, pick the branch the user meant: a complaint about a value
    (too small, inconsistent) beats one about shape (missing, unknown key, wrong type); then the deepest."""
    def structural(e: dict[str, Any]) -> bool:
        return e["type"] in ("extra_forbidden", "missing") or e["type"].endswith("_type")

    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors()]
    return max(errors, key=lambda e: (not structural(e), len(e["loc"])))


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = SweepSpec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        ann = getattr(field, "annotation", None) if field else None
        if ann is not None and not isinstance(ann, type):  # Search | None: the model in it
            ann = next((a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            for sub in (PromptFile, PromptTemplate, SeedRange, SeedRandom):
                if part == sub.__name__:
                    model = sub
    return sorted(model.model_fields)


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    p = Path(path)
    if not p.is_file():
        raise InputError("spec", str(path), "an existing YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("spec", str(path), "a UTF-8 YAML file") from None
    return parse_spec(text, str(path), str(p.parent))
