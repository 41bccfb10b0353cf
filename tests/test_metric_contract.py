"""The metric contract, held by a reference tester as torchmetrics holds its metrics.

Every registered metric (built-in, installed plugins, and the sample plugin in tests/plugin_pkg)
runs through score() on small synthetic clips whose answers are known: a still clip against
itself (each comparison metric's best), a damage that must move it in its declared direction,
its values inside its declared bounds; and against an independent reference where one exists
(scikit-image's SSIM, VBench's flicker formula, numpy's gradients).
Then the direction itself: a frozen output must rank below one that keeps the source's motion on
temporal_consistency_rel (best at 1), in every consumer that reads a direction.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage.metrics import structural_similarity

from v2v_lab import InputError, score
from v2v_lab.metrics import BUILTIN_METRICS, REGISTRY, Metric, ScoreReport
from v2v_lab.scoring_config import DEFAULT_SCORING, ScoringConfig

from .conftest import moving_frames

ROOT = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 6, 96  # small: the whole file runs in a few seconds


def sample_plugin() -> Metric:
    """The sample plugin's metric, imported from its source (tests/test_plugins.py pip-installs it)."""
    sys.path.insert(0, str(ROOT / "tests" / "plugin_pkg"))
    try:
        import v2v_lab_colour_metric
    finally:
        sys.path.pop(0)
    return v2v_lab_colour_metric.METRIC


PLUGIN = sample_plugin()
ALL_METRICS: dict[str, Metric] = {**REGISTRY, PLUGIN.name: REGISTRY.get(PLUGIN.name, PLUGIN)}


# -- the clips and their reports, scored once ------------------------------------------------------

