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

from ..api.catalog import ModelSpec

__all__ = ["FIELD_CHECKS", "Rejected", "allowed_fields", "check_body", "utf16_len"]


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def allowed_fields(spec: ModelSpec) -> set[str]:
    fields = {"model", "promptText", "seed", "contentModeration", "ratio", spec.video_field}
    if spec.max_references:
        fields.add("references")
    if spec.max_keyframes:
        fields.add("keyframes")
    if spec.target_aspect_ratios:
        fields |= {"targetAspectRatio", "outputFormat"}
    return fields


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
    for k, ref in enumerate(refs):
        if not isinstance(ref, dict) or ref.get("type") != "image" or not isinstance(ref.get("uri"), str):
            raise Rejected(400, f"references.{k}: expected {{type: 'image', uri: string}}")


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
    if fmt is not None and fmt != "mp4":
        raise Rejected(400, "outputFormat: the emulator renders mp4 only")


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


# In the order Runway reports them: the first complaint is the service's first.
FIELD_CHECKS: tuple[Callable[[dict[str, Any], ModelSpec], None], ...] = (
    _known_keys, _video, _prompt, _seed, _ratio, _references, _moderation, _output_shape, _keyframes)
