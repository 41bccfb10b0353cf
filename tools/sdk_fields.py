"""What the installed official SDK (runwayml) types for POST /v1/video_to_video, model by model.

Read from `runwayml.types.video_to_video_create_params` by introspection, never by copying: the
catalog test (tests/test_catalog_sdk.py) holds v2v_lab's catalog to it, and `make sdk-check` runs
this file under the newest SDK to say what a new release adds or removes.

    python tools/sdk_fields.py            # the SDK's models and fields as JSON
    python tools/sdk_fields.py --diff     # what differs from v2v_lab's catalog (exit 1 if anything)
"""

from __future__ import annotations

import json
import sys
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from typing_extensions import Annotated, NotRequired, Required, is_typeddict

__all__ = ["SdkField", "SdkModel", "catalog_differences", "sdk_models", "sdk_version"]


@dataclass
class SdkField:
    wire: str                       # the name on the wire (the SDK's alias)
    required: bool
    kind: str                       # string | integer | boolean | object | list
    enum: list[Any] = field(default_factory=list)
    auto: bool = False              # an integer field that also takes "auto"
    item_keys: list[str] = field(default_factory=list)   # a list's (or an object's) keys, wire names


@dataclass
class SdkModel:
    name: str
    fields: dict[str, SdkField]     # by the SDK's snake_case name, `model` left out


def sdk_version() -> str:
    import runwayml

    return str(runwayml.__version__)


def _strip(tp: Any) -> tuple[Any, bool | None, str | None]:
    """(the bare type, Required/NotRequired if said, the alias if any)."""
    required: bool | None = None
    alias = None
    while True:
        origin = get_origin(tp)
        if origin in (Required, typing.Required if hasattr(typing, "Required") else Required):
            required, tp = True, get_args(tp)[0]
        elif origin in (NotRequired,):
            required, tp = False, get_args(tp)[0]
        elif origin is Annotated or hasattr(tp, "__metadata__"):
            for meta in getattr(tp, "__metadata__", ()):
                alias = getattr(meta, "alias", None) or alias
            tp = tp.__origin__
        else:
            return tp, required, alias


def _keys_of(td: Any) -> list[str]:
    hints = typing.get_type_hints(td, include_extras=True)
    return sorted((_strip(h)[2] or name) for name, h in hints.items())


def _describe(tp: Any) -> tuple[str, list[Any], bool, list[str]]:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return ("string" if all(isinstance(a, str) for a in args) else "integer"), list(args), False, []
    if origin is Union:
        kinds = [_describe(a) for a in args]
        if {k[0] for k in kinds} == {"integer", "string"} and any(k[1] == ["auto"] for k in kinds):
            return "integer", [], True, []
        if any(k[0] == "list" for k in kinds):  # klingO3's references: a list, or one URI as a string
            return next(k for k in kinds if k[0] == "list")
        return kinds[0]
    if tp is bool:
        return "boolean", [], False, []
    if tp is int:
        return "integer", [], False, []
    if tp is float:
        return "number", [], False, []
    if tp is str:
        return "string", [], False, []
    if origin is not None and getattr(origin, "__name__", "") in ("Iterable", "list", "Sequence"):
        item = args[0]
        keys: list[str] = []
        for member in get_args(item) or (item,):
            if is_typeddict(member):
                keys = sorted(set(keys) | set(_keys_of(member)))
        return "list", [], False, keys
    if is_typeddict(tp):
        return "object", [], False, _keys_of(tp)
    raise TypeError(f"unread SDK type {tp!r}")


def sdk_models() -> dict[str, SdkModel]:
    from runwayml.types import video_to_video_create_params as params

    out: dict[str, SdkModel] = {}
    for variant in get_args(params.VideoToVideoCreateParams):
        hints = typing.get_type_hints(variant, include_extras=True)
        name = get_args(_strip(hints["model"])[0])[0]
        fields: dict[str, SdkField] = {}
        for fname, hint in hints.items():
            if fname == "model":
                continue
            tp, required, alias = _strip(hint)
            kind, enum, auto, keys = _describe(tp)
            is_required = bool(required) if required is not None else bool(getattr(variant, "__total__", True))
            fields[fname] = SdkField(alias or fname, is_required, kind, enum, auto, keys)
        out[name] = SdkModel(name, fields)
    return out


def catalog_differences(sdk: dict[str, SdkModel], catalog: Any) -> list[str]:
    """One line per difference between the SDK's models and the catalog's (models retired from the
    SDK are left alone: the catalog keeps them for CometAPI and older accounts)."""
    lines: list[str] = []
    for name in sorted(sdk):
        if name not in catalog:
            lines.append(f"{name}: in the SDK, not in the catalog")
            continue
        lines += catalog[name].differences_from_sdk(sdk[name])
    for name in sorted(catalog):
        if name not in sdk and not catalog[name].retired:
            lines.append(f"{name}: in the catalog, not in the SDK (mark it retired or remove it)")
    return lines


def main(argv: list[str]) -> int:
    models = sdk_models()
    if "--diff" not in argv:
        print(json.dumps({"runwayml": sdk_version(),
                          "models": {n: {f: asdict(v) for f, v in m.fields.items()} for n, m in models.items()}},
                         indent=1))
        return 0
    from v2v_lab.api.catalog import load_catalog

    lines = catalog_differences(models, load_catalog())
    print(f"runwayml {sdk_version()}: {len(models)} video_to_video models")
    for line in lines:
        print("  " + line)
    print("no differences from the catalog" if not lines else f"{len(lines)} difference(s) from the catalog")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