def still(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [frames[0]] * len(frames)


def red_box(n: int = 24) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.full((96, 160, 3), 40, np.uint8)
        f[20:76, 10 + 3 * i:70 + 3 * i] = (230, 0, 0)  # RGB
        out.append(f)
    return out


@pytest.fixture(scope="module")
def clips(clip_factory) -> dict[str, str]:
    pan = moving_frames(30)
    rng = np.random.default_rng(5)
    flat = [np.full((96, 160, 3), 128, np.uint8)] * 24
    made = {
        "pan": pan,
        "still": still(pan),
        "noisy": [np.clip(f + rng.normal(0, 40, f.shape), 0, 255).astype(np.uint8) for f in pan],
        "shuffled": [pan[i] for i in rng.permutation(len(pan))],
        "blurred": [cv2.GaussianBlur(f, (0, 0), 4) for f in pan],
        "flashing": [np.clip(f.astype(int) + (80 if k % 2 else -80), 0, 255).astype(np.uint8)
                     for k, f in enumerate(pan)],
        "flat": flat,
        "red": red_box(),
        "grey_box": [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in red_box()],
    }
    return {name: clip_factory(f"contract_{name}.mp4", frames) for name, frames in made.items()}


@pytest.fixture(scope="module")
def reports(clips) -> Callable[[str, str], ScoreReport]:
    done: dict[tuple[str, str], ScoreReport] = {}

    def get(source: str, output: str) -> ScoreReport:
        if (source, output) not in done:
            names = [n for n in ALL_METRICS if n in REGISTRY]
            report = score(clips[source], clips[output], names, frames=FRAMES, size=SIZE, prompt="a red car")
            if PLUGIN.name not in REGISTRY:  # the sample plugin, on the same frames, as score() would run it
                result = PLUGIN.compute(report.frames)
                report.values[PLUGIN.name], report.series[PLUGIN.name] = result.value, list(result.series)
            done[(source, output)] = report
        return done[(source, output)]

    return get


# -- what each metric is known to answer ------------------------------------------------------------

@dataclass(frozen=True)
class Known:
    """A metric's known answers: `exact` (source, output, value, tolerance) cases, and a damage
    (source, clean output, damaged output) that must read worse in the metric's direction."""

    exact: tuple[tuple[str, str, float, float], ...]
    damage: tuple[str, str, str]


BEST = math.nan  # stands for "the metric's declared best"
KNOWN: dict[str, Known] = {
    "ssim_source": Known((("still", "still", BEST, 1e-9), ("pan", "pan", BEST, 1e-9)), ("pan", "pan", "noisy")),
    "structure": Known((("still", "still", BEST, 1e-6), ("pan", "pan", BEST, 1e-6)), ("pan", "pan", "shuffled")),
    "temporal_consistency": Known((("still", "still", BEST, 1e-9),), ("pan", "pan", "shuffled")),
    # 1 is as steady as the source: identity on real motion, and a still clip against itself.
    "temporal_consistency_rel": Known((("still", "still", BEST, 1e-9), ("pan", "pan", BEST, 1e-9)),
                                      ("pan", "pan", "still")),  # frozen: steadier than the source, worse
    "warp_error": Known((("still", "still", BEST, 1e-9),), ("pan", "pan", "shuffled")),
    # No motion against a 2 px/frame pan: the endpoint error is the pan itself.
    "motion_epe": Known((("still", "still", BEST, 1e-9), ("pan", "pan", BEST, 1e-9), ("pan", "still", 2.0, 0.3)),
                        ("pan", "pan", "still")),
    "flicker": Known((("still", "still", BEST, 1e-9),), ("pan", "pan", "flashing")),
    # A flat frame has no active block: PIQE's worst, by its definition.
    "piqe": Known((("flat", "flat", 100.0, 1e-9),), ("pan", "pan", "blurred")),
    # The prompt says red: a grey copy has none of it; the red box covers 56 x 60 of 96 x 160 pixels.
    "prompt_colour": Known((("red", "grey_box", 0.0, 1e-9), ("red", "red", 56 * 60 / (96 * 160), 0.03)),
                           ("red", "red", "grey_box")),
}


def test_every_builtin_metric_and_the_sample_plugin_have_known_answers():
    assert set(BUILTIN_METRICS) | {PLUGIN.name} <= set(KNOWN), set(BUILTIN_METRICS) - set(KNOWN)


@pytest.mark.parametrize("name", list(ALL_METRICS))
def test_known_answers(name, reports):
    metric = ALL_METRICS[name]
    if name not in KNOWN:
        pytest.skip(f"{name}: an installed plugin with no known answers here (its bounds are still checked)")
    for source, output, want, tol in KNOWN[name].exact:
        want = metric.best if math.isnan(want) else want
        got = reports(source, output).values[name]
        assert got == pytest.approx(want, abs=tol), (name, source, output, got, want)


@pytest.mark.parametrize("name", list(ALL_METRICS))
def test_a_known_damage_moves_it_in_its_declared_direction(name, reports):
    metric = ALL_METRICS[name]
    if name not in KNOWN:
        pytest.skip(f"{name}: an installed plugin with no known damage here")
    source, clean, damaged = KNOWN[name].damage
    good, bad = reports(source, clean).values[name], reports(source, damaged).values[name]
    assert metric.better(good, bad) and not metric.better(bad, good), (name, metric.direction, good, bad)
    # and no value reads better than the declared best
    assert not metric.better(good, metric.best) and not metric.better(bad, metric.best)


@pytest.mark.parametrize("name", list(ALL_METRICS))
def test_values_and_series_stay_within_the_declared_bounds(name, reports):
    metric = ALL_METRICS[name]
    lo, hi = metric.value_range
    assert lo <= metric.best <= hi and lo <= metric.worst <= hi
    for source, output in (("pan", "pan"), ("pan", "noisy"), ("pan", "shuffled"), ("pan", "still"),
                           ("pan", "flashing"), ("red", "red")):
        report = reports(source, output)
        for v in [report.values[name], *report.series[name]]:
            assert math.isnan(v) or lo - 1e-9 <= v <= hi + 1e-9, (name, output, v, (lo, hi))


# -- references -------------------------------------------------------------------------------------

def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=255, channel_axis=-1))


def structure_reference(src: np.ndarray, out: np.ndarray) -> float:
    """structure's definition (version 2) in plain numpy/scipy: colour gradient energy after a
    sigma-0.5 Gaussian, Pearson correlation."""
    from scipy import ndimage

    def energy(f: np.ndarray) -> np.ndarray:
        total = np.zeros(f.shape[:2])
        for c in range(f.shape[2]):  # channel by channel: scipy's sobel would smooth across channels too
            x = ndimage.gaussian_filter(f[..., c].astype(np.float64), sigma=0.5, mode="mirror", truncate=4.0)
            total += ndimage.sobel(x, axis=1, mode="mirror") ** 2 + ndimage.sobel(x, axis=0, mode="mirror") ** 2
        return total[2:-2, 2:-2]

    return max(0.0, float(np.corrcoef(energy(src).ravel(), energy(out).ravel())[0, 1]))


