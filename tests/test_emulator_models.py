"""Every current model through the official SDK against `v2v-lab emulator`: each field renders what it asks.

One served emulator (started through the console script, as a user would), one task per model or
field under test, all created first so they render side by side, then awaited with the SDK's own
wait_for_task_output() and probed with PyAV: length, size, audio, container and codec, price.
"""

from __future__ import annotations

import base64
import math
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest

from v2v_lab.api.catalog import load_catalog
from v2v_lab.media import write_mp4

from .conftest import free_port, moving_frames

CLI = str(Path(sys.executable).with_name("v2v-lab"))
KEY = "key_" + "0" * 128
SCALE = 0.2          # --render-scale: every size below is the documented size times this
SOURCE = (320, 180)  # the source clip: 3 s at 24 fps (klingO3 and kling_4 take 3 s at least)
PROMPT = "a calm lake"


def even(n: float) -> int:
    return max(2, int(round(n / 2.0)) * 2)


def scaled(w: float, h: float) -> tuple[int, int]:
    return even(w * SCALE), even(h * SCALE)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "source.mp4"
    write_mp4(path, moving_frames(72, *SOURCE), 24.0, crf=12)
    return data_uri(path.read_bytes(), "video/mp4")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`v2v-lab emulator --port P` started through the console script, stopped as a user would (SIGTERM)."""
    folder = tmp_path_factory.mktemp("served-models")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("V2V_LAB_", "RUNWAYML_", "COMETAPI_"))}
    port = free_port()
    # --queue-seconds: each task is PENDING long enough for a first read to see its estimatedCost.
    proc = subprocess.Popen([CLI, "emulator", "--port", str(port), "--render-scale", str(SCALE),
                             "--queue-seconds", "0.3"], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"emulator on (http://\S+)", line)
    assert found, line + proc.stderr.read() if proc.poll() is not None else line
    yield found.group(1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def _red_png() -> str:
    ok, png = cv2.imencode(".png", np.full((64, 64, 3), (30, 20, 230), np.uint8))  # BGR: a strong red
    assert ok
    return data_uri(png.tobytes(), "image/png")


def _jobs(video: str) -> dict[str, dict[str, Any]]:
    """name -> the SDK's create() arguments: each of the 12 models, some of them more than once."""
    kf = [{"uri": _red_png(), "seconds": 2.5}]
    aleph = {"model": "aleph2", "video_uri": video, "prompt_text": PROMPT}
    seedance = {"prompt_video": video, "prompt_text": PROMPT}
    return {
        "aleph2": {**aleph, "target_aspect_ratio": "1:1", "keyframes": kf, "output_format": "prores",
                   "prores_profile": "422 HQ", "seed": 7},
        "aleph2_png_a": {**aleph, "output_format": "png_sequence", "seed": 5},
        "aleph2_png_b": {**aleph, "output_format": "png_sequence", "seed": 5},
        "aleph2_10bit": {**aleph, "output_format": "sdr_rec709_10bit", "target_aspect_ratio": "21:9", "seed": 1},
        "seedance2": {"model": "seedance2", **seedance, "ratio": "1280:720", "duration": 4, "audio": True, "seed": 3},
        "seedance2_fast": {"model": "seedance2_fast", **seedance, "ratio": "640:640", "duration": "auto"},
        "seedance2_mini": {"model": "seedance2_mini", **seedance, "ratio": "1280:720", "duration": "auto", "seed": 11},
        "seedance2_5_draft": {"model": "seedance2_5", **seedance, "ratio": "1280:720", "draft": True, "duration": 4},
        "seedance2_5": {"model": "seedance2_5", **seedance, "ratio": "960:960", "output_format": "mov",
                        "audio": True, "seed": 2},
        "hailuo3": {"model": "hailuo3", **seedance, "resolution": "2k", "ratio": "16:9", "duration": 6},
        "gemini_omni_flash_a": {"model": "gemini_omni_flash", "video_uri": video, "prompt_text": PROMPT},
        "gemini_omni_flash_b": {"model": "gemini_omni_flash", "video_uri": video, "prompt_text": PROMPT},
        "gemini_omni_flash_1.1": {"model": "gemini_omni_flash_1.1", "video_uri": video, "prompt_text": PROMPT,
                                  "ratio": "640:360", "duration": 2},
        "klingO3_standard": {"model": "klingO3_standard", **seedance},
        "klingO3_pro": {"model": "klingO3_pro", **seedance},
        "klingO3_4k": {"model": "klingO3_4k", **seedance},
        "kling_4": {"model": "kling_4", "video_uri": video, "prompt_text": PROMPT, "ratio": "auto_720p"},
    }


