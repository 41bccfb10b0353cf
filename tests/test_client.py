"""The client over real HTTP against the emulator: endpoints, errors, retries, validation that sends nothing, secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from v2v_lab.api import (
    AsyncRunwayClient,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    GenerationRequest,
    InputError,
    MediaError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RunwayClient,
    Task,
    TaskStatus,
    WaitTimeoutError,
    classify_failure,
    parse_task,
)
from v2v_lab.emulator import Emulator, FaultConfig
from v2v_lab.media import probe_video

from ._helpers import HeldTasks, free_port

CANARY = "key_" + "c0ffee" * 21 + "ca"


def test_generate_end_to_end_and_org(small_clip, tmp_path):
    # An emulator of its own: its balance and usage hold this one generation and nothing else.
    seen = []
    with Emulator(render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url) as client:
        balance = client.organization().credit_balance
        task = client.generate(GenerationRequest(small_clip, "anime city", seed=3, ratio="1280:720"),
                               tmp_path / "out.mp4", on_progress=lambda t: seen.append(t.status))
        assert task.status is TaskStatus.SUCCEEDED and probe_video(tmp_path / "out.mp4").frame_count > 0
        assert TaskStatus.RUNNING in seen or TaskStatus.PENDING in seen
        org = client.organization()
        assert org.models["gen4_aleph"].max_concurrent >= 1
        # Charged once, and exactly this 2 s generation at gen4_aleph's 15 credits a second: one task,
        # its cost, the balance and the day's usage all say 30 (a second create or charge says 60).
        assert emu.stats["tasks_total"] == 1 and task.cost == 30
        assert balance - org.credit_balance == 30
        today = dt.datetime.now(dt.timezone.utc).date()
        used = client.usage(today, today + dt.timedelta(days=1))["results"]  # beforeDate is exclusive
        assert sum(c["amount"] for day in used for c in day["usedCredits"] if c["model"] == "gen4_aleph") == 30
        client.delete(task.id)
        with pytest.raises(NotFoundError):
            client.get_task(task.id)


def test_the_caller_owns_the_emulator_the_local_client_talks_to(small_clip):
    # The client never starts an emulator: with none named it says what to do, and sends nothing.
    with pytest.raises(InputError, match="base_url"):
        RunwayClient("local")
    with Emulator(render_scale=0.25) as emu, emu.client() as client:
        assert client.base_url == emu.base_url
        tid = client.create(GenerationRequest(small_clip, "sepia", seed=1))
        assert client.wait(tid).status is TaskStatus.SUCCEEDED
        assert emu.stats["tasks_total"] == 1


def test_sync_client_works_inside_a_running_loop(emulator):
    async def inside_a_kernel_like_loop():
        with RunwayClient("local", base_url=emulator.base_url) as client:
            return client.organization()
    assert asyncio.run(inside_a_kernel_like_loop()).credit_balance > 0


def test_wait_times_out_with_the_task_id_and_resumes(small_clip):
    # The task is held running until the timed-out wait is over (a fixed run_s of 1.5 s could pass
    # between the create and the wait on a loaded machine).
    with Emulator(render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url) as client, \
            HeldTasks(emu) as held:
        tid = client.create(GenerationRequest(small_clip, "noir", seed=2))
        with pytest.raises(WaitTimeoutError) as info:
            client.wait(tid, timeout=0.3)
        assert info.value.task_id == tid
        held.release()
        assert client.wait(info.value.task_id).status is TaskStatus.SUCCEEDED
        assert emu.stats["tasks_total"] == 1


def test_cancelled_is_terminal(small_clip):
    # Held running: the cancel certainly reaches a task that has not ended.
    with Emulator(concurrency=1, render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url) as c, \
            HeldTasks(emu):
        tid = c.create(GenerationRequest(small_clip, "noir"))
        c.cancel(tid)
        with pytest.raises(NotFoundError):  # cancelled tasks can't be fetched again (Runway's rule)
            c.wait(tid, timeout=5)
    # Runway's task union has a CANCELLED shape: a wait on an endpoint that serves one ends there, as
    # on SUCCEEDED or FAILED (the 404 above alone passed with CANCELLED out of the terminal states).
    with Emulator(concurrency=1, render_scale=0.25, faults=FaultConfig(cancelled_readable=True)) as emu, \
            RunwayClient("local", base_url=emu.base_url) as c, HeldTasks(emu):
        tid = c.create(GenerationRequest(small_clip, "noir"))
        c.cancel(tid)
        task = c.wait(tid, timeout=10)
        assert task.status is TaskStatus.CANCELLED and task.terminal and not task.retryable
        assert emu.stats["task_statuses"] == {"CANCELLED": 1}


def test_typed_errors(small_clip):
    with Emulator(key="key_right", models=["gen4_aleph"]) as emu:
        with RunwayClient("local", base_url=emu.base_url, api_key="key_wrong") as c, pytest.raises(AuthenticationError):
            c.organization()
        with RunwayClient("local", base_url=emu.base_url, api_key="key_right") as c:
            with pytest.raises(PermissionDeniedError):
                c.create(GenerationRequest(small_clip, None, model="aleph2"))
            with pytest.raises(NotFoundError):
                c.get_task("00000000-0000-0000-0000-000000000000")
            with pytest.raises(BadRequestError) as bad:
                c.create(GenerationRequest("https://example.com/clip.mp4", "x"))
            assert bad.value.field == "videoUri" and "no network" in bad.value.reason
    with Emulator(daily_limit=0) as emu, RunwayClient("local", base_url=emu.base_url, max_retries=1) as c:
        with pytest.raises(RateLimitError):
            c.create(GenerationRequest(small_clip, "x"))


def test_create_is_never_resent_when_its_outcome_is_unknown(small_clip):
    # A dropped connection, a 5xx, and an answer slower than the client's read timeout: all after sending.
    for faults, timeout in ((FaultConfig(drop_rate=1.0), 60.0), (FaultConfig(server_error_rate={"create": 1.0}), 60.0),
                            (FaultConfig(request_latency_s=3.0), 0.5)):
        with Emulator(faults=faults, render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url,
                                                                             timeout=timeout) as c:
            with pytest.raises(CreateOutcomeUnknownError, match="may be billed"):
                c.create(GenerationRequest("data:video/mp4;base64," + _b64(small_clip), "x"))
            assert emu.stats["requests"]["create"] == 1  # exactly one try


def test_create_retries_429_and_refused_connections(small_clip):
    # Each 429 says Retry-After: 2 s; the client's own backoff would have waited 0.25-0.5 s the first
    # time. Waiting at least what the server asked is a lower bound: it cannot pass by luck.
    faults = FaultConfig(create_429_rate=0.5, seed=4, retry_after_s=2.0)
    with Emulator(faults=faults, render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url,
                                                                         max_retries=8) as c:
        started = time.monotonic()
        ids = [c.create(GenerationRequest(small_clip, "x", seed=i)) for i in range(4)]
        took = time.monotonic() - started
        assert len(set(ids)) == 4 and emu.stats["tasks_total"] == 4
        refused = emu.stats["faults"]["429_create"]
        assert refused >= 1 and emu.stats["requests"]["create"] == 4 + refused  # retried; none made a task
        assert took >= 2.0 * refused, (took, refused)  # each 429's Retry-After was kept
    with RunwayClient("local", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1) as c, pytest.raises(
            ConnectionFailedError):
        c.get_task("00000000-0000-0000-0000-000000000000")


def test_reads_retry_5xx_and_downloads_retry_truncation(small_clip, tmp_path):
    faults = FaultConfig(server_error_rate={"task": 0.5}, truncate_rate=0.5, seed=7)
    with Emulator(faults=faults, render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url,
                                                                         max_retries=6) as c:
        for i in range(3):
            c.generate(GenerationRequest(small_clip, "winter", seed=i), tmp_path / f"o{i}.mp4")
        assert emu.stats["faults"].get("5xx_task", 0) > 0 and emu.stats["tasks_total"] == 3


def test_each_retried_request_gives_up_after_its_tries_with_its_own_error(small_clip, tmp_path):
    # One retry loop serves the API calls, the storage POST of an upload and the output download;
    # each must stop after 1 + max_retries tries and raise what its caller expects.
    from v2v_lab.errors import DownloadError, ServerError

    with Emulator(faults=FaultConfig(server_error_rate={"task": 1.0}), render_scale=0.25) as emu, RunwayClient(
            "local", base_url=emu.base_url, max_retries=2) as c:
        with pytest.raises(ServerError):
            c.get_task("00000000-0000-0000-0000-000000000000")
        assert emu.stats["requests"]["task"] == 3
    with Emulator(faults=FaultConfig(server_error_rate={"upload": 1.0}), render_scale=0.25) as emu, RunwayClient(
            "local", base_url=emu.base_url, max_retries=2) as c:
        with pytest.raises(ServerError):
            c.upload(small_clip)
        assert emu.stats["requests"]["upload"] == 3
    with Emulator(faults=FaultConfig(truncate_rate=1.0), render_scale=0.25) as emu, RunwayClient(
            "local", base_url=emu.base_url, max_retries=2) as c:
        task = c.wait(c.create(GenerationRequest(small_clip, "x", seed=1)))
        with pytest.raises(DownloadError, match="after 3 tries"):
            c.download(task, tmp_path / "out.mp4")
        assert emu.stats["requests"]["output"] == 3
        assert not list(tmp_path.iterdir())  # neither the output nor its .part is left


def test_validation_sends_nothing(emulator, small_clip, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    cases = [
        (GenerationRequest(small_clip, "x", ratio="1:1"), "ratio"),
        (GenerationRequest(small_clip, "x", seed=-1), "seed"),
        (GenerationRequest(small_clip, "x", seed=4294967296), "seed"),
        (GenerationRequest(small_clip, "x", seed="abc"), "seed"),  # type: ignore[arg-type]
        (GenerationRequest(small_clip, ""), "prompt"),
        (GenerationRequest(small_clip, None), "prompt"),
        (GenerationRequest(small_clip, "🎬" * 501), "prompt"),  # 1002 UTF-16 units
        (GenerationRequest(small_clip, "x", references=(small_clip, small_clip)), "references"),
        (GenerationRequest(small_clip, "x", model="nope"), "model"),
        (GenerationRequest(str(text), "x"), "video"),
        (GenerationRequest(str(tmp_path / "missing.mp4"), "x"), "video"),
        (GenerationRequest(small_clip, "x", content_moderation={"publicFigureThreshold": "high"}),
         "content_moderation.publicFigureThreshold"),
        (GenerationRequest(small_clip, "x", references=(small_clip,)), "references[0]"),  # a video is no image
    ]
    with RunwayClient("local", base_url=emulator.base_url) as c:
        before = dict(emulator.stats["requests"])
        sent = c.requests_sent
        for request, field in cases:
            with pytest.raises(InputError) as info:
                c.create(request)
            assert info.value.field == field, (request, str(info.value))
            assert "\n" not in str(info.value)
        assert c.requests_sent == sent and emulator.stats["requests"] == before
    with RunwayClient("local", base_url=emulator.base_url) as c, pytest.raises(InputError, match="1002"):
        c.validate(GenerationRequest(small_clip, "🎬" * 501))


def test_provider_rules_before_any_request(monkeypatch, small_clip):
    monkeypatch.setenv("RUNWAYML_API_SECRET", CANARY)
    with pytest.raises(InputError, match="gen3a_turbo is offered by cometapi, local"):
        AsyncRunwayClient("runway").validate(GenerationRequest(small_clip, "x", model="gen3a_turbo",
                                                               ratio="1280:768"))
    with pytest.raises(InputError, match="https"):
        AsyncRunwayClient("runway").validate(GenerationRequest("http://example.com/a.mp4", "x"))
    monkeypatch.delenv("COMETAPI_API_KEY", raising=False)
    with pytest.raises(InputError, match="COMETAPI_API_KEY"):
        AsyncRunwayClient("cometapi")


def test_canary_key_never_shows(monkeypatch, small_clip, caplog):
    with Emulator(key=CANARY, render_scale=0.25) as emu:
        client = RunwayClient("local", base_url=emu.base_url, api_key=CANARY)
        texts = [repr(client), str(client.__dict__), repr(client._async.__dict__)]
        try:
            client.create(GenerationRequest(small_clip, "x", ratio="1:1"))
        except InputError as exc:
            texts.append(str(exc))
        with RunwayClient("local", base_url=emu.base_url, api_key=CANARY[:-2] + "00") as wrong:
            with pytest.raises(AuthenticationError) as err:
                wrong.organization()
            texts.append(str(err.value))
        client.close()
    texts.append(caplog.text)
    assert all(CANARY not in t for t in texts)


def test_cometapi_envelopes_and_task_not_exist():
    bare = parse_task({"id": "t1", "status": "RUNNING", "progress": 0.4, "createdAt": "2026-01-01T00:00:00Z"})
    assert bare.status is TaskStatus.RUNNING and bare.progress == 0.4
    wrapped = parse_task({"code": "success", "message": "", "data": {
        "task_id": "t2", "action": "VIDEO_TO_VIDEO", "status": "IN_PROGRESS", "progress": "30%",
        "data": {"id": "t2", "status": "RUNNING", "createdAt": "2026-01-01T00:00:00Z"}}})
    assert wrapped.id == "t2" and wrapped.status is TaskStatus.RUNNING and wrapped.progress == pytest.approx(0.3)
    queued = parse_task({"code": "success", "data": {"task_id": "t3", "status": "QUEUED", "progress": "0%"}})
    assert queued.status is TaskStatus.PENDING and queued.id == "t3"
    done = parse_task({"code": "success", "data": {"task_id": "t4", "status": "SUCCESS", "data": {
        "id": "t4", "status": "SUCCEEDED", "output": ["https://x/y.mp4"]}}})
    assert done.output == ("https://x/y.mp4",)
    failed = parse_task({"id": "t5", "status": "FAILED", "failure": "bad", "failureCode": "SAFETY.INPUT.TEXT"})
    assert failed.terminal and not failed.retryable
    from v2v_lab.api.task import is_task_not_exist

    assert is_task_not_exist({"code": "task_not_exist", "message": "task_not_exist"})


def test_failure_classes():
    assert classify_failure("SAFETY.INPUT.TEXT")[0] is False
    assert classify_failure("INPUT_PREPROCESSING.SAFETY.TEXT")[0] is False
    assert classify_failure("SAFETY.OUTPUT.VIDEO")[0] is False  # only another seed may pass (retry_policy.py)
    assert classify_failure("INTERNAL.BAD_OUTPUT.CODE01")[0] is True
    assert classify_failure("ASSET.INVALID")[0] is False
    assert classify_failure(None)[0] is False


def test_upload_needs_a_file(emulator, tmp_path):
    with RunwayClient("local", base_url=emulator.base_url) as c, pytest.raises(MediaError):
        c.upload(tmp_path / "nope.mp4")


def _b64(path: str) -> str:
    import base64

    return base64.b64encode(open(path, "rb").read()).decode()


def test_a_source_is_uploaded_once_and_again_when_its_uri_expired(small_clip):
    with Emulator(render_scale=0.25) as emu, RunwayClient("local", base_url=emu.base_url) as c:
        first = [c.create(GenerationRequest(small_clip, "x", seed=i)) for i in range(3)]
        # One upload is two requests (ask for a URL, POST the bytes): three cells, one upload.
        assert emu.stats["requests"]["upload"] == 2
        assert emu.state.expire_uploads() == 1  # a day later: the URI the client holds is refused from now on
        again = c.create(GenerationRequest(small_clip, "x", seed=9))
        assert emu.stats["requests"]["upload"] == 4
        assert emu.stats["responses"].get(400) == 1  # the stale URI: refused, no task made
        assert emu.stats["tasks_total"] == 4 and again not in first


def test_a_client_polls_an_emulator_on_this_machine_at_its_pace_and_never_believes_one_elsewhere(monkeypatch, small_clip):
    """Runway's floor (5 s between reads) is the real API's pace; the emulator says its tasks move
    every 0.05 s, and a client pointed at it on loopback takes that, unless its caller chose an
    interval. An endpoint elsewhere saying the same is not believed."""
    import httpx

    from v2v_lab._net import TASK_DUE_HEADER, TASK_PACE_HEADER

    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_pace_test")
    with Emulator(render_scale=0.25, queue_s=0.02) as emu:
        with RunwayClient("runway", base_url=emu.base_url) as client:
            assert client.poll_interval == 5.0
            task_id = client.create(GenerationRequest(small_clip, "neon", seed=1, ratio="1280:720"))
            assert client.poll_interval == pytest.approx(0.05)
            assert client.wait(task_id, timeout=60).status is TaskStatus.SUCCEEDED
        with RunwayClient("runway", base_url=emu.base_url, poll_interval=7.0) as chosen:
            chosen.create(GenerationRequest(small_clip, "neon", seed=2, ratio="1280:720"))
            assert chosen.poll_interval == 7.0

    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "0b5e2f86-2c56-4a7e-9b0e-6a1c2b6d9f10", "status": "PENDING",
                                         "createdAt": "2026-01-01T00:00:00Z"},
                              headers={TASK_PACE_HEADER: "0.05", TASK_DUE_HEADER: "0.5"})

    with RunwayClient("runway", base_url="https://api.example.com", transport=httpx.MockTransport(elsewhere)) as far:
        far.get_task("0b5e2f86-2c56-4a7e-9b0e-6a1c2b6d9f10")
        assert far.poll_interval == 5.0
        assert far._async.task_due("0b5e2f86-2c56-4a7e-9b0e-6a1c2b6d9f10") is None  # nor when a task is due


def test_a_task_on_the_emulator_is_read_when_it_is_due_and_not_once_before(small_clip):
    """The emulator says on each read of a task when it next changes status (TASK_DUE_HEADER); the
    wait reads it again then: every read after one that told a due time comes at or after that
    time, so a 1.5 s task is read a handful of times instead of every 0.05 s. Proven on the reads'
    order against the times told, not on how long anything took."""
    async def run() -> tuple[list[tuple[float, float | None, str]], Task]:
        with Emulator(render_scale=0.25, queue_s=0.0, run_s=1.5) as emu:
            async with AsyncRunwayClient("local", base_url=emu.base_url) as client:
                reads: list[tuple[float, float | None, str]] = []  # (read began, due told by it, status)
                get_task = client.get_task

                async def recorded(task_id: str) -> Task:
                    began = time.monotonic()
                    task = await get_task(task_id)
                    reads.append((began, client.task_due(task_id), task.status.value))
                    return task

                client.get_task = recorded  # type: ignore[method-assign]
                task_id = await client.create(GenerationRequest(small_clip, "neon", seed=1, ratio="1280:720"))
                return reads, await client.wait(task_id, timeout=120)

    reads, task = asyncio.run(run())
    assert task.status is TaskStatus.SUCCEEDED
    told = [(i, due) for i, (_, due, status) in enumerate(reads) if due is not None and status == "RUNNING"]
    assert told, reads  # a running task's end was told
    for (_, due, _), (began_next, _, _) in zip(reads, reads[1:], strict=False):
        if due is not None:
            assert began_next >= due, reads  # never read before it was due
    assert reads[-1][2] == "SUCCEEDED" and reads[-1][1] is None  # an ended task tells no due time
