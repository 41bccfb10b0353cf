"""Spec -> plan: the cells to run (each validated before anything is sent), those left out and why, the cost."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._env import VARIABLES, env_count
from ..api.catalog import ITEM_MEDIA, RUNWAY_API_VERSION, Catalog, ModelSpec, load_catalog, seed_range
from ..api.providers import Provider, get_provider
from ..api.validation import (
    check_input,
    check_model,
    check_moderation,
    check_prompt,
    check_ratio,
    check_seed,
    uri_kind,
)
from ..errors import InputError
from .axes import Variant, model_variants, variant_count
from .budget import DOLLARS_PER_CREDIT
from .journal import experiment_digest
from .spec import SeedRandom, SeedRange, SweepSpec

__all__ = [
    "CELL_KEY_VERSION", "DEFAULT_MAX_CELLS", "MAX_CELLS_ENV", "Cell", "Plan", "build_plan", "cell_key", "check_plan_size", "content_sha",
    "key_options", "max_cells", "resolve_seeds", "seeds_record", "stable_uri",
]

# A plan bigger than this is refused before it is built (a study is hundreds or thousands of cells).
DEFAULT_MAX_CELLS = int(VARIABLES["V2V_LAB_MAX_CELLS"].default or 0)
MAX_CELLS_ENV = "V2V_LAB_MAX_CELLS"


@dataclass(frozen=True)
class Cell:
    """One generation: (video, model, prompt, seed, ratio, reference, repeat), with its key and cost."""

    key: str
    video: str
    video_sha: str
    model: str
    prompt: str
    seed: int
    ratio: str | None
    reference: str | None
    content_moderation: dict[str, str] | None
    repeat: int
    input_seconds: float | None
    output_seconds: float
    credits: float
    # The model's own fields this cell sets (snake_case, as the catalog names them: duration,
    # resolution, output_format...), defaults and absent fields left out. Part of the cell key.
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def prompt_sha(self) -> str:
        return hashlib.sha256(self.prompt.encode()).hexdigest()[:16]


@dataclass
class Plan:
    spec: SweepSpec
    provider: Provider
    cells: list[Cell]
    excluded: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    @property
    def credits(self) -> float:
        return sum(c.credits for c in self.cells)

    def by_model(self, cells: list[Cell] | None = None) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(lambda: {"cells": 0, "seconds": 0.0, "credits": 0.0})
        for c in self.cells if cells is None else cells:
            row = out[c.model]
            row["cells"] += 1
            row["seconds"] += c.output_seconds
            row["credits"] += c.credits
        for row in out.values():
            row["dollars"] = row["credits"] * DOLLARS_PER_CREDIT
        return dict(out)


@lru_cache(maxsize=256)
def _file_sha(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Query parameters that sign a URL rather than name the object (S3, GCS, Azure SAS, CloudFront):
# they change every time a link is re-signed, the bytes behind it do not.
_SIGNING_PARAMS = ("x-amz-", "x-goog-")
_SIGNING_NAMES = {"signature", "expires", "key-pair-id", "policy", "sig", "se", "st", "sp", "sv", "sr", "spr",
                  "srt", "ss", "skoid", "sktid", "skt", "ske", "sks", "skv", "token"}


def stable_uri(uri: str) -> str:
    """The URI with its signing parameters removed, so a re-signed link to the same object keeps
    its cell key (and a rerun takes it as done instead of paying for it again)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.query:
        return uri
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(_SIGNING_PARAMS) and k.lower() not in _SIGNING_NAMES]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))


def content_sha(value: str | None) -> str | None:
    """sha256 of a local file's bytes; of the URI text otherwise (what decides the output), with
    URL signing parameters left out."""
    if value is None:
        return None
    if uri_kind(value) == "path" and os.path.isfile(value):
        st = os.stat(value)
        return _file_sha(os.path.abspath(value), st.st_mtime, st.st_size)
    return hashlib.sha256(stable_uri(value).encode()).hexdigest()


# The cell key's versions. 1: the request as it was before models had fields of their own
# (video, model, prompt, seed, ratio, reference, moderation, api, provider, repeat). 2: the same,
# plus the model's own fields the cell sets, under "options" with the version beside them. A cell
# that sets none is keyed as version 1 keyed it, so every cell finished before options existed
# keeps its key (tests/fixtures/cell_keys_9294188.json), and a field a catalog adds later changes
# no key until a cell sets it.
CELL_KEY_VERSION = 2


