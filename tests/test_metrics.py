"""Metrics on real footage and on clips whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from v2v_lab import InputError, MediaError, score
from v2v_lab.media import open_video, probe_video
from v2v_lab.media.sampling import sample_aligned
from v2v_lab.media.writer import write_mp4
from v2v_lab.metrics import REGISTRY
from v2v_lab.metrics._ssim import ssim

from .conftest import moving_frames


def test_clip_against_itself_is_perfect(demo_clip):
    report = score(demo_clip, demo_clip)
    assert report.values["ssim_source"] == pytest.approx(1.0, abs=1e-9)
    assert report.values["temporal_consistency_rel"] == pytest.approx(1.0, abs=1e-9)
    assert report.values["warp_error"] < 0.001
    assert len(report.series["ssim_source"]) == report.params["frames"] == 16
    assert report.params["warp_error.flow"] == "opencv_dis_ultrafast"


def test_ssim_matches_scikit_image_to_1e6(demo_clip, clip_factory):
    noisy = [np.clip(f.astype(int) + np.random.default_rng(1).normal(0, 20, f.shape), 0, 255).astype(np.uint8)
             for f in moving_frames(30)]
    out = clip_factory("noisy.mp4", noisy)
    frames = sample_aligned(clip_factory("clean.mp4", moving_frames(30)), out, frames=8, size=96)
    for a, b in zip(frames.src_a, frames.out_a, strict=True):
        want = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255, channel_axis=-1)
        assert abs(ssim(a, b) - want) < 1e-6
    report = score(clip_factory("clean2.mp4", moving_frames(30)), out, frames=8, size=96)
    want = np.mean([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=255, channel_axis=-1)
                    for a, b in zip(frames.src_a, frames.out_a, strict=True)])
    assert report.values["ssim_source"] == pytest.approx(want, abs=1e-6)


def test_flicker_matches_vbench_formula(small_clip):
    frames = sample_aligned(small_clip, small_clip, frames=6, size=96)
    want = np.mean([(255 - np.abs(a.astype(float) - b.astype(float)).mean()) / 255
                    for a, b in zip(frames.out_a, frames.out_b, strict=True)])
    assert score(small_clip, small_clip, ["flicker"], frames=6, size=96).values["flicker"] == pytest.approx(want)


def test_blur_and_noise_lower_ssim_monotonically(clip_factory):
    src_frames = moving_frames(24)
    src = clip_factory("src.mp4", src_frames)
    blur = [score(src, clip_factory(f"blur{s}.mp4", [cv2.GaussianBlur(f, (0, 0), s) for f in src_frames]),
                  ["ssim_source"], frames=6, size=96).values["ssim_source"] for s in (0.8, 1.6, 3.2)]
    assert blur[0] > blur[1] > blur[2]
    rng = np.random.default_rng(0)
    noise = [score(src, clip_factory(f"noise{s}.mp4", [np.clip(f + rng.normal(0, s, f.shape), 0, 255)
                                                        .astype(np.uint8) for f in src_frames]),
                   ["ssim_source"], frames=6, size=96).values["ssim_source"] for s in (5, 15, 40)]
    assert noise[0] > noise[1] > noise[2]


def test_shuffled_frames_are_less_consistent(clip_factory):
    frames = moving_frames(48)
    src = clip_factory("order.mp4", frames)
    perm = np.random.default_rng(3).permutation(len(frames))
    shuffled = clip_factory("shuffled.mp4", [frames[i] for i in perm])
    good = score(src, src, frames=8, size=96).values
    bad = score(src, shuffled, frames=8, size=96).values
    assert bad["temporal_consistency"] < good["temporal_consistency"] - 0.1
    assert bad["warp_error"] > 5 * max(good["warp_error"], 1e-4)


def test_frozen_frame_has_no_flicker(clip_factory):
    frozen = clip_factory("frozen.mp4", [moving_frames(1)[0]] * 24)
    assert score(frozen, frozen, ["flicker"], frames=6, size=96).values["flicker"] == pytest.approx(1.0)


def test_reencoded_24fps_resized_copy_still_aligns(demo_clip, tmp_path):
    info = probe_video(demo_clip)
    reader = open_video(demo_clip, (1280, 720))
    t_out = np.arange(int(info.duration_s * 24)) / 24
    idx = [min(info.frame_count - 1, int(t * info.fps + 1e-6)) for t in t_out]
    frames = reader.get_frames(idx)
    out = tmp_path / "copy_24fps_1280x768.mp4"
    from v2v_lab.media import write_mp4

    # 1280x768 has another aspect than 1280x720: centre-crop policy makes them comparable.
    write_mp4(out, (cv2.resize(f[:, 40:1240], (1280, 768)) for f in frames), 24)
    report = score(demo_clip, str(out))
    assert report.values["ssim_source"] > 0.9


def test_every_metric_stays_in_its_declared_range_on_clean_and_damaged_clips(demo_clip, clip_factory):
    assert {"ssim_source", "temporal_consistency", "temporal_consistency_rel", "warp_error", "flicker"} <= set(REGISTRY)
    assert REGISTRY["warp_error"].direction == "lower" and REGISTRY["ssim_source"].direction == "higher"
    frames = moving_frames(48)
    rng = np.random.default_rng(3)
    damaged = {
        "identical": frames,
        "inverted": [255 - f for f in frames],  # SSIM below zero: the declared -1 bound is real
        "noise": [np.clip(f + rng.normal(0, 60, f.shape), 0, 255).astype(np.uint8) for f in frames],
        "shuffled": [frames[i] for i in rng.permutation(len(frames))],
        "flashing": [np.clip(f.astype(int) + (90 if k % 2 else -90), 0, 255).astype(np.uint8)
                     for k, f in enumerate(frames)],
    }
    source = clip_factory("range_src.mp4", frames)
    seen: dict[str, list[float]] = {name: [] for name in REGISTRY}
    for name, clip in damaged.items():
        report = score(source, clip_factory(f"range_{name}.mp4", clip), frames=8, size=96)
        for metric, value in report.values.items():
            lo, hi = REGISTRY[metric].value_range
            for v in [value, *report.series.get(metric, [])]:
                assert lo - 1e-9 <= v <= hi + 1e-9, (name, metric, v, (lo, hi))
            seen[metric].append(value)
    # The ranges are used, not only respected: each metric reaches its best on the identical clip
    # (ssim_source exactly) and moves well away from it under damage.
    for metric, values in seen.items():
        best, worst = REGISTRY[metric].best, REGISTRY[metric].worst
        spread = abs(best - worst) if np.isfinite(worst) else 1.0  # unbounded (motion_epe, px): 0.1 px
        assert max(abs(v - values[0]) for v in values[1:]) > 0.1 * spread, (metric, values)
    assert seen["ssim_source"][0] == pytest.approx(1.0, abs=0.02) and min(seen["ssim_source"]) < 0


def test_bad_inputs_name_the_file(tmp_path, demo_clip):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError, match="source"):
        score(str(missing), demo_clip)
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    with pytest.raises(MediaError, match="text.mp4"):
        score(demo_clip, str(text))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="0 bytes"):
        score(demo_clip, str(empty))
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(open(demo_clip, "rb").read()[:40_000])
    with pytest.raises(MediaError, match="trunc.mp4"):
        score(demo_clip, str(truncated))
    with pytest.raises(InputError, match="metrics"):
        score(demo_clip, demo_clip, ["nope"])


def test_pyav_fallback_reads_the_same_frames(demo_clip):
    a = open_video(demo_clip, (320, 180), backend="decord").get_frames([0, 50, 131, 500])
    b = open_video(demo_clip, (320, 180), backend="pyav").get_frames([0, 50, 131, 500])
    assert a.shape == b.shape == (4, 180, 320, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3  # scalers differ by rounding only


def test_temporal_consistency_pairs_match_scikit_image(small_clip, clip_factory):
    """The shared-moments pass computes every pair kind exactly as a direct SSIM would."""
    out = clip_factory("tc_out.mp4", [cv2.GaussianBlur(f, (0, 0), 1.5) for f in moving_frames(48)])
    report = score(small_clip, out, frames=6, size=96)
    f = report.frames

    def sk(a, b):
        return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255, channel_axis=-1)

    out_tc = [sk(a, b) for a, b in zip(f.out_a, f.out_b, strict=True)]
    src_tc = [sk(a, b) for a, b in zip(f.src_a, f.src_b, strict=True)]
    assert report.series["temporal_consistency"] == pytest.approx(out_tc, abs=1e-6)
    assert report.values["temporal_consistency_rel"] == pytest.approx(np.mean(out_tc) / np.mean(src_tc), abs=1e-6)


def test_warm_source_cache_gives_identical_scores_and_sees_edits(tmp_path, clip_factory):
    from v2v_lab.media.sampling import clear_source_cache

    frames = moving_frames(40)
    src = tmp_path / "src.mp4"
    write_mp4(src, frames, 24.0, crf=12)
    out = clip_factory("cache_out.mp4", [cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames])
    clear_source_cache()
    cold = score(src, out, frames=6, size=96)
    warm = score(src, out, frames=6, size=96)
    assert warm.values == cold.values and warm.series == cold.series
    # Rewriting the source (new bytes, new mtime) must not be served from the cache.
    write_mp4(src, frames[::-1], 24.0, crf=12)
    edited = score(src, out, frames=6, size=96)
    assert edited.values["ssim_source"] < cold.values["ssim_source"] - 0.01
