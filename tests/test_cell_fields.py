"""A cell's fields are declared once (v2v_lab/cell_fields.py); the typed code over them follows it."""

from __future__ import annotations

import dataclasses
import typing

from v2v_lab import cell_fields
from v2v_lab.dashboard.viewmodel import TABLE_COLUMNS, RunFilter
from v2v_lab.rating.pairs import DESIGN_COLUMNS
from v2v_lab.sweeps.plan import Cell
from v2v_lab.tracking.comparison import GROUPABLE, PAIR_KEYS
from v2v_lab.tracking.records import CellFacts, cell_record
from v2v_lab.tracking.schema import PARAM_COLUMNS


def test_every_list_of_cell_fields_is_derived_from_the_one_table():
    assert tuple(f.name for f in cell_fields.FIELDS) == PARAM_COLUMNS
    assert set(GROUPABLE) <= set(DESIGN_COLUMNS) <= set(PARAM_COLUMNS)
    assert (PAIR_KEYS, GROUPABLE, DESIGN_COLUMNS) == (cell_fields.PAIR_KEYS, cell_fields.GROUPABLE,
                                                     cell_fields.DESIGN_COLUMNS)
    assert TABLE_COLUMNS[1:1 + len(cell_fields.TABLE_FIELDS)] == cell_fields.TABLE_FIELDS
    attrs = {f.name for f in dataclasses.fields(RunFilter)}
    assert all(attr in attrs for _, attr in cell_fields.FILTERS)


def test_the_cell_and_the_records_protocol_carry_every_field_a_cell_holds():
    own = [f.name for f in cell_fields.FIELDS if not f.of_sweep]
    cell_attrs = {f.name for f in dataclasses.fields(Cell)} | {"prompt_sha"}
    assert set(own) <= cell_attrs
    assert set(own) <= set(typing.get_type_hints(CellFacts)) | {n for n in dir(CellFacts) if not n.startswith("_")}


def test_a_record_writes_a_param_for_every_field_and_a_filter_keeps_by_each():
    cell = Cell(key="k", video="/clips/a.mp4", video_sha="f" * 64, model="aleph2", prompt="p" * 300, seed=3,
                ratio=None, reference=None, content_moderation=None, repeat=0, input_seconds=5.0,
                output_seconds=5.0, credits=140.0, options={"duration": 5})
    record = cell_record(cell, experiment="e", provider="local", api_version="2024-11-06", user_tags={},
                         status="succeeded", task_id="t")
    assert list(record.params)[:len(PARAM_COLUMNS)] == list(PARAM_COLUMNS)
    assert record.params["ratio"] == "none" and record.params["reference"] == "none"
    assert record.params["video"] == "a.mp4" and record.params["video_sha"] == "f" * 16
    assert len(record.params["prompt"]) == 250 and record.params["provider"] == "local"
    assert record.params["duration"] == "5"

    import pandas as pd
    runs = pd.DataFrame({"model": ["a", "b", "a"], "seed": [1, 1, 2], "ratio": ["x", "y", "x"], "status": ["s"] * 3,
                         "prompt": ["p"] * 3})
    for column, attr in cell_fields.FILTERS:
        kept_value = runs[column].iloc[0]
        kept = RunFilter(**{attr: (kept_value,)}).apply(runs)
        assert set(kept[column]) == {kept_value} and len(kept) == (runs[column] == kept_value).sum(), column
