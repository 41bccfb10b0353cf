"""The validity table: each metric responds to what it claims and not to what it should ignore.

Controlled edits of the two shipped clips (the demo's animation and a real street shot), written
as MP4s and scored through score(), the sweep's own path. Margins are stated per assertion; the
table printed by bench/validity.py is in docs/metrics.md.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from v2v_lab.metrics import BUILTIN_METRICS, REGISTRY
from v2v_lab.validity import EDITS, SHIPPED_CLIPS, Edit, apply_edit, load_clip, validity_table

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> pd.DataFrame:
    return validity_table(SHIPPED_CLIPS, list(BUILTIN_METRICS), workdir=tmp_path_factory.mktemp("validity"))


def family(table: pd.DataFrame, clip: str, fam: str, metric: str) -> pd.Series:
    rows = table[(table["clip"] == clip) & (table["family"] == fam)]
    return rows.set_index("edit")[metric]


def value(table: pd.DataFrame, clip: str, edit: str, metric: str) -> float:
    return float(table[(table["clip"] == clip) & (table["edit"] == edit)][metric].iloc[0])


CLIPS = [Path(c).stem for c in SHIPPED_CLIPS]


def test_every_metric_is_scored_on_every_edit_of_both_clips(table):
    assert sorted(table["clip"].unique()) == sorted(CLIPS)
    assert len(table) == len(CLIPS) * len(EDITS)
    for name in BUILTIN_METRICS:
        assert table[name].notna().all(), name
        lo, hi = REGISTRY[name].value_range
        assert table[name].between(lo, hi).all(), name
    for clip in CLIPS:  # the unedited clip, re-encoded: the reference row
        assert value(table, clip, "identity", "structure") > 0.999
        assert value(table, clip, "identity", "motion_epe") < 0.01


@pytest.mark.parametrize("clip", CLIPS)
def test_structure_ranks_every_appearance_edit_above_every_structural_damage(table, clip):
    appearance = family(table, clip, "appearance", "structure")
    structural = family(table, clip, "structural", "structure")
    # The margin: the worst appearance edit (the stylisation) over the best damage (heavy blur).
    # Version 1 (gradient magnitude after sigma 1) held 0.335 and 0.456 here; version 2 holds 0.50
    # and 0.64 (docs/metrics.md).
    assert appearance.min() > structural.max() + 0.4, (appearance, structural)
    for edit in ("colour_grade", "hue_rotation", "grayscale"):  # pure colour: near 1
        assert appearance[edit] > 0.97
    assert appearance["posterize"] > 0.9
    for edit in ("another_clip", "hflip", "shuffle_blocks"):  # nothing of the source's layout: near 0
        assert structural[edit] < 0.1
    assert structural["warp"] < 0.25


MILD_BLUR = Edit("blur_sigma3", "structural", "Gaussian blur, sigma 3 px at the scoring size",
                 lambda clip, other: np.stack([cv2.GaussianBlur(f, (0, 0), 3.0) for f in clip]))


def test_structure_keeps_a_stylisation_above_a_milder_blur_on_both_clips(tmp_path):
    """The near-tie footage outside the repository showed (a blur 0.592, a stylisation 0.593), on
    the shipped clips: a sigma-3 blur at the scoring size, what a sigma-8 blur of 720p footage
    becomes there, stays at least 0.1 below the stylisation (version 1 kept 0.06 on bigbuckbunny)."""
    stylise = next(e for e in EDITS if e.name == "stylise")
    table = validity_table(SHIPPED_CLIPS, ["structure"], (stylise, MILD_BLUR), workdir=tmp_path)
    for clip in CLIPS:
        gap = value(table, clip, "stylise", "structure") - value(table, clip, "blur_sigma3", "structure")
        assert gap > 0.1, (clip, gap)


@pytest.mark.parametrize("clip", CLIPS)
def test_motion_epe_is_worse_under_every_temporal_damage_than_any_appearance_edit(table, clip):
    appearance = family(table, clip, "appearance", "motion_epe")
    temporal = family(table, clip, "temporal", "motion_epe")
    assert temporal.min() > 1.2 * appearance.max(), (appearance, temporal)
    assert temporal[["jitter", "temporal_shuffle"]].min() > 5 * appearance.max()


@pytest.mark.parametrize("clip", CLIPS)
def test_temporal_consistency_rel_and_flicker_flag_temporal_damage(table, clip):
    tc_app = family(table, clip, "appearance", "temporal_consistency_rel")
    tc_tmp = family(table, clip, "temporal", "temporal_consistency_rel")
    assert tc_tmp[["jitter", "temporal_shuffle"]].max() < tc_app.min() - 0.2
    fl_app = family(table, clip, "appearance", "flicker")
    fl_tmp = family(table, clip, "temporal", "flicker")
    assert fl_tmp[["flicker", "jitter", "temporal_shuffle"]].max() < fl_app.min() - 0.03


@pytest.mark.parametrize("clip", CLIPS)
def test_the_weak_spots_stay_visible(table, clip):
    """What the table shows some metrics miss, asserted so that it stays written down and true."""
    # ssim_source falls under a pure colour change, which structure ignores.
    for edit in ("colour_grade", "hue_rotation"):
        ssim_drop = 1 - value(table, clip, edit, "ssim_source")
        structure_drop = 1 - value(table, clip, edit, "structure")
        assert ssim_drop > 0.02 and ssim_drop > 5 * structure_drop, (edit, ssim_drop, structure_drop)
    # Dropped and repeated frames hide from temporal_consistency_rel and flicker (within the
    # appearance edits' spread), which motion_epe catches (the test above).
    tc_app = family(table, clip, "appearance", "temporal_consistency_rel")
    assert value(table, clip, "drop_repeat", "temporal_consistency_rel") > tc_app.min()
    # warp_error rises for structural damage too: it measures the output's own steadiness along
    # the source's motion, so any change of content that moves differently counts.
    assert value(table, clip, "hflip", "warp_error") > 2 * family(table, clip, "appearance", "warp_error").max()
    # piqe judges frames one by one: temporal damage leaves it within 5 points of the clean clip.
    clean = value(table, clip, "identity", "piqe")
    assert (family(table, clip, "temporal", "piqe") - clean).abs().max() < 5


def test_piqe_ranks_blur_of_increasing_strength_in_order(tmp_path):
    """PIQE on blurred copies of real frames (bench/quality.py does blockiness and noise too)."""
    from v2v_lab.metrics.piqe import piqe_frame

    for clip in SHIPPED_CLIPS:
        frames = load_clip(clip)[::12][:4]
        scores = [np.mean([piqe_frame(cv2.GaussianBlur(f, (0, 0), s)) for f in frames]) for s in (1.0, 2.0, 4.0)]
        assert scores[0] < scores[1] < scores[2], scores


def test_edits_keep_shape_and_length_and_are_reproducible():
    clip = load_clip(SHIPPED_CLIPS[1], size=64, max_frames=12)
    for edit in EDITS:
        out = apply_edit(edit, clip)
        assert out.shape == clip.shape and out.dtype == np.uint8, edit.name
        assert np.array_equal(out, apply_edit(edit.name, clip)), edit.name  # seeded by the edit's name


def _doc_table() -> tuple[list[str], dict[tuple[str, str, str], str]]:
    """docs/metrics.md's validity table: its clips in cell order, and each number as printed by
    (edit, clip, metric)."""
    doc = (ROOT / "docs" / "metrics.md").read_text()
    block = doc.split("<!-- validity-table:begin -->")[1].split("<!-- validity-table:end -->")[0]
    lines = block.strip().splitlines()
    clips = lines[0].removeprefix("Each cell: ").split(".")[0].split(" / ")
    header = next(line for line in lines if line.startswith("| edit"))
    metrics = [c.strip() for c in header.strip("|").split("|")[2:]]
    printed = {}
    for line in lines[lines.index(header) + 2:]:
        edit, _, *cells = (c.strip() for c in line.strip("|").split("|"))
        for metric, cell in zip(metrics, cells, strict=True):
            for clip, number in zip(clips, cell.split(" / "), strict=True):
                printed[(edit, clip, metric)] = number
    return clips, printed


def _agrees(printed: str, now: float) -> bool:
    """A printed number is today's value to its last digit (1.5 units of it: rounding and another
    decoder's last bit), or within 1% of it."""
    unit = 10.0 ** -len(printed.split(".")[1]) if "." in printed else 1.0
    return abs(float(printed) - now) <= max(1.5 * unit, 0.01 * abs(now))


def test_the_docs_carry_the_table_for_every_builtin_metric(table):
    # The numbers themselves, against the table measured now: stale numbers (a metric changed and
    # the table not written again by `python bench/validity.py --write`) fail here.
    clips, printed = _doc_table()
    assert clips == CLIPS
    assert {(e, m) for e, _, m in printed} == {(e.name, m) for e in EDITS for m in BUILTIN_METRICS}
    stale = [f"{edit} {clip} {metric}: docs {number}, now {value(table, clip, edit, metric):.4g}"
             for (edit, clip, metric), number in printed.items() if not _agrees(number, value(table, clip, edit, metric))]
    assert not stale, "docs/metrics.md is stale (python bench/validity.py --write): " + "; ".join(stale[:8])
    assert (ROOT / "docs" / "validity.png").stat().st_size > 10_000
