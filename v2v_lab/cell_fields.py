"""A cell's fields, declared once: what each is and where it shows. The MLflow params a cell's run
carries and the columns load_runs gives them (PARAM_COLUMNS), the factors compare() may group by
(GROUPABLE) and pairs on (PAIR_KEYS: every design factor but `by`), the design columns a rating study pairs outputs on
(DESIGN_COLUMNS), the run browser's filters and table columns: each is derived here from the one
table, so a new field is one line.

A model's own fields (duration, resolution, mode...) are not here: the catalog declares them
(api/models.yaml) and each of these derived lists is extended by a study's option columns where it
is read. sweeps.plan.Cell, tracking.records.CellFacts and the cell key's arguments are typed code
over the same names; tests/test_cell_fields.py holds them to this table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DESIGN_COLUMNS", "FIELDS", "FILTERS", "GROUPABLE", "MATCHED_ONLY", "PAIR_COLUMNS", "PAIR_KEYS", "PARAM_COLUMNS",
    "SWEEP_FIELDS", "TABLE_FIELDS", "CellField",
]


@dataclass(frozen=True)
class CellField:
    name: str                 # the Cell attribute, the MLflow param and the load_runs column
    what: str
    of_sweep: bool = False    # the same for every cell of a sweep (given by the sweep, not the cell)
    groupable: bool = False   # compare() and CompareView may group by it
    design: bool = False      # a rating study pairs outputs that agree on it (seed and repeat: see matched_only)
    matched_only: bool = False  # paired on only where the study matched it across groups (independent seeds)
    pair_key: bool = False    # compare() pairs cells that agree on it, whatever `by` is (except `by` itself)
    pair_on: str | None = None  # the column it is matched through where runs have it (a video by its content's hash)
    filter_attr: str | None = None  # the run browser's RunFilter attribute that keeps values of it
    in_table: bool = False    # a column of the run browser's table


# In the order load_runs gives the columns, and compare() and the run browser list them.
FIELDS: tuple[CellField, ...] = (
    CellField("model", "the model's name", groupable=True, design=True, pair_key=True, filter_attr="models",
              in_table=True),
    CellField("seed", "the seed sent (or drawn for an unseeded model)", groupable=True, design=True,
              matched_only=True, pair_key=True, filter_attr="seeds", in_table=True),
    CellField("ratio", "the output ratio ('none' for a model without one)", groupable=True, design=True,
              pair_key=True, filter_attr="ratios", in_table=True),
    CellField("prompt", "the prompt (its first 250 characters; the whole text is prompt.txt)", groupable=True,
              design=True, pair_key=True, pair_on="prompt_sha", in_table=True),
    CellField("prompt_sha", "the whole prompt's hash"),
    CellField("reference", "the reference image's file name ('none' without one)", groupable=True, design=True,
              pair_key=True),
    CellField("video", "the source clip's file name (or its address)", groupable=True, design=True, pair_key=True,
              pair_on="video_sha"),
    CellField("video_sha", "the source clip's content hash"),
    CellField("provider", "where the cell was sent", of_sweep=True, design=True),
    CellField("api_version", "the API version sent", of_sweep=True),
    CellField("repeat", "the repeat of an unseeded or repeated cell, 0 first", design=True, matched_only=True,
              pair_key=True),
)

PARAM_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)
SWEEP_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.of_sweep)
GROUPABLE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.groupable)
DESIGN_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.design)
MATCHED_ONLY: tuple[str, ...] = tuple(f.name for f in FIELDS if f.matched_only)
PAIR_KEYS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.pair_key)
# Each pair key's columns, the one to match on first: its pair_on column, then its own.
PAIR_COLUMNS: dict[str, tuple[str, ...]] = {f.name: (f.pair_on, f.name) if f.pair_on else (f.name,)
                                            for f in FIELDS if f.pair_key}
FILTERS: tuple[tuple[str, str], ...] = tuple((f.name, f.filter_attr) for f in FIELDS if f.filter_attr)
TABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.in_table)
