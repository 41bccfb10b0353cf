"""The emulator over real HTTP: routes, Runway's error shapes, task life, faults, determinism, the official SDK."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time

import httpx
import pytest

from v2v_lab.emulator import Emulator, FaultConfig
from v2v_lab.emulator.engine import RenderJob, render, render_frames
from v2v_lab.emulator.looks import LOOK_KEYWORDS, pick_look
from v2v_lab.media import probe_video

from ._helpers import HeldTasks

H = {"Authorization": "Bearer key_test", "X-Runway-Version": "2024-11-06"}


def data_uri(path: str, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64," + base64.b64encode(open(path, "rb").read()).decode()


def wait_task(http: httpx.Client, task_id: str, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = http.get(f"/v1/tasks/{task_id}").json()
        if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return body
        time.sleep(0.05)
    raise AssertionError("task did not finish")


@pytest.fixture()
def http(emulator):
    with httpx.Client(base_url=emulator.base_url, headers=H, timeout=30) as client:
        yield client


def test_create_poll_download(http, small_clip):
    r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "noir city",
                                              "videoUri": data_uri(small_clip), "ratio": "1280:720", "seed": 5})
    assert r.status_code == 200 and set(r.json()) == {"id", "estimatedCost"}
    body = wait_task(http, r.json()["id"])
    assert body["status"] == "SUCCEEDED" and body["createdAt"].endswith("Z")
    out = httpx.get(body["output"][0])
    assert out.status_code == 200 and out.headers["content-type"] == "video/mp4"


def test_errors_in_runways_shapes(http, emulator, small_clip):
    assert httpx.post(f"{emulator.base_url}/v1/video_to_video", json={}).status_code == 401
    no_version = httpx.post(f"{emulator.base_url}/v1/video_to_video", json={},
                            headers={"Authorization": "Bearer k"})
    assert no_version.status_code == 400 and "X-Runway-Version" in no_version.json()["error"]
    r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "x",
                                              "videoUri": data_uri(small_clip), "ratio": "1:1"})
    assert r.status_code == 400 and r.json()["error"].startswith("ratio: ")
    r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "videoUri": data_uri(small_clip)})
    assert r.status_code == 400 and r.json()["error"] == "promptText: Required"
    r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "x",
                                              "videoUri": "https://example.com/a.mp4"})
    assert r.status_code == 400 and "no network" in r.json()["error"]
    assert http.get("/v1/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert http.get("/v1/tasks/../../etc/passwd").status_code == 404


def test_model_the_org_lacks_is_403(small_clip):
    with Emulator(models=["gen4_aleph"], render_scale=0.25) as emu, httpx.Client(
            base_url=emu.base_url, headers=H) as http:
        r = http.post("/v1/video_to_video", json={"model": "aleph2", "videoUri": data_uri(small_clip)})
        assert r.status_code == 403 and r.json()["error"] == "Model variant aleph2 is not available"


def test_daily_limit_429_and_credits_spent(small_clip):
    with Emulator(daily_limit=1, render_scale=0.25, credits=1000) as emu, httpx.Client(
            base_url=emu.base_url, headers=H) as http:
        body = {"model": "gen4_aleph", "promptText": "x", "videoUri": data_uri(small_clip), "seed": 1}
        first = http.post("/v1/video_to_video", json=body)
        assert first.status_code == 200
        assert http.post("/v1/video_to_video", json=body).status_code == 429
        wait_task(http, first.json()["id"])
        org = http.get("/v1/organization").json()
        assert org["usage"]["models"]["gen4_aleph"]["dailyGenerations"] == 1
        assert org["creditBalance"] == 1000 - 30  # 2 s of output x 15 credits/s
        today = datetime.datetime.now(datetime.timezone.utc).date()
        # beforeDate is exclusive and defaults to startDate + 30 d, as Runway's does: ask for today.
        usage = http.post("/v1/organization/usage", json={
            "startDate": today.isoformat(), "beforeDate": (today + datetime.timedelta(days=1)).isoformat()}).json()
        assert usage["results"][0]["usedCredits"] == [{"model": "gen4_aleph", "amount": 30}]
        assert emu.stats["tasks_created"] == {"gen4_aleph": 1}


def _until(check, timeout: float = 60.0):
    """Poll until check() gives a truthy value: tests wait on events, not on fixed sleeps."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if got := check():
            return got
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_throttled_in_submit_order_then_cancel_and_delete(small_clip):
    # The first task is held RUNNING while the others are looked at: a loaded machine cannot let it
    # end (and the next one start) between the create and the look.
    with Emulator(concurrency=1, run_s=0.4, render_scale=0.25, queue_s=0.0) as emu, HeldTasks(emu) as held, \
            httpx.Client(base_url=emu.base_url, headers=H) as http:
        body = {"model": "gen4_aleph", "promptText": "x", "videoUri": data_uri(small_clip)}
        ids = [http.post("/v1/video_to_video", json=body).json()["id"] for _ in range(4)]
        first = _until(lambda: (b := http.get(f"/v1/tasks/{ids[0]}").json())["status"] == "RUNNING" and b)
        assert 0 <= first["progress"] <= 1
        assert [http.get(f"/v1/tasks/{i}").json()["status"] for i in ids[1:]] == ["THROTTLED"] * 3
        assert http.delete(f"/v1/tasks/{ids[3]}").status_code == 204  # a queued task can be cancelled
        assert http.get(f"/v1/tasks/{ids[3]}").status_code == 404
        held.release()
        # With one slot, the others run one at a time in the order they were submitted.
        started: dict[str, float] = {}
        def all_started() -> bool:
            for i in ids[:3]:
                if i not in started and http.get(f"/v1/tasks/{i}").json()["status"] in ("RUNNING", "SUCCEEDED"):
                    started[i] = time.monotonic()
            return len(started) == 3
        _until(all_started)
        assert sorted(ids[:3], key=started.__getitem__) == ids[:3]
        assert wait_task(http, ids[2])["status"] == "SUCCEEDED"
        assert [http.get(f"/v1/tasks/{i}").json()["status"] for i in ids[:3]] == ["SUCCEEDED"] * 3
        assert emu.stats["tasks_total"] == 4
        assert http.delete(f"/v1/tasks/{ids[0]}").status_code == 204  # deletes a finished task
        assert http.delete(f"/v1/tasks/{ids[0]}").status_code == 404


