"""Validation before spending: every check that needs no request, with the field named on failure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, MediaError
from ..media.probe import probe_image, probe_video
from .catalog import ITEM_KEYS, Catalog, ModelSpec
from .limits import URL_IMAGE_MAX_BYTES, utf16_len
from .providers import Provider

__all__ = [
    "MODERATION_THRESHOLDS", "GenerationRequest", "check_input", "check_model", "check_moderation",
    "check_options", "check_prompt", "check_ratio", "check_seed", "check_url", "check_video_file", "is_local_path", "uri_kind",
    "utf16_len", "validate_request",
]

MODERATION_THRESHOLDS = ("auto", "low")


@dataclass(frozen=True)
class GenerationRequest:
    """One generation as the user means it. `video` and `references` may be local paths or URIs."""

    video: str
    prompt: str | None
    model: str = "gen4_aleph"
    seed: int | None = None
    ratio: str | None = None
    references: tuple[str, ...] = ()
    content_moderation: dict[str, str] | None = None
    keyframes: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    target_aspect_ratio: str | None = None
    # The model's own fields by their snake_case names (duration, resolution, mode, audio, draft,
    # output_format, prores_profile, reference_videos, provider_settings...), as the catalog lists
    # them for the model. A media list's items may be local paths (uploaded when sent) or URIs.
    options: dict[str, Any] = field(default_factory=dict)


def uri_kind(value: str) -> str:
    if value.startswith("runway://"):
        return "runway"
    if value.startswith("data:"):
        return "data"
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        return scheme
    return "path"


def check_model(catalog: Catalog, model: str, provider: Provider) -> ModelSpec:
    spec = catalog.get_model(model)
    if provider.name not in spec.providers:
        offered = ", ".join(spec.providers)
        raise InputError("model", model, f"a model provider '{provider.name}' offers "
                         f"({', '.join(catalog.models_for(provider.name))}); {model} is offered by {offered}")
    return spec


def check_seed(seed: Any, spec: ModelSpec, field_name: str = "seed") -> int | None:
    if seed is None:
        return None
    if not spec.takes_seed:
        raise InputError(field_name, seed, f"no seed: {spec.name} takes none (each task is an unseeded draw)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(field_name, seed, f"an integer from {spec.seed_min} to {spec.seed_max}")
    if not spec.seed_min <= seed <= spec.seed_max:
        raise InputError(field_name, seed, f"an integer from {spec.seed_min} to {spec.seed_max}")
    return seed


def check_prompt(prompt: Any, spec: ModelSpec, field_name: str = "prompt") -> None:
    if prompt is None:
        if spec.prompt_required:
            raise InputError(field_name, prompt, f"a non-empty text ({spec.name} requires a prompt)")
        return
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(field_name, prompt, f"a non-empty text of at most {spec.prompt_max_utf16} UTF-16 units")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(field_name, prompt, "valid Unicode text (this holds a lone surrogate, which cannot "
                         "be sent as UTF-8)") from None
    n = utf16_len(prompt)
    if n > spec.prompt_max_utf16:
        raise InputError(field_name, prompt[:40] + "...",
                         f"at most {spec.prompt_max_utf16} UTF-16 code units for {spec.name} (this has {n}; "
                         "an emoji counts 2)")


def check_ratio(ratio: Any, spec: ModelSpec, field_name: str = "ratio") -> None:
    if ratio is None:
        return
    if not spec.takes_ratio:
        raise InputError(field_name, ratio, f"no ratio: {spec.name}'s output follows its input"
                         + (" (use target_aspect_ratio)" if spec.target_aspect_ratios else ""))
    if spec.ratios and ratio not in spec.ratios:
        raise InputError(field_name, ratio, f"one of {', '.join(spec.ratios)} for {spec.name}")


# Fields a GenerationRequest holds as attributes of their own, never among its options.
_OWN_FIELDS = ("seed", "ratio", "references", "content_moderation", "keyframes", "target_aspect_ratio")


def check_options(options: Any, spec: ModelSpec, label: str = "option") -> None:
    """The model's own fields: each one the model takes, of its type, enum and range, and
    together within the model's rules. An error names the model, the field and what it takes."""
    if not isinstance(options, dict):
        raise InputError(label, options, "a mapping of field name to value")
    for name, value in options.items():
        if name in _OWN_FIELDS:
            raise InputError(f"{label} {name}", value, f"the request's own {name} (not an option)")
        f = spec.field(name, f"{label} {name}")
        if not f.accepts(value):
            raise InputError(f"{label} {name}", value, f"{f.takes()} for {spec.name}")
        if f.type == "list":
            _check_items(value, f.items or "", f"{label} {name}", spec)
    broken = spec.broken_rule(options)
    if broken is not None:
        rule, name = broken
        raise InputError(f"{label} {name}", options.get(name), f"{rule.why or 'a value its rules allow'} "
                         f"for {spec.name}")


def _check_items(items: list[Any], kind: str, label: str, spec: ModelSpec) -> None:
    """A media list's items: a path or URI, or a mapping of the SDK's item keys with a uri."""
    keys = set(ITEM_KEYS.get(kind, ("uri",)))
    for k, item in enumerate(items):
        if isinstance(item, str) and item and kind not in ("keyframe", "image_positioned"):
            continue
        if not (isinstance(item, dict) and isinstance(item.get("uri"), str) and set(item) <= keys):
            raise InputError(f"{label}[{k}]", item, f"a path or URI, or {{{', '.join(sorted(keys))}}}, for {spec.name}")


