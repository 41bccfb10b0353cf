"""Every output format the endpoint returns reads as frames everywhere: score, posters, rescore, the views.

The formats are made here from the demo clip with PyAV (ProRes 422 and 4444 in .mov, with and
without AAC audio; 10-bit HEVC in .mp4; H.264 in .mov and .mp4; a .zip of PNG frames), small and
short, each a re-encode of the source's first frames, so each must score as near-identical structure.
Beside them, outputs that are not videos: each is a recorded failure with a one-line reason.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from v2v_lab.errors import MediaError
from v2v_lab.media.posters import write_contact_sheet, write_poster
from v2v_lab.media.preview import browser_playable
from v2v_lab.media.probe import probe_video
from v2v_lab.media.reader import open_video
from v2v_lab.metrics import score
from v2v_lab.rescoring import rescore
from v2v_lab.tracking.schema import ARTIFACT_OUTPUT, ARTIFACT_POSTER, SOURCE_TAG, STATUS_SUCCEEDED, STATUS_TAG
from v2v_lab.tracking.writer import SweepWriter

from .conftest import DEMO

W, H, N, FPS = 192, 108, 16, 25  # the demo clip's rate: each output frame is the source frame at its time

# name -> (file name, codec, pixel format, encoder options, with audio); what the endpoint returns
# for output_format mp4 / prores (422 .. 4444) / sdr_rec709_10bit / seedance2_5's mov.
VIDEOS = {
    "h264_mp4_audio": ("out.mp4", "libx264", "yuv420p", {}, True),
    "prores422": ("prores.mov", "prores_ks", "yuv422p10le", {"profile": "2"}, False),
    "prores4444_audio": ("prores4444.mov", "prores_ks", "yuva444p10le", {"profile": "4"}, True),
    "hevc10": ("hevc10.mp4", "libx265", "yuv420p10le", {"preset": "ultrafast", "x265-params": "log-level=none"},
               False),
    "h264_mov": ("quicktime.mov", "libx264", "yuv420p", {}, False),
}
# The decoder each is read with: chosen from the probe, before any decode (media/reader.py).
DECODERS = {"h264_mp4_audio": "decord", "prores422": "decord", "prores4444_audio": "decord", "hevc10": "pyav",
            "h264_mov": "decord", "png_zip": "png", "png16_zip": "png"}
NOT_VIDEOS = {
    "garbage": ("garbage.mp4", "FFmpeg cannot read it"),
    "html_page": ("error.mp4", "HTML page"),
    "empty_zip": ("empty.zip", "this zip holds nothing"),
    "zip_without_pngs": ("nopng.zip", "holds 2 other files"),
}


def _source_frames() -> list[av.VideoFrame]:
    with av.open(str(DEMO)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.reformat(width=W, height=H))
            if len(frames) == N:
                return frames
    raise AssertionError("the demo clip is shorter than the test needs")


def _encode(path: Path, codec: str, pix_fmt: str, options: dict[str, str], audio: bool,
            frames: list[av.VideoFrame]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        stream.options = options
        sound = container.add_stream("aac", rate=48000) if audio else None
        per_frame = 48000 // FPS
        for i, frame in enumerate(frames):
            picture = frame.reformat(format=pix_fmt)
            picture.pts, picture.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(picture))
            if sound is not None:
                tone = np.sin(np.arange(per_frame) / 10.0).astype(np.float32)[None] * 0.1
                chunk = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, i * per_frame, Fraction(1, 48000)
                container.mux(sound.encode(chunk))
        container.mux(stream.encode())
        if sound is not None:
            container.mux(sound.encode())


def _png_zip(path: Path, frames: list[av.VideoFrame], deep: bool = False) -> None:
    """Frames named without zero padding and stored out of order: play order is by number."""
    with zipfile.ZipFile(path, "w") as archive:
        for i in reversed(range(len(frames))):
            bgr = cv2.cvtColor(frames[i].to_ndarray(format="rgb24"), cv2.COLOR_RGB2BGR)
            if deep:  # a 16-bit PNG, as a 10-bit master exported to PNG is
                bgr = bgr.astype(np.uint16) * 257
            archive.writestr(f"seq/frame_{i}.png", cv2.imencode(".png", bgr)[1].tobytes())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    frames = _source_frames()
    made: dict[str, Path] = {}
    for name, (file, codec, pix_fmt, options, audio) in VIDEOS.items():
        made[name] = folder / file
        _encode(made[name], codec, pix_fmt, options, audio, frames)
    made["png_zip"], made["png16_zip"] = folder / "frames.zip", folder / "frames16.zip"
    _png_zip(made["png_zip"], frames)
    _png_zip(made["png16_zip"], frames, deep=True)
    for name, (file, _) in NOT_VIDEOS.items():
        made[name] = folder / file
    made["garbage"].write_bytes(np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    made["html_page"].write_text("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
                                 "<body><h1>502 Bad Gateway</h1></body></html>\n")
    zipfile.ZipFile(made["empty_zip"], "w").close()
    with zipfile.ZipFile(made["zip_without_pngs"], "w") as archive:
        archive.writestr("readme.txt", "no frames here")
        archive.writestr("frames/0001.jpg", b"\xff\xd8 not a png")
    return made


VIDEO_NAMES = [*VIDEOS, "png_zip", "png16_zip"]


def test_the_formats_are_what_the_endpoint_returns(outputs):
    """The made files are the real thing: codec, bit depth and audio as the endpoint's."""
    infos = {name: probe_video(outputs[name]) for name in VIDEO_NAMES}
    assert infos["prores422"].codec == "prores" and infos["prores422"].pix_fmt == "yuv422p10le"
    assert infos["prores4444_audio"].pix_fmt.startswith("yuva444p")
    assert infos["hevc10"].codec == "hevc" and infos["hevc10"].bit_depth == 10
    assert infos["png16_zip"].bit_depth == 16 and infos["png_zip"].pix_fmt == "rgb24"
    with av.open(str(outputs["prores4444_audio"])) as container:
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"
    for name in VIDEO_NAMES:
        assert (infos[name].width, infos[name].height, infos[name].frame_count) == (W, H, N), name


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_score_reads_every_format_as_the_source_itself(outputs, name):
    fps = FPS if name.endswith("zip") else None
    report = score(DEMO, outputs[name], ["ssim_source", "temporal_consistency"], frames=4, size=64,
                   sequence_fps=fps)
    assert not report.errors
    # A re-encode of the source's own frames: the same structure (an unaligned or wrongly
    # converted frame scores far lower: the source moves between frames).
    assert report.values["ssim_source"] > 0.9, report.values
    assert 0.8 < report.values["temporal_consistency"] <= 1.0
    assert report.params["decoder"] == DECODERS[name]
    assert report.frames is not None and report.frames.out_a.dtype == np.uint8 and report.frames.out_a.shape[-1] == 3