def test_upload_flow_and_expiring_outputs(small_clip):
    with Emulator(render_scale=0.25, output_ttl_s=3.0) as emu, httpx.Client(base_url=emu.base_url, headers=H) as http:
        up = http.post("/v1/uploads", json={"filename": "../../evil.mp4", "type": "ephemeral"}).json()
        assert up["runwayUri"].startswith("runway://") and "evil" in up["fields"]["key"] and ".." not in up["fields"]["key"]
        files = {"file": ("clip.mp4", open(small_clip, "rb").read(), "video/mp4")}
        assert httpx.post(up["uploadUrl"], data=up["fields"], files=files).status_code == 204
        r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "sepia",
                                                  "videoUri": up["runwayUri"]})
        body = wait_task(http, r.json()["id"])
        url = body["output"][0]
        expires = int(httpx.URL(url).params["expires"])
        fetched = httpx.get(url)
        assert fetched.status_code == 200 and fetched.content[4:8] == b"ftyp"  # signed just now, for 3 s
        _until(lambda: time.time() > expires + 0.05, timeout=10)
        assert httpx.get(url).status_code == 403  # expired
        fresh = http.get(f"/v1/tasks/{body['id']}").json()["output"][0]
        assert httpx.get(fresh).status_code == 200  # reading the task again gives a fresh URL
        assert httpx.get(url.replace("output.mp4", "..%2F..%2Fetc%2Fpasswd")).status_code == 404


def test_oversized_and_tiny_uploads_refused(small_clip):
    with Emulator(max_upload_bytes=10_000) as emu, httpx.Client(base_url=emu.base_url, headers=H) as http:
        up = http.post("/v1/uploads", json={"filename": "a.mp4"}).json()
        big = httpx.post(up["uploadUrl"], data=up["fields"], files={"file": ("a.mp4", b"x" * 50_000)})
        assert big.status_code == 400 and "EntityTooLarge" in big.json()["error"]
        tiny = httpx.post(up["uploadUrl"], data=up["fields"], files={"file": ("a.mp4", b"x" * 10)})
        assert tiny.status_code == 400 and "EntityTooSmall" in tiny.json()["error"]


def test_key_mode_refuses_other_keys():
    with Emulator(key="key_right") as emu:
        assert httpx.get(f"{emu.base_url}/v1/organization", headers={**H, "Authorization": "Bearer key_wrong"}
                         ).status_code == 401
        assert httpx.get(f"{emu.base_url}/v1/organization", headers={**H, "Authorization": "Bearer key_right"}
                         ).status_code == 200


def test_moderation_and_fault_knobs_are_counted(small_clip):
    faults = FaultConfig(seed=3, server_error_rate={"organization": 1.0}, create_429_rate=0.0,
                         task_failure_rate=0.0, blocklist=("forbidden",))
    with Emulator(faults=faults, render_scale=0.25) as emu, httpx.Client(base_url=emu.base_url, headers=H) as http:
        assert http.get("/v1/organization").status_code in (502, 503)
        r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "a forbidden scene",
                                                  "videoUri": data_uri(small_clip)})
        body = wait_task(http, r.json()["id"])
        assert body["status"] == "FAILED" and body["failureCode"] == "SAFETY.INPUT.TEXT"
        assert emu.stats["faults"]["5xx_organization"] == 1
    with Emulator(faults=FaultConfig(create_429_rate=1.0)) as emu, httpx.Client(base_url=emu.base_url, headers=H) as http:
        assert http.post("/v1/video_to_video", json={}).status_code == 429
        assert emu.stats["tasks_total"] == 0
    with Emulator(faults=FaultConfig(drop_rate=1.0)) as emu, httpx.Client(base_url=emu.base_url, headers=H) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/v1/organization")
    with Emulator(faults=FaultConfig(task_failure_rate=1.0), render_scale=0.25) as emu, httpx.Client(
            base_url=emu.base_url, headers=H) as http:
        r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "x",
                                                  "videoUri": data_uri(small_clip)})
        assert wait_task(http, r.json()["id"])["failureCode"].startswith("INTERNAL")