REFERENCES: dict[str, tuple[Callable, float]] = {
    "ssim_source": (lambda f: np.mean([sk_ssim(a, b) for a, b in zip(f.src_a, f.out_a, strict=True)]), 1e-6),
    "temporal_consistency": (lambda f: np.mean([sk_ssim(a, b) for a, b in zip(f.out_a, f.out_b, strict=True)]), 1e-6),
    "temporal_consistency_rel": (
        lambda f: np.mean([sk_ssim(a, b) for a, b in zip(f.out_a, f.out_b, strict=True)])
        / np.mean([sk_ssim(a, b) for a, b in zip(f.src_a, f.src_b, strict=True)]), 1e-6),
    "flicker": (lambda f: np.mean([(255 - np.abs(a.astype(float) - b.astype(float)).mean()) / 255
                                   for a, b in zip(f.out_a, f.out_b, strict=True)]), 1e-9),
    "structure": (lambda f: np.mean([structure_reference(a, b) for a, b in zip(f.src_a, f.out_a, strict=True)]),
                  2e-3),
    # piqe has no reference here: pypiqe, the reference port, is not a dependency (nothing is
    # skipped in CI); its known answers (a flat frame is 100) are checked above.
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_its_reference_implementation(name, reports):
    reference, tol = REFERENCES[name]
    for output in ("noisy", "blurred", "shuffled"):
        report = reports("pan", output)
        assert report.values[name] == pytest.approx(reference(report.frames), abs=tol), (name, output)


# -- the direction, through every consumer ---------------------------------------------------------

@pytest.fixture(scope="module")
def frozen_against_kept(clips, clip_factory) -> pd.DataFrame:
    """Runs of one study: per seed, an output that keeps the source's motion (a colour grade, a
    little noise) and one frozen on the first frame, scored on temporal_consistency_rel."""
    _clip = clip_factory
    rows = []
    # Six seeds: the fewest pairs at which compare()'s exact sign-flip test can reach p < 0.05 (2/2^6).
    for seed in range(6):
        rng = np.random.default_rng(seed)
        pan = moving_frames(30, seed=seed)
        graded = [np.clip(f * [1.1, 0.95, 0.9] + rng.normal(0, 2, f.shape), 0, 255).astype(np.uint8) for f in pan]
        source = clips["pan"] if seed == 0 else _clip(f"contract_src{seed}.mp4", pan)
        for model, frames in (("keeps", graded), ("frozen", still(graded))):
            value = score(source, _clip(f"contract_{model}{seed}.mp4", frames), ["temporal_consistency_rel"],
                          frames=FRAMES, size=SIZE).values["temporal_consistency_rel"]
            rows.append({"run_id": f"{model}{seed}", "model": model, "prompt": "p", "seed": seed, "ratio": "r",
                         "video_sha": f"v{seed}", "repeat": 0, "status": "succeeded",
                         "temporal_consistency_rel": value})
    return pd.DataFrame(rows)


def test_a_frozen_output_ranks_below_one_that_keeps_the_source_motion_everywhere(frozen_against_kept):
    from v2v_lab.cli import _sorted_by_metric
    from v2v_lab.dashboard.charts import axis_label, axis_title
    from v2v_lab.dashboard.compare_view import summary_html
    from v2v_lab.rating.analysis import metric_agreement_frame
    from v2v_lab.tracking.comparison import compare_frame

    runs = frozen_against_kept
    metric = "temporal_consistency_rel"
    kept = runs[runs.model == "keeps"].set_index("seed")[metric]
    frozen = runs[runs.model == "frozen"].set_index("seed")[metric]
    # The premise: frozen is above 1 (steadier than its moving source), by more than the kept one is off 1.
    assert (frozen > 1.02).all() and ((kept - 1).abs() < (frozen - 1).abs()).all(), (kept, frozen)

    # Agreement: raters who always chose the output that keeps the motion agree with the metric.
    ratings = pd.DataFrame([{"question": "structure", "left_run": f"keeps{s}", "right_run": f"frozen{s}",
                             "choice": "left", "winner": f"keeps{s}"} for s in range(4)])
    agreement = metric_agreement_frame(ratings, runs[["run_id", metric]]).set_index("metric")
    assert agreement.loc[metric, "agreement"] == 1.0 and agreement.loc[metric, "direction"] == "target"

    # compare: the frozen group is worse than the baseline in the metric's direction, and ranked below it.
    table = compare_frame(runs, by="model", metric=metric, baseline="keeps", n_boot=200).set_index("group")
    assert table.loc["keeps", "rank"] == 1 and table.loc["frozen", "rank"] == 2
    assert table.loc["frozen", "gain"] < 0 and table.loc["frozen", "gain_ci_high"] < 0
    assert table.loc["frozen", "diff"] > 0  # the raw difference is up: read raw, frozen would have "won"
    assert table.loc["frozen", "verdict"] == "worse" and table.loc["frozen", "p_holm"] < 0.05
    assert "<td class='v2v-worse'>worse</td>" in summary_html(table.reset_index(), "model", metric, "keeps")

    # runs --sort: best first is the one nearest 1.
    order = _sorted_by_metric(runs, metric)["model"].tolist()
    assert order[:4] == ["keeps"] * 4, order

    # The charts say where its best is.
    assert axis_title(metric) == "temporal_consistency_rel (best at 1)"
    assert "best at 1" in axis_label(metric)


def test_a_plugin_that_declares_only_worst_and_best_keeps_its_derived_direction():
    def compute(frames):  # never called
        raise AssertionError

    old_style = Metric("old_plugin", "a plugin written before directions", 10.0, 0.0, compute)
    assert old_style.direction == "lower" and old_style.higher_is_better is False
    assert old_style.better(1.0, 2.0) and old_style.describe() == "range 0..10, lower is better"
    assert PLUGIN.direction == "higher"  # the sample plugin declares worst 0, best 1 only
    target = Metric("near_one", "best at 1", 0.0, 1.0, compute, bounds=(0.0, 2.0), direction="target", unit="ratio")
    assert target.target == 1.0 and target.better(0.95, 1.2) and not target.better(1.05, 0.95)
    assert target.higher_is_better is False and target.describe() == "range 0..2 ratio, best at 1"
    with pytest.raises(ValueError, match="direction 'higher' but worst 10 and best 0"):
        Metric("contradiction", "", 10.0, 0.0, compute, direction="higher")
    with pytest.raises(ValueError, match="direction"):
        Metric("unknown", "", 0.0, 1.0, compute, direction="sideways")  # type: ignore[arg-type]


# -- the scoring configuration: one range, refused alike by the spec, the CLI and score() -----------

@pytest.mark.parametrize("field,value", [("size", ScoringConfig.SIZE.low - 1), ("size", ScoringConfig.SIZE.high + 1),
                                         ("frames", ScoringConfig.FRAMES.low - 1)])
def test_spec_cli_and_score_refuse_the_same_value_with_the_same_range(field, value, clips, tmp_path):
    import yaml

    from v2v_lab.sweeps.spec import parse_spec

    allowed = (ScoringConfig.SIZE if field == "size" else ScoringConfig.FRAMES).allowed
    bound = str(ScoringConfig.SIZE.low if field == "size" else ScoringConfig.FRAMES.low)
    spec = {"experiment": "t", "provider": "local", "videos": [clips["pan"]], "models": ["gen4_aleph"],
            "prompts": ["p"], "seeds": [1], "scoring": {field: value}}
    with pytest.raises(InputError) as in_spec:
        parse_spec(yaml.safe_dump(spec))
    assert str(in_spec.value).startswith(f"scoring.{field} ") and allowed in str(in_spec.value)
    with pytest.raises(InputError) as in_score:
        score(clips["pan"], clips["pan"], ["flicker"], **{field: value})
    assert in_score.value.field == field and in_score.value.allowed == allowed
    done = subprocess.run([sys.executable, "-m", "v2v_lab.cli", "score", clips["pan"], clips["pan"], f"--{field}",
                           str(value)], capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and f"--{field}" in lines[0] and allowed in lines[0], done.stderr
    assert bound in allowed


def test_the_defaults_are_the_configurations():
    import inspect

    from v2v_lab.cli_args import build_parser
    from v2v_lab.media.sampling import sample_aligned
    from v2v_lab.rescoring import rescore
    from v2v_lab.sweeps.spec import Scoring

    for fn in (score, rescore, sample_aligned):
        params = inspect.signature(fn).parameters
        assert (params["frames"].default, params["size"].default, params["crop"].default) == (
            DEFAULT_SCORING.frames, DEFAULT_SCORING.size, DEFAULT_SCORING.crop), fn
    assert (Scoring().frames, Scoring().size, Scoring().crop) == (16, 256, "center") == (
        DEFAULT_SCORING.frames, DEFAULT_SCORING.size, DEFAULT_SCORING.crop)
    for command in (["score", "a", "b"], ["rescore", "e"]):
        args = build_parser().parse_args(command)
        assert (args.frames, args.size, args.crop) == (16, 256, "center"), command