def check_moderation(value: Any, field_name: str = "content_moderation") -> None:
    if value is None:
        return
    if not isinstance(value, dict) or set(value) - {"publicFigureThreshold"}:
        raise InputError(field_name, value, "{publicFigureThreshold: auto | low}")
    if value.get("publicFigureThreshold", "auto") not in MODERATION_THRESHOLDS:
        raise InputError(f"{field_name}.publicFigureThreshold", value.get("publicFigureThreshold"), "auto or low")


def check_url(value: str, provider: Provider, field_name: str) -> None:
    kind = uri_kind(value)
    if kind in ("http", "https"):
        if len(value) > 2048:
            raise InputError(field_name, value[:60] + "...", "a URL of at most 2048 characters")
        host = urlsplit(value).hostname or ""
        if provider.https_only:
            if kind != "https":
                raise InputError(field_name, value, f"an https URL ({provider.name} fetches https only)")
            try:
                ipaddress.ip_address(host.strip("[]"))
                raise InputError(field_name, value, "an https URL whose host is a domain name, not an IP")
            except ValueError:
                pass
    elif kind == "runway" and not provider.has_uploads:
        raise InputError(field_name, value, f"an https URL or data URI ({provider.name} has no runway:// uploads)")
    elif kind == "data":
        size = len(value) * 3 // 4
        if size > provider.max_data_uri_bytes:
            raise InputError(field_name, f"data URI of {size} bytes",
                             f"at most {provider.max_data_uri_bytes} bytes as a data URI on {provider.name}")


def check_video_file(path: str, spec: ModelSpec, field_name: str = "video") -> float:
    """Exists, decodes as video, within the model's byte, duration and resolution limits; returns seconds."""
    info = probe_video(path, field_name)
    lim = spec.input
    if info.size_bytes > lim.max_bytes:
        raise MediaError(field_name, path, f"a file of at most {lim.max_bytes / 1e6:g} MB for {spec.name} "
                         f"(this is {info.size_bytes / 1e6:.1f} MB)")
    if info.duration_s > lim.max_seconds + 0.05:
        raise MediaError(field_name, path, f"a clip of at most {lim.max_seconds:g} s for {spec.name} "
                         f"(this is {info.duration_s:.1f} s)")
    if info.duration_s < lim.min_seconds:
        raise MediaError(field_name, path, f"a clip of at least {lim.min_seconds:g} s for {spec.name} "
                         f"(this is {info.duration_s:.2f} s)")
    if (lim.min_fps is not None and info.fps < lim.min_fps - 0.01) or (
            lim.max_fps is not None and info.fps > lim.max_fps + 0.01):
        raise MediaError(field_name, path, f"a clip of {lim.min_fps or 0:g} to {lim.max_fps or 'any'} fps for "
                         f"{spec.name} (this is {info.fps:.3g} fps)")
    if info.width > lim.max_width or info.height > lim.max_height:
        raise MediaError(field_name, path, f"at most {lim.max_width}x{lim.max_height} for {spec.name} "
                         f"(this is {info.width}x{info.height})")
    return info.duration_s


def check_input(value: str, spec: ModelSpec, provider: Provider, field_name: str, kind: str) -> float | None:
    """A local file is probed; a URI is checked for form. Returns the video length when known."""
    if not isinstance(value, str) or not value:
        raise InputError(field_name, value, "a local file path, an https URL, a data URI or a runway:// URI")
    if uri_kind(value) != "path":
        check_url(value, provider, field_name)
        return None
    if kind == "video":
        return check_video_file(value, spec, field_name)
    if kind != "image":  # a reference video or audio: its length and form are the endpoint's to judge
        if not Path(value).is_file():
            raise MediaError(field_name, value, "an existing file")
        return None
    probe_image(value, field_name)
    size = Path(value).stat().st_size
    if size > URL_IMAGE_MAX_BYTES:
        raise MediaError(field_name, value, f"an image of at most {URL_IMAGE_MAX_BYTES // 1_000_000} MB")
    return None


def validate_request(req: GenerationRequest, catalog: Catalog, provider: Provider) -> float | None:
    """Every check that costs no request. Returns the input length in seconds when it is a local file."""
    spec = check_model(catalog, req.model, provider)
    check_prompt(req.prompt, spec)
    check_seed(req.seed, spec)
    check_ratio(req.ratio, spec)
    check_moderation(req.content_moderation)
    check_options(req.options, spec)
    if len(req.references) > spec.max_references:
        raise InputError("references", list(req.references),
                         f"at most {spec.max_references} reference image(s) for {spec.name}")
    if len(req.keyframes) > spec.max_keyframes:
        raise InputError("keyframes", len(req.keyframes), f"at most {spec.max_keyframes} keyframes for {spec.name}")
    if req.target_aspect_ratio is not None and req.target_aspect_ratio not in spec.target_aspect_ratios:
        raise InputError("target_aspect_ratio", req.target_aspect_ratio,
                         ", ".join(spec.target_aspect_ratios) or f"none ({spec.name} takes no target aspect)")
    seconds = check_input(req.video, spec, provider, "video", "video")
    for k, ref in enumerate(req.references):
        check_input(ref, spec, provider, f"references[{k}]", "image")
    for name, value in req.options.items():
        items = spec.fields[name].items if spec.fields[name].type == "list" else None
        for k, item in enumerate(value if items else ()):
            uri = item["uri"] if isinstance(item, dict) else item
            check_input(uri, spec, provider, f"{name}[{k}]", "image" if items and "image" in items else "media")
    for k, kf in enumerate(req.keyframes):
        if not isinstance(kf, dict) or "uri" not in kf or (("seconds" in kf) == ("at" in kf)):
            raise InputError(f"keyframes[{k}]", kf, "{uri, seconds} or {uri, at}")
        check_input(kf["uri"], spec, provider, f"keyframes[{k}].uri", "image")
    return seconds


def is_local_path(value: str) -> bool:
    return uri_kind(value) == "path"