def test_a_frame_zip_plays_at_the_rate_it_is_given(outputs):
    """One place knows a zip's rate: the caller's (the model's output_fps), else 24."""
    assert probe_video(outputs["png_zip"]).fps == 24.0
    info = probe_video(outputs["png_zip"], sequence_fps=8)
    assert info.fps == 8 and info.duration_s == pytest.approx(N / 8)
    # Frames in play order by number (frame_2 before frame_10), whatever order the zip stores them in.
    frames = open_video(outputs["png_zip"], info=info).get_frames([2, 10])
    truth = [f.to_ndarray(format="rgb24") for f in _source_frames()]
    assert np.abs(frames[0].astype(int) - truth[2]).mean() < 1 and np.abs(frames[1].astype(int) - truth[10]).mean() < 1


def test_ten_bit_frames_become_8_bit_rgb_like_the_source(outputs):
    truth = _source_frames()[5].to_ndarray(format="rgb24").astype(int)
    for name in ("hevc10", "prores422", "prores4444_audio", "png16_zip"):
        frame = open_video(outputs[name]).get_frames([5])[0]
        assert frame.dtype == np.uint8 and frame.shape == (H, W, 3)
        assert np.abs(frame.astype(int) - truth).mean() < 8, name


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_posters_contact_sheets_and_previews_of_every_format(outputs, name, tmp_path):
    poster, sheet = tmp_path / "poster.png", tmp_path / "sheet.png"
    write_poster(outputs[name], poster)
    assert cv2.imread(str(poster)).shape == (H, W, 3)
    report = score(DEMO, outputs[name], ["ssim_source"], frames=3, size=64)
    assert report.frames is not None
    write_contact_sheet(sheet, report.frames.src_a, report.frames.out_a, report.times_s)
    assert cv2.imread(str(sheet)) is not None
    # What a browser plays: the H.264 mp4 as it is, anything else as an H.264 preview of it.
    playable = browser_playable(outputs[name])
    info = probe_video(playable)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and playable.suffix == ".mp4"
    assert (playable == outputs[name]) == (name == "h264_mp4_audio")


@pytest.mark.parametrize("name", list(NOT_VIDEOS))
def test_a_non_video_is_refused_in_one_line_saying_what_it_is(outputs, name):
    with pytest.raises(MediaError) as refused:
        score(DEMO, outputs[name], ["ssim_source"], frames=4, size=64)
    text = str(refused.value)
    assert "\n" not in text and NOT_VIDEOS[name][1] in text and refused.value.field == "output"
    with pytest.raises(MediaError):
        write_poster(outputs[name], outputs[name].with_suffix(".png"))