def test_truncated_download_fault(small_clip):
    with Emulator(faults=FaultConfig(truncate_rate=1.0), render_scale=0.25) as emu, httpx.Client(
            base_url=emu.base_url, headers=H) as http:
        r = http.post("/v1/video_to_video", json={"model": "gen4_aleph", "promptText": "x",
                                                  "videoUri": data_uri(small_clip)})
        url = wait_task(http, r.json()["id"])["output"][0]
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url)


def test_engine_is_deterministic_and_models_differ(demo_clip, tmp_path):
    def run(model, seed, name, prompt="neon city"):
        return render(RenderJob(demo_clip, model, prompt, seed, None, 24, 5.0, str(tmp_path / name),
                                render_scale=0.25))

    def frames(seed):
        job = RenderJob(demo_clip, "gen4_aleph", "neon city", seed, None, 24, 5.0, "unused", render_scale=0.25)
        return hashlib.sha256(b"".join(f.tobytes() for f in render_frames(job))).hexdigest()

    # The engine's frames are a pure function of the inputs (the H.264 bytes are not promised:
    # x264 here is not bit-exact run to run when frames are fed as they are made).
    assert frames(1) == frames(1)
    assert frames(1) != frames(2)
    a = run("gen4_aleph", 1, "a.mp4")
    assert a.frames == 120 and probe_video(a.path).fps == 24  # gen4_aleph: first 5 s of the input
    from v2v_lab import score

    s = {m: score(demo_clip, run(m, 1, f"{m}.mp4").path, ["ssim_source", "temporal_consistency"], frames=8,
                  size=128).values for m in ("aleph2", "gen4_aleph", "gen3a_turbo")}
    assert s["aleph2"]["ssim_source"] > s["gen4_aleph"]["ssim_source"] > s["gen3a_turbo"]["ssim_source"]
    assert s["gen3a_turbo"]["temporal_consistency"] < s["gen4_aleph"]["temporal_consistency"]


def test_prompts_pick_looks():
    for look, words in LOOK_KEYWORDS:
        assert pick_look(f"a street, {words[0]} style") == look
    assert pick_look("a calm lake") == "grade"


def test_output_follows_ratio(demo_clip, tmp_path):
    r = render(RenderJob(demo_clip, "gen3a_turbo", "anime", 1, "768:1280", 24, 10.0, str(tmp_path / "p.mp4"),
                         render_scale=0.25))
    info = probe_video(r.path)
    assert (info.width, info.height) == (192, 320) and info.codec == "h264"


def test_official_sdk_cannot_tell_it_apart(emulator, small_clip, monkeypatch, tmp_path):
    import runwayml
    import runwayml.lib.polling as polling

    monkeypatch.setattr(polling, "POLL_TIME", 0.1)
    monkeypatch.setattr(polling, "POLL_JITTER", 0.0)
    sdk = runwayml.RunwayML(api_key="key_" + "0" * 128, base_url=emulator.base_url, max_retries=0)
    task = sdk.video_to_video.create(model="gen4_aleph", prompt_text="winter snow", video_uri=data_uri(small_clip),
                                     ratio="1280:720", seed=9).wait_for_task_output(timeout=60)
    assert task.status == "SUCCEEDED" and task.output[0].startswith(emulator.base_url)
    with pytest.raises(runwayml.BadRequestError):
        sdk.video_to_video.create(model="gen4_aleph", video_uri=data_uri(small_clip))
    with pytest.raises(runwayml.AuthenticationError):
        runwayml.RunwayML(api_key="k", base_url=emulator.base_url, max_retries=0,
                          default_headers={"Authorization": ""}).organization.retrieve()
    failing = sdk.video_to_video.create(model="gen4_aleph", prompt_text="gore", video_uri=data_uri(small_clip))
    with pytest.raises(runwayml.TaskFailedError):
        failing.wait_for_task_output(timeout=60)
    # What the SDK was handed is the emulator's real output: a decodable video with the clip's frames.
    downloaded = tmp_path / "sdk.mp4"
    downloaded.write_bytes(httpx.get(task.output[0]).content)
    assert probe_video(downloaded).frame_count > 0
