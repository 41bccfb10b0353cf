"""Server-side checks of a video_to_video body, answered as Runway does: 400 '<field>: <reason>'.

Written on purpose apart from the client's validation (api/validation.py), though both read the
same catalog: the emulator stands in for the service, and a check the client shared with it could
never catch the client's own mistakes. The official SDKs, curl and CometAPI's request meet these
checks exactly as they meet Runway's. `check_body` runs one check per field, in the order Runway
reports them (FIELD_CHECKS), so the first complaint matches the service's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..api.catalog import ModelSpec, wire_name
from ..api.limits import utf16_len

__all__ = ["FIELD_CHECKS", "Rejected", "allowed_fields", "check_body", "utf16_len"]


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def allowed_fields(spec: ModelSpec) -> set[str]:
    """The wire keys the SDK types for this model (the catalog is held to the SDK by a test)."""
    return set(spec.wire_fields)


def check_body(body: dict[str, Any], spec: ModelSpec) -> None:
    """Raises Rejected with the first complaint, field by field in Runway's order."""
    for check in FIELD_CHECKS:
        check(body, spec)


def _known_keys(body: dict[str, Any], spec: ModelSpec) -> None:
    unknown = sorted(set(body) - allowed_fields(spec))
    if unknown:
        raise Rejected(400, f"{unknown[0]}: Unrecognized key for model {spec.name}")


def _video(body: dict[str, Any], spec: ModelSpec) -> None:
    video = body.get(spec.video_field)
    if not isinstance(video, str) or not video:
        raise Rejected(400, f"{spec.video_field}: Required")


def _prompt(body: dict[str, Any], spec: ModelSpec) -> None:
    prompt = body.get("promptText")
    if prompt is None:
        if spec.prompt_required:
            raise Rejected(400, "promptText: Required")
    elif not isinstance(prompt, str) or not prompt.strip():
        raise Rejected(400, "promptText: String must contain at least 1 character(s)")
    elif not _is_unicode(prompt):  # a lone surrogate ("\ud800" in the JSON): text no service can read
        raise Rejected(400, "promptText: Invalid input (not valid Unicode text: it holds a lone surrogate)")
    elif utf16_len(prompt) > spec.prompt_max_utf16:
        raise Rejected(400, f"promptText: String must contain at most {spec.prompt_max_utf16} character(s)")


def _seed(body: dict[str, Any], spec: ModelSpec) -> None:
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not spec.seed_min <= seed <= spec.seed_max):
        raise Rejected(400, f"seed: Number must be an integer between {spec.seed_min} and {spec.seed_max}")


def _ratio(body: dict[str, Any], spec: ModelSpec) -> None:
    ratio = body.get("ratio")
    if ratio is not None and spec.ratios and ratio not in spec.ratios:
        raise Rejected(400, f"ratio: Invalid enum value. Expected {' | '.join(spec.ratios)}, received '{ratio}'")


def _references(body: dict[str, Any], spec: ModelSpec) -> None:
    refs = body.get("references")
    if refs is None:
        return
    if not isinstance(refs, list) or len(refs) > spec.max_references:
        raise Rejected(400, f"references: Array must contain at most {spec.max_references} element(s)")
    typed = spec.fields["references"].items == "image_typed"
    for k, ref in enumerate(refs):
        if (not isinstance(ref, dict) or not isinstance(ref.get("uri"), str)
                or (typed and ref.get("type") != "image")):
            raise Rejected(400, f"references.{k}: expected {{type: 'image', uri: string}}" if typed
                           else f"references.{k}.uri: Required")


def _moderation(body: dict[str, Any], spec: ModelSpec) -> None:
    mod = body.get("contentModeration")
    if mod is None:
        return
    if not isinstance(mod, dict) or set(mod) - {"publicFigureThreshold"}:
        raise Rejected(400, "contentModeration: Unrecognized key")
    if mod.get("publicFigureThreshold", "auto") not in ("auto", "low"):
        raise Rejected(400, "contentModeration.publicFigureThreshold: Invalid enum value. Expected 'auto' | 'low'")


def _output_shape(body: dict[str, Any], spec: ModelSpec) -> None:
    aspect = body.get("targetAspectRatio")
    if aspect is not None and aspect not in spec.target_aspect_ratios:
        raise Rejected(400, f"targetAspectRatio: Invalid enum value. Expected {' | '.join(spec.target_aspect_ratios)}")
    fmt = body.get("outputFormat")
    formats = spec.fields["output_format"].enum if "output_format" in spec.fields else ("mp4",)
    if fmt is not None and fmt not in formats:
        raise Rejected(400, f"outputFormat: Invalid enum value. Expected {' | '.join(map(str, formats))}")


def _keyframes(body: dict[str, Any], spec: ModelSpec) -> None:
    kfs = body.get("keyframes")
    if kfs is None:
        return
    if not isinstance(kfs, list) or len(kfs) > spec.max_keyframes:
        raise Rejected(400, f"keyframes: Array must contain at most {spec.max_keyframes} element(s)")
    for k, kf in enumerate(kfs):
        if not isinstance(kf, dict) or not isinstance(kf.get("uri"), str):
            raise Rejected(400, f"keyframes.{k}.uri: Required")
        if ("seconds" in kf) == ("at" in kf):
            raise Rejected(400, f"keyframes.{k}: exactly one of 'seconds' or 'at' is required")
        if "at" in kf and not (isinstance(kf["at"], (int, float)) and 0.0 <= kf["at"] <= 1.0):
            raise Rejected(400, f"keyframes.{k}.at: Number must be between 0 and 1")
    if len({("range" in kf) for kf in kfs}) > 1:
        raise Rejected(400, "keyframes: either every keyframe has a range or none does")


# Checked by their own functions above; every other field by its type, enum and range.
_OWN_CHECKS = {"model", "promptText", "seed", "ratio", "references", "contentModeration", "targetAspectRatio",
               "outputFormat", "keyframes"}


def _typed_fields(body: dict[str, Any], spec: ModelSpec) -> None:
    for wire, name in spec.wire_fields.items():
        if wire in _OWN_CHECKS or wire == spec.video_field or wire not in body:
            continue
        f = spec.fields[name]
        if not f.accepts(body[wire]):
            expected = (" | ".join(f"'{v}'" for v in f.enum) if f.enum else f.takes())
            raise Rejected(400, f"{wire}: Invalid input. Expected {expected}, received {body[wire]!r}")
        if f.type == "list":
            for k, item in enumerate(body[wire]):
                if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
                    raise Rejected(400, f"{wire}.{k}.uri: Required")
                want = {"video": "video", "audio": "audio"}.get(f.items or "")
                if want and item.get("type") != want:
                    raise Rejected(400, f"{wire}.{k}.type: Invalid literal value, expected '{want}'")


def _rules(body: dict[str, Any], spec: ModelSpec) -> None:
    given = {name: body[wire] for wire, name in spec.wire_fields.items() if wire in body}
    broken = spec.broken_rule(given)
    if broken is not None:
        rule, name = broken
        raise Rejected(400, f"{wire_name(name)}: Invalid input ({rule.why or 'not allowed with these fields'})")


# In the order Runway reports them: the first complaint is the service's first.
FIELD_CHECKS: tuple[Callable[[dict[str, Any], ModelSpec], None], ...] = (
    _known_keys, _video, _prompt, _seed, _ratio, _references, _moderation, _output_shape, _keyframes,
    _typed_fields, _rules)