# name -> (seconds, (width, height), container major brand, video codec, audio?)
EXPECTED: dict[str, tuple[float, tuple[int, int], str, str, bool]] = {
    "aleph2": (3.0, scaled(320, 320), "qt", "prores", False),        # 1:1 at the input's long side
    "aleph2_10bit": (3.0, scaled(320, 320 * 9 / 21), "isom", "hevc", False),
    "seedance2": (4.0, scaled(1280, 720), "isom", "h264", True),
    "seedance2_fast": (3.0, scaled(640, 640), "isom", "h264", False),  # auto: the input's length
    "seedance2_mini": (3.0, scaled(1280, 720), "isom", "h264", False),
    "seedance2_5_draft": (4.0, scaled(480 * 16 / 9, 480), "isom", "h264", False),  # 1280:720 drafted at 480p
    "seedance2_5": (5.0, scaled(960, 960), "qt", "h264", True),      # duration's default: 5
    "hailuo3": (6.0, scaled(2560, 1440), "isom", "h264", False),     # 16:9 at 2k
    "gemini_omni_flash_a": (3.0, scaled(*SOURCE), "isom", "h264", False),
    "gemini_omni_flash_1.1": (2.0, scaled(640, 360), "isom", "h264", False),
    "klingO3_standard": (3.0, scaled(*SOURCE), "isom", "h264", False),
    "klingO3_pro": (3.0, scaled(*SOURCE), "isom", "h264", False),
    "klingO3_4k": (3.0, scaled(*SOURCE), "isom", "h264", False),
    "kling_4": (3.0, scaled(1280, 720), "isom", "h264", False),      # auto_720p: the input's aspect at 720p
}


# name -> what the finished task costs, worked out by hand from the pricing guide's rules (the reference's
# first section): rate by tier, format surcharges, seedance2_5's +50% with an input video, auto refunded.
COST: dict[str, int] = {
    "aleph2": (28 + 5) * 3, "aleph2_png_a": (28 + 5) * 3, "aleph2_png_b": (28 + 5) * 3,  # prores, png: +5/s
    "aleph2_10bit": (28 + 20) * 3,                      # 10-bit SDR under 4 MP: +20/s
    "seedance2": 36 * 4,                                # 1280:720 is the 720p tier
    "seedance2_fast": 29 * 3, "seedance2_mini": 16 * 3,  # auto: billed at 15 s, 3 s made, the rest refunded
    "seedance2_5_draft": 20 * 3 // 2 * 4,                # a draft is 480p: 20/s, +50%
    "seedance2_5": 30 * 3 // 2 * 5,                      # 960:960 has 720p's pixels: 30/s, +50%, 5 s by default
    "hailuo3": 15 * 6,                                  # 2k
    "gemini_omni_flash_a": 20 * 3, "gemini_omni_flash_b": 20 * 3, "gemini_omni_flash_1.1": 20 * 2,
    "klingO3_standard": 15 * 3, "klingO3_pro": 25 * 3, "klingO3_4k": 50 * 3, "kling_4": 20 * 3,
}