def cell_key(*, video_sha: str, model: str, prompt: str, seed: int, ratio: str | None, reference_sha: str | None,
             content_moderation: dict[str, str] | None, provider: str, repeat: int,
             options: Mapping[str, Any] | None = None) -> str:
    """Hash of the canonical request: everything that decides the output. The provider is in it:
    an emulator output is not a Runway output, so a rehearsal never marks a real cell done.
    options: the model's own fields as the cell sets them, defaults and absent fields left out
    (media items by their content hash: key_options)."""
    payload: dict[str, Any] = {
        "video": video_sha, "model": model, "prompt": prompt, "seed": seed, "ratio": ratio,
        "reference": reference_sha, "moderation": content_moderation or {}, "api": RUNWAY_API_VERSION,
        "provider": provider, "repeat": repeat}
    if options:
        payload |= {"key_version": CELL_KEY_VERSION, "options": dict(options)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def key_options(options: Mapping[str, Any], mspec: ModelSpec) -> dict[str, Any]:
    """A cell's options as its key holds them: a media list's items by what decides the output
    (a local file's bytes, a URL without its signature), not by the path that names them."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        f = mspec.fields.get(name)
        if f is not None and f.type == "list" and isinstance(value, list):
            value = [content_sha(v) if isinstance(v, str) else
                     ({**v, "uri": content_sha(v["uri"])} if isinstance(v, dict) and "uri" in v else v) for v in value]
        out[name] = value
    return out


def seeds_record(spec: SweepSpec, state_dir: Path | None) -> Path | None:
    """Where {random: N} seeds drawn for this experiment are kept in the state folder."""
    if state_dir is None:
        return None
    return state_dir / "seeds" / f"{experiment_digest(spec.experiment)}.json"


# Given the seeds this process would use, the seeds every process on the experiment uses.
AgreeSeeds = Callable[[list[int]], list[int]]


def resolve_seeds(spec: SweepSpec, state_dir: Path | None, recorded: list[int] | None = None,
                  agree: AgreeSeeds | None = None) -> list[int]:
    """Seeds as listed; {count, start} as a range; {random: N} drawn once and recorded beside the
    journal. `recorded`: seeds an earlier sweep of the experiment drew, as its MLflow store kept them;
    taken when the state folder has none (lost, or another machine), so a rerun redoes nothing.
    `agree`: the team's ledger, where the first draw stored is every process's draw."""
    seeds = spec.seeds
    if isinstance(seeds, SeedRange):
        return list(range(seeds.start, seeds.start + seeds.count))
    if isinstance(seeds, SeedRandom):
        return _random_seeds(seeds.random, seeds_record(spec, state_dir), recorded, agree)
    out = []
    for k, s in enumerate(seeds):
        low, high = seed_range()
        if isinstance(s, bool) or not isinstance(s, int) or not low <= s <= high:
            raise InputError(f"seeds[{k}]", s, f"an integer from {low} to {high}")
        out.append(s)
    return out


def _random_seeds(count: int, record: Path | None, recorded: list[int] | None,
                  agree: AgreeSeeds | None) -> list[int]:
    """{random: count}: the state folder's draw, else the store's, else a new one; then, with a
    ledger, the draw the ledger holds (the first one stored there) over all of them."""
    saved = json.loads(record.read_text()) if record and record.is_file() else None
    if isinstance(saved, list) and len(saved) == count:
        drawn = [int(s) for s in saved]
    elif recorded is not None and len(recorded) == count:
        drawn = [int(s) for s in recorded]
    else:
        drawn = [random.SystemRandom().randrange(0, 4294967296) for _ in range(count)]
    if agree is not None:
        drawn = agree(drawn)
    if record and drawn != saved:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(drawn))
    return drawn


def build_plan(spec: SweepSpec, *, catalog: Catalog | None = None, state_dir: Path | None = None,
               recorded_seeds: list[int] | None = None, agree_seeds: AgreeSeeds | None = None) -> Plan:
    """Expand the grid and check every cell without sending anything.

    Whole-spec errors (unknown model, bad video file, bad seed) raise InputError. Combinations a
    model does not take (a ratio outside its set) are left out and listed.
    """
    catalog = catalog or load_catalog()
    provider = get_provider(spec.provider)
    videos, refs = spec.video_list(), spec.reference_list()
    check_plan_size(spec, len(videos))  # before anything is expanded, drawn or written
    prompts = spec.prompt_list()
    seeds = resolve_seeds(spec, state_dir, recorded_seeds, agree_seeds)
    check_moderation(spec.content_moderation, "content_moderation")
    specs, skipped = _offered_models(spec, catalog, provider)
    variants, variant_warnings = model_variants(spec, specs, spec.resolve_path)
    video_info = _check_inputs(specs, provider, videos, prompts, refs)
    _check_option_media(variants, specs, provider)
    _no_value_every_model_refuses(specs, variants, seeds, spec.ratios, refs, spec)
    plan = Plan(spec, provider, [], seeds=seeds)
    if skipped:
        plan.warnings.append("left out: " + ", ".join(skipped))
    plan.warnings += variant_warnings + _price_and_ratio_warnings(spec, specs, provider, variants)
    memo: dict[tuple[Any, ...], Any] = {}  # what many cells share: checks and prices (100k cells: ~3x faster)
    for video, variant, prompt, seed, ratio, ref, repeat in _grid(videos, variants, prompts, seeds, refs,
                                                                  spec.repeats):
        mspec = specs[variant.model]
        cell = _cell(spec, provider.name, mspec, variant, video_info[video], video, prompt, seed, ratio, ref, repeat,
                     memo)
        if isinstance(cell, InputError):
            combo = {"video": video, "model": variant.model, "prompt": prompt, "seed": seed, "ratio": ratio,
                     "reference": ref, "options": variant.options}
            plan.excluded.append((combo, str(cell)))
        else:
            plan.cells.append(cell)
    _merge_duplicates(plan)
    if spec.sample is not None and spec.sample.k < len(plan.cells):
        rng = random.Random(spec.sample.seed)
        chosen = sorted(rng.sample(range(len(plan.cells)), spec.sample.k))
        plan.cells = [plan.cells[i] for i in chosen]
    return plan


def _cell(spec: SweepSpec, provider: str, mspec: ModelSpec, variant: Variant, info: tuple[str, float | None],
          video: str, prompt: str, seed: int, ratio: str | None, ref: str | None, repeat: int,
          memo: dict[tuple[Any, ...], Any]) -> Cell | InputError:
    """One cell of the grid, or why its model cannot take this combination (left out and listed).
    memo: the plan's cache of what depends on the model and one axis only (a seed's check, a
    ratio's) and of the price (model entry, clip, ratio, reference): computed once, not per cell."""
    try:
        if mspec.takes_seed:  # for a model without one, each seed is an unseeded repeat
            _memo(memo, ("seed", mspec.name, seed), lambda: check_seed(seed, mspec))
        if variant.global_ratios:  # a ratio the entry set itself was checked with its fields
            _memo(memo, ("ratio", mspec.name, ratio), lambda: check_ratio(ratio, mspec))
        if ref is not None and mspec.max_references < 1:
            raise InputError("references", ref, f"no reference image for {mspec.name}")
    except InputError as err:
        return err
    video_sha, seconds = info
    options = variant.options
    key = cell_key(video_sha=video_sha, model=mspec.name, prompt=prompt, seed=seed, ratio=ratio,
                   reference_sha=content_sha(ref), content_moderation=spec.content_moderation,
                   provider=provider, repeat=repeat, options=_memo(memo, ("options", id(variant)),
                                                                   lambda: key_options(options, mspec)))
    out_seconds, credits = _memo(memo, ("price", id(variant), seconds, ratio, ref is not None), lambda: (
        mspec.expected_output_seconds(seconds, options),
        mspec.estimate_credits(seconds, options, ratio=ratio, references=int(ref is not None))))
    return Cell(key, video, video_sha, mspec.name, prompt, seed, ratio, ref, spec.content_moderation, repeat,
                seconds, out_seconds, credits, options)


def _memo(memo: dict[tuple[Any, ...], Any], key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """compute() once per key; an InputError it raises is raised again for every cell that asks."""
    if key not in memo:
        try:
            memo[key] = (compute(), None)
        except InputError as err:
            memo[key] = (None, err)
    value, refused = memo[key]
    if refused is not None:
        raise refused
    return value


def max_cells() -> int:
    """The most cells a plan may have: V2V_LAB_MAX_CELLS, else DEFAULT_MAX_CELLS."""
    return env_count(MAX_CELLS_ENV)


def check_plan_size(spec: SweepSpec, videos: int) -> None:
    """The grid's cells counted from the sizes of its axes, none of them expanded: a template of a
    few lists multiplies to 10^12 prompts, a prompt file times {count: N} seeds to 10^10 cells, and
    building them would take the machine's memory. A grid over the limit is refused, saying how to
    raise it. (Cells left out or merged later are counted here: the grid is what gets built.)"""
    # A models: entry with axes of its own counts once per combination of its values.
    models = sum(variant_count(e) for e in spec.model_entries())
    axes = {"videos": videos, "models": models, "prompts": spec.prompt_count(),
            "seeds": spec.seed_count(), "ratios": len(spec.ratios), "references": len(spec.references),
            "repeats": spec.repeats}
    cells = math.prod(axes.values())
    limit = max_cells()
    if cells <= limit:
        return
    biggest = max(axes, key=lambda k: axes[k])
    sizes = " x ".join(f"{n} {axis}" for axis, n in axes.items())
    raise InputError(biggest, f"{cells} cells", f"a plan of at most {limit} cells (this one: {sizes}); "
                     f"set {MAX_CELLS_ENV} to raise the limit", line=spec.line_of(biggest))


def _offered_models(spec: SweepSpec, catalog: Catalog, provider: Provider) -> tuple[dict[str, ModelSpec], list[str]]:
    """The spec's models this provider offers, and the ones left out. A model another provider
    offers is left out (a model comparison runs per provider) as long as some model runs here;
    a model no provider knows is an error."""
    specs = {}
    not_offered: list[tuple[str, InputError]] = []
    for k, model in ((e.index, e.name) for e in spec.model_entries()):
        if model in specs:
            continue
        try:
            specs[model] = check_model(catalog, model, provider)
        except InputError as err:
            refused = InputError(f"models[{k}]", err.value, err.allowed,
                                 line=spec.line_at("models", k) or spec.line_of("models"))
            if model not in catalog:
                raise refused from None
            not_offered.append((model, refused))
    if not specs:
        raise not_offered[0][1]
    return specs, [f"{m} (not offered by {provider.name})" for m, _ in not_offered]


def _check_inputs(specs: dict[str, ModelSpec], provider: Provider, videos: list[str], prompts: list[str],
                  refs: list[str | None]) -> dict[str, tuple[str, float | None]]:
    """Every prompt, video and reference against every model that will get it; returns each
    video's content hash and length."""
    for k, prompt in enumerate(prompts):
        for mspec in specs.values():
            try:
                check_prompt(prompt, mspec, f"prompts[{k}]")
            except InputError as err:
                raise InputError(err.field, err.value, err.allowed) from None
    video_info: dict[str, tuple[str, float | None]] = {}
    for k, video in enumerate(videos):
        seconds = None
        for mspec in specs.values():
            got = check_input(video, mspec, provider, f"videos[{k}]", "video")
            seconds = got if got is not None else seconds
        video_info[video] = (content_sha(video) or "", seconds)
    for k, ref in enumerate(refs):
        for mspec in specs.values():
            if ref is not None and mspec.max_references:
                check_input(ref, mspec, provider, f"references[{k}]", "image")
    return video_info


def _price_and_ratio_warnings(spec: SweepSpec, specs: dict[str, ModelSpec], provider: Provider,
                              variants: list[Variant]) -> list[str]:
    warnings = []
    swept = {v.model for v in variants if v.global_ratios}  # the models the spec's ratios apply to
    for model, mspec in specs.items():
        if mspec.ratio_ignored and model in swept and len(set(spec.ratios)) > 1:
            warnings.append(f"{model}: the real endpoint ignores ratio {mspec.ratio_ignored}; a ratio "
                            "sweep on it only differs on the emulator")
        if not mspec.takes_seed and spec.seed_count() > 1:
            warnings.append(f"{model} takes no seed: its {spec.seed_count()} seeds are unseeded repeats")
        if mspec.retired:  # never refused here: the endpoint decides, and a refusal costs nothing
            warnings.append(f"{model}: {mspec.retired}; the endpoint may refuse it (a refusal is a failed "
                            "cell, never a charge)")
        if not mspec.credits_per_second_confirmed and provider.paid:
            warnings.append(f"{model}: {mspec.credits_per_second:g} credits/s is an unconfirmed price")
    return warnings


def _merge_duplicates(plan: Plan) -> None:
    """One cell per cell key. A prompt or seed listed twice, or one file reached twice (a symlink,
    overlapping globs), names the same generation: paying for it twice would buy nothing.
    `repeats:` is the way to ask for the same cell more than once (it is part of the key)."""
    seen: set[str] = set()
    unique = []
    for cell in plan.cells:
        if cell.key not in seen:
            seen.add(cell.key)
            unique.append(cell)
    merged = len(plan.cells) - len(unique)
    if merged:
        plan.cells = unique
        plan.warnings.append(f"{merged} duplicate entr{'y' if merged == 1 else 'ies'} merged (the same cell "
                             "listed twice is run once; use repeats: to ask for it again)")


def _no_value_every_model_refuses(specs: dict[str, ModelSpec], variants: list[Variant], seeds: list[Any],
                                  ratios: list[Any], refs: list[Any], spec: SweepSpec) -> None:
    """A seed, ratio or reference that no model of the spec takes is a mistake in the spec, not a
    combination to leave out: raise its error. (One that some model takes and another does not is
    left out for the other and listed in the plan.) Ratios are asked of the models they apply to:
    those that take one from the spec's ratios (the others are planned without, and said so)."""
    ratio_models = list({v.model: specs[v.model] for v in variants if v.global_ratios}.values())
    for key, values, check, models in (("seeds", seeds, check_seed, list(specs.values())),
                                       ("ratios", ratios, check_ratio, ratio_models)):
        if not models:
            continue
        for k, value in enumerate(values):
            errors = []
            for mspec in models:
                if key == "seeds" and not mspec.takes_seed:
                    break
                try:
                    check(value, mspec)
                    break
                except InputError as err:
                    errors.append(err)
            else:
                # Named as the spec names it (ratios[0], line 7), not as the API field.
                raise InputError(f"{key}[{k}]", value, errors[0].allowed, line=spec.line_of(key))
    if any(r is not None for r in refs) and all(m.max_references < 1 for m in specs.values()):
        ref = next(r for r in refs if r is not None)
        raise InputError("references", ref, f"reference images only with a model that takes them "
                         f"(none of {', '.join(specs)} does)")


def _check_option_media(variants: list[Variant], specs: dict[str, ModelSpec], provider: Provider) -> None:
    """Every file or URI an entry's media lists name, checked once as what it is (a missing file
    is said before anything is sent)."""
    seen: set[tuple[str, str]] = set()
    for v in variants:
        mspec = specs[v.model]
        for name, value in v.options.items():
            f = mspec.fields[name]
            if f.type != "list" or not isinstance(value, list):
                continue
            kind = ITEM_MEDIA.get(f.items or "", "image")
            for k, item in enumerate(value):
                uri = item if isinstance(item, str) else item.get("uri") if isinstance(item, dict) else None
                if isinstance(uri, str) and (v.model, uri) not in seen:
                    seen.add((v.model, uri))
                    # A video or audio item is checked for form and existence here, its length by the endpoint.
                    check_input(uri, mspec, provider, f"models.{v.model}.{name}[{k}]",
                                "image" if kind == "image" else "media")


def _grid(videos: list[str], variants: list[Variant], prompts: list[str], seeds: list[int], refs: list[str | None],
          repeats: int) -> Any:
    none: list[str | None] = [None]
    for video in videos:
        for variant in variants:
            for prompt in prompts:
                for seed in seeds:
                    for ratio in variant.ratios:
                        for ref in refs if variant.global_references else none:
                            for repeat in range(repeats):
                                yield video, variant, prompt, seed, ratio, ref, repeat