def test_score_command_says_a_non_video_in_one_line(outputs):
    cli = str(Path(sys.executable).with_name("v2v-lab"))
    done = subprocess.run([cli, "score", str(DEMO), str(outputs["html_page"]), "--frames", "4", "--size", "64"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "HTML page" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- the record: logged under its own suffix, read back by rescore and the views ------------------

LOGGED = ["h264_mp4_audio", "prores4444_audio", "hevc10", "h264_mov", "png_zip", "html_page", "empty_zip"]


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> Iterator[str]:
    """A SQLite store for this module's tests (made once: MLflow's migrations take seconds)."""
    folder = tmp_path_factory.mktemp("formats-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        env.setenv("V2V_LAB_HOME", str(folder / "state"))
        yield uri


@pytest.fixture(scope="module")
def logged(outputs, mlflow_store, tmp_path_factory) -> dict[str, str]:
    """One succeeded cell run per output, logged by the sweep's writer as a sweep logs a cell: the
    output (named output.mp4 by the caller, as every cell's is) and, for videos, its poster."""
    tmp_path = tmp_path_factory.mktemp("posters")
    writer = SweepWriter("formats", mlflow_store)
    runs: dict[str, str] = {}
    try:
        for seed, name in enumerate(LOGGED, 1):
            artifacts = {ARTIFACT_OUTPUT: str(outputs[name])}
            if name in VIDEO_NAMES:
                poster = tmp_path / f"{name}.png"
                write_poster(outputs[name], poster)
                artifacts[ARTIFACT_POSTER] = str(poster)
            params = {"model": "aleph2", "prompt": "a re-encode", "prompt_sha": "p", "seed": seed, "ratio": "none",
                      "video": DEMO.name, "video_sha": "v", "provider": "local", "api_version": "x",
                      "reference": "none", "repeat": 0}
            runs[name] = writer.log_cell(
                name=name, params=params, tags={STATUS_TAG: STATUS_SUCCEEDED, SOURCE_TAG: str(DEMO)}, metrics={},
                series={}, artifacts=artifacts, task=None, prompt="a re-encode", frames_csv=None)
    finally:
        writer.close()
    return runs


@pytest.mark.slow  # a Dask cluster, as rescore's own tests
def test_outputs_keep_their_suffix_and_rescore_reads_them(logged, mlflow_store):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_store)
    names = {name: {a.path for a in client.list_artifacts(rid)} for name, rid in logged.items()}
    assert "output.mov" in names["prores4444_audio"] and "output.zip" in names["png_zip"]
    assert "output.mp4" in names["h264_mp4_audio"] and "output.mp4" in names["hevc10"]  # as every older run
    assert "output.mov" in names["h264_mov"] and "output.zip" in names["empty_zip"]
    assert all(sum(n.startswith("output.") for n in held) == 1 for held in names.values())

    result = rescore("formats", ["ssim_source"], workers=1, frames=4, size=64, tracking_uri=mlflow_store)
    videos = {name for name in LOGGED if name in VIDEO_NAMES}
    assert set(result.written) == {logged[n] for n in videos}, result.summary()
    for name in videos:
        [key] = result.written[logged[name]]  # ssim_source, measured at this sampling
        assert key.startswith("ssim_source") and client.get_run(logged[name]).data.metrics[key] > 0.9, name
    # Not a video: that run's failure, in one line saying what the file is; never a crash.
    assert set(result.failed) == {logged["html_page"], logged["empty_zip"]} and not result.missing
    assert "HTML page" in result.failed[logged["html_page"]]
    assert "this zip holds nothing" in result.failed[logged["empty_zip"]]
    assert all("\n" not in why for why in result.failed.values())


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_views_show_every_format_as_a_video_the_browser_plays(logged):
    from v2v_lab.dashboard import CompareView, RunBrowser
    from v2v_lab.dashboard.rate_view import RateView

    browser = RunBrowser("formats")
    for name, rid in logged.items():
        browser.run.value = rid
        videos = [c for c in _walk(browser.detail) if c.__class__.__name__ == "Video"]
        texts = " ".join(c.value for c in _walk(browser.detail) if c.__class__.__name__ == "HTML")
        if name in VIDEO_NAMES:
            assert len(videos) == 2 and videos[1].value[4:8] == b"ftyp" and videos[1].format == "mp4", name
        else:  # said, not raised
            assert len(videos) == 1 and "not a playable video" in texts, name

    view = CompareView("formats", by="seed")
    posters = [c for c in _walk(view.grid) if c.__class__.__name__ == "Image"]
    assert len(posters) == len([n for n in LOGGED if n in VIDEO_NAMES])
    view.play(logged["prores4444_audio"])
    shown = [c for o in view.player.outputs for c in [o]]
    assert len(shown) == 1

    rate = RateView("formats", by="seed", rater="tester")
    seen: dict[str, bytes] = {}
    while rate.pair is not None:
        left, right = rate.pair
        seen[left], seen[right] = (httpx.get(url).content if url else b"" for url in (rate.left_url, rate.right_url))
        rate.choose("skip")
    for name, rid in logged.items():
        if name in VIDEO_NAMES:
            assert seen[rid][4:8] == b"ftyp", name
        else:
            assert seen[rid] == b"", name