@pytest.fixture(scope="module")
def done(served, source, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Every job created, read once at once, awaited with the SDK and downloaded."""
    import runwayml
    import runwayml.lib.polling as polling

    folder = tmp_path_factory.mktemp("outputs")
    sdk = runwayml.RunwayML(api_key=KEY, base_url=served, max_retries=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(polling, "POLL_TIME", 0.1)
        mp.setattr(polling, "POLL_JITTER", 0.0)
        created, first = {}, {}
        for name, args in _jobs(source).items():
            created[name] = sdk.video_to_video.create(**args)
            first[name] = sdk.tasks.retrieve(created[name].id)  # within --queue-seconds: not yet started
        out: dict[str, dict[str, Any]] = {}
        for name, c in created.items():
            task = c.wait_for_task_output(timeout=120)
            got = httpx.get(task.output[0], timeout=30)
            path = folder / (name + Path(httpx.URL(task.output[0]).path).suffix)
            path.write_bytes(got.content)
            out[name] = {"create": c, "first": first[name], "task": task, "path": path, "response": got}
    return out


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {"brand": str(c.metadata.get("major_brand", "")).strip(), "codec": video.codec_context.name,
                "size": (video.codec_context.width, video.codec_context.height), "frames": frames,
                "seconds": len(frames) / float(video.average_rate), "pix_fmt": video.codec_context.pix_fmt,
                "profile": video.codec_context.profile, "audio": [s.codec_context.name for s in c.streams.audio]}


def png_frames(path: Path) -> list[np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        return [cv2.imdecode(np.frombuffer(zf.read(n), np.uint8), cv2.IMREAD_COLOR) for n in names]


def test_every_current_model_is_created_and_awaited_through_the_sdk(done):
    catalog = load_catalog()
    current = {m for m in catalog if not catalog[m].retired}
    assert len(current) == 12 and current <= {_model_of(name) for name in done}
    assert all(job["task"].status == "SUCCEEDED" for job in done.values())


def _model_of(name: str) -> str:
    for model in sorted(load_catalog(), key=len, reverse=True):
        if name == model or name.startswith(model + "_"):
            return model
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_length_size_audio_and_container_follow_the_fields(done, name):
    seconds, size, brand, codec, audio = EXPECTED[name]
    got = probe(done[name]["path"])
    assert got["seconds"] == pytest.approx(seconds, abs=0.05), "length per duration"
    assert got["size"] == size, "size per ratio / resolution / target_aspect_ratio / draft"
    assert got["codec"] == codec and got["brand"].startswith(brand), "container and codec per output_format"
    assert (got["audio"] == ["aac"]) if audio else not got["audio"], "an AAC track exactly when audio is true"


def test_output_formats_are_the_deliverables_they_name(done):
    prores = probe(done["aleph2"]["path"])
    assert prores["profile"] == "HQ" and prores["pix_fmt"] == "yuv422p10le"  # prores_profile 422 HQ
    assert done["aleph2"]["path"].suffix == ".mov"
    assert done["aleph2"]["response"].headers["content-type"] == "video/quicktime"
    hevc = probe(done["aleph2_10bit"]["path"])
    assert hevc["pix_fmt"] == "yuv420p10le" and hevc["profile"] == "Main 10"
    assert done["seedance2_5"]["path"].suffix == ".mov"
    png = done["aleph2_png_a"]
    assert png["path"].suffix == ".zip" and png["response"].headers["content-type"] == "application/zip"
    frames = png_frames(png["path"])
    assert len(frames) == 72 and frames[0].shape[:2] == scaled(*SOURCE)[::-1]  # 3 s at 24 fps, the input's size
    assert done["kling_4"]["response"].headers["content-type"] == "video/mp4"


def test_prices_estimated_on_create_and_charged_in_whole_credits(done):
    catalog = load_catalog()
    for name, job in done.items():
        spec = catalog[_model_of(name)]
        estimate, task = job["create"].estimated_cost.credits, job["task"]
        assert job["first"].status in ("PENDING", "THROTTLED", "RUNNING"), name
        assert job["first"].estimated_cost.credits == estimate, name
        assert isinstance(task.cost.credits, int) and 0 < task.cost.credits <= math.ceil(estimate), name
        assert task.cost.credits == COST[name], (name, spec.price_rules)
    # duration "auto" is estimated at the model's maximum (15 s) and charged for what was made (3 s).
    fast = done["seedance2_fast"]
    assert fast["create"].estimated_cost.credits == 29 * 15 and fast["task"].cost.credits == 29 * 3
    assert done["seedance2"]["create"].estimated_cost.credits == 36 * 4
    assert done["hailuo3"]["task"].cost.credits == 15 * 6  # 2k: 15 credits/s


def test_unseeded_models_differ_per_task_seeded_ones_repeat(done):
    a, b = (png_frames(done[f"aleph2_png_{k}"]["path"]) for k in "ab")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), "same model, same seed: same frames"
    x, y = (np.stack(probe(done[f"gemini_omni_flash_{k}"]["path"])["frames"]).astype(float) for k in "ab")
    assert np.abs(x - y).mean() > 3, "gemini_omni_flash takes no seed: each task draws its own"


def test_keyframe_gives_its_palette_near_its_time(done):
    frames = probe(done["aleph2"]["path"])["frames"]
    redness = [float(f[..., 0].mean() - f[..., 1].mean()) for f in frames]
    at_keyframe, far_from_it = redness[60], redness[5]  # 2.5 s and 0.2 s at 24 fps
    assert at_keyframe > far_from_it + 15


def _brightness_flicker(path: Path) -> float:
    """Mean change of a frame's mean brightness from one frame to the next (the source's pan barely moves it)."""
    means = np.stack(probe(path)["frames"]).astype(float).mean(axis=(1, 2, 3))
    return float(np.abs(np.diff(means)).mean())


def test_models_have_characters_a_simple_measure_tells_apart(done):
    # Same size, length and source: seedance2_mini's flicker against kling_4's steadiness.
    mini, kling = _brightness_flicker(done["seedance2_mini"]["path"]), _brightness_flicker(done["kling_4"]["path"])
    assert mini > 2 * kling
