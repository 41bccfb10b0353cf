"""Shared helpers for the reliability proofs. Everything under tests/reliability carries the
`reliability` marker, so `pytest -m reliability` (make reliability) runs them alone."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from .. import _helpers
from ..conftest import DEMO, TEST_OUTPUT

REPORTS = TEST_OUTPUT


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.reliability)


# The reliability tests' base spec; each test sets what it is about on top of it.
SPEC = {"experiment": "rel", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
        "prompts": ["neon city"], "seeds": [1], "ratios": ["1280:720"], "concurrency": 8,
        "emulator": {"render_scale": 0.1}, "scoring": {"frames": 4, "size": 64}}


def write_spec(folder: Path, name: str = "spec.yaml", **over) -> Path:
    return _helpers.write_spec(folder, SPEC, name, **over)


def tasks_per_cell(emulator) -> dict[tuple, list[dict]]:
    """The emulator's ledger grouped by what identifies a cell here (model, prompt, seed, ratio)."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for t in emulator.tasks():
        out[(t["model"], t["prompt"], t["seed"], t["ratio"])].append(t)
    return out


def report(name: str, data: dict) -> None:
    """Counts for the closing note, kept beside the screenshot in the test output folder."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"reliability_{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"\n{name}: {json.dumps(data, sort_keys=True)}")
