"""The model catalog: what each video_to_video model accepts, costs and who offers it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._env import env_text
from ..errors import InputError

__all__ = [
    "PROVIDER_NAMES", "RUNWAY_API_VERSION", "Catalog", "InputLimits", "ModelSpec", "build_catalog",
    "load_catalog", "seed_range",
]

RUNWAY_API_VERSION = "2024-11-06"
PROVIDER_NAMES = ("runway", "cometapi", "local")


class InputLimits(BaseModel):
    # Lengths and sizes are finite and positive: a NaN or a 0 here would wave every input through.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_bytes: int = Field(gt=0)
    max_seconds: float = Field(gt=0)
    min_seconds: float = Field(default=0.0, ge=0)
    max_width: int = Field(gt=0)
    max_height: int = Field(gt=0)


class ModelSpec(BaseModel):
    """One catalog entry. Field names follow the data file."""

    # A price or a length that is NaN, infinite, zero or negative would price cells at 0 (or NaN)
    # and wave them past every budget: refused by name when the catalog is read.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    endpoint: str = "video_to_video"
    video_field: str = "videoUri"
    prompt_required: bool = True
    prompt_max_utf16: int = Field(default=1000, gt=0)
    ratios: tuple[str, ...] = ()
    target_aspect_ratios: tuple[str, ...] = ()
    ratio_ignored_since: str | None = None
    max_references: int = Field(default=0, ge=0)
    max_keyframes: int = Field(default=0, ge=0)
    seed_min: int = 0
    seed_max: int = 2**32 - 1  # an unsigned 32-bit seed, as Runway's API documents it
    input: InputLimits
    credits_per_second: float = Field(gt=0)
    credits_per_second_confirmed: bool = True
    max_output_seconds: float = Field(gt=0)
    output_fps: float = Field(default=24, gt=0)
    providers: tuple[str, ...]

    def expected_output_seconds(self, input_seconds: float | None) -> float:
        """Output length for an input of this length: the input, capped by what the model renders."""
        if input_seconds is None:
            return self.max_output_seconds
        return min(self.max_output_seconds, input_seconds)

    def estimate_credits(self, input_seconds: float | None) -> float:
        return self.credits_per_second * self.expected_output_seconds(input_seconds)


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
            raise InputError(f"models.{name}.providers", sorted(unknown), "runway, cometapi, local")
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


def seed_range() -> tuple[int, int]:
    """The seeds some model of the catalog takes: what a spec or the CLI may ask for before a model
    is chosen (each model's own range is checked again when its request is built)."""
    models = load_catalog().values()
    return min(m.seed_min for m in models), max(m.seed_max for m in models)


def load_catalog(*extra: str | os.PathLike[str]) -> Catalog:
    """The built-in catalog, merged with V2V_LAB_CATALOG and any files given (later wins)."""
    paths = [("V2V_LAB_CATALOG", user)] if (user := env_text("V2V_LAB_CATALOG")) else []
    paths += [("catalog", os.fspath(p)) for p in extra]
    return _load_cached(tuple(paths))
