"""The retry policy table (api/retry_policy.py) and the places that read it: the client's requests,
the errors' `retryable`, classify_failure, a cell's own retry and --retry-failed; and the provider
seam around it (adapters, the narrow interface polling and download take, one list of names)."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest

import v2v_lab
from v2v_lab.api import RunwayClient, classify_failure, parse_task
from v2v_lab.api.provider_names import PROVIDER_NAMES
from v2v_lab.api.providers import PROVIDERS, CometProvider, RunwayProvider
from v2v_lab.api.retry_policy import (
    Action,
    Transport,
    failure_rule,
    resent_by_retry_failed,
    status_rule,
    transport_rule,
)
from v2v_lab.api.task import Task, TaskStatus
from v2v_lab.emulator import Emulator, FaultConfig
from v2v_lab.errors import (
    APIError,
    BadRequestError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    DownloadError,
    InputError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from v2v_lab.sweeps import Journal, run_sweep
from v2v_lab.sweeps.states import JournalState

from . import _helpers
from .conftest import DEMO

SPEC = {"experiment": "rp", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
        "prompts": ["neon city"], "seeds": [1], "ratios": ["1280:720"],
        "emulator": {"render_scale": 0.25}, "scoring": {"frames": 6, "size": 96}}


# -- the table ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_retry_the_request_except_a_creates_that_may_have_made_a_task(status):
    assert status_rule(status).action is Action.RETRY_REQUEST
    create = status_rule(status, create=True)
    if status == 429:  # refused before any task was made
        assert create.action is Action.RETRY_REQUEST and not create.task_may_exist
    else:
        assert create.action is Action.NEVER and create.task_may_exist


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 501])
def test_refusals_are_never_retried(status):
    for create in (False, True):
        rule = status_rule(status, create=create)
        assert rule.action is Action.NEVER and not rule.task_may_exist


def test_transport_outcomes():
    assert transport_rule(Transport.NOT_SENT).action is Action.RETRY_REQUEST
    assert transport_rule(Transport.NOT_SENT, create=True).action is Action.RETRY_REQUEST
    assert transport_rule(Transport.NO_ANSWER).action is Action.RETRY_REQUEST
    dropped_create = transport_rule(Transport.NO_ANSWER, create=True)
    assert dropped_create.action is Action.NEVER and dropped_create.task_may_exist


@pytest.mark.parametrize(("code", "action"), [
    ("SAFETY.INPUT.TEXT", Action.NEVER),
    ("INPUT_PREPROCESSING.SAFETY.TEXT", Action.NEVER),
    ("SAFETY.OUTPUT.VIDEO", Action.NEW_TASK_NEW_SEED),
    ("INTERNAL", Action.NEW_TASK_SAME_SEED),
    ("INTERNAL.BAD_OUTPUT.CODE01", Action.NEW_TASK_SAME_SEED),
    ("INPUT_PREPROCESSING.INTERNAL", Action.NEW_TASK_SAME_SEED),
    ("ASSET.INVALID", Action.NEVER),
    ("SOMETHING.NEW", Action.NEVER),
    (None, Action.NEVER),
    ("FAILED", Action.NEVER),  # a task that failed with no failureCode, as a cell records it
    ("CANCELLED", Action.NEVER),
    ("RATE_LIMITED", Action.RETRY_REQUEST),
    ("CONNECTION_FAILED", Action.RETRY_REQUEST),
    ("WAIT_TIMEOUT", Action.RETRY_REQUEST),
    ("DOWNLOAD_FAILED", Action.RETRY_REQUEST),
    ("CREATE_OUTCOME_UNKNOWN", Action.NEVER),
    ("INVALID_INPUT", Action.NEVER),
    ("HTTP_503", Action.RETRY_REQUEST),
    ("HTTP_400", Action.NEVER),
])
def test_failure_codes(code, action):
    assert failure_rule(code).action is action
    assert resent_by_retry_failed(code) is (action in (Action.RETRY_REQUEST, Action.NEW_TASK_SAME_SEED))


def test_safety_output_label_and_behaviour_agree():
    """Labelled "another seed", and therefore not retryable as it is, everywhere it is read."""
    rule = failure_rule("SAFETY.OUTPUT.VIDEO")
    assert rule.action is Action.NEW_TASK_NEW_SEED and "another seed" in rule.why
    assert classify_failure("SAFETY.OUTPUT.VIDEO") == (False, rule.why)
    task = parse_task({"id": "t", "status": "FAILED", "failureCode": "SAFETY.OUTPUT.VIDEO"})
    assert task.retry_rule is rule and not task.retryable
    assert TaskFailedError(task).retry_rule is rule and not TaskFailedError(task).retryable
    assert not resent_by_retry_failed("SAFETY.OUTPUT.VIDEO")


def test_errors_read_the_table():
    assert ServerError("x", status_code=503).retryable
    assert not ServerError("x", status_code=501).retryable  # not implemented: the same again
    assert RateLimitError("x", status_code=429).retryable
    assert ConnectionFailedError("x").retryable and WaitTimeoutError("t", 1.0, None).retryable
    assert DownloadError("x").retryable
    for refused in (BadRequestError("f: r"), NotFoundError("x", status_code=404), APIError("x", status_code=None),
                    InputError("f", 1, "2"), CreateOutcomeUnknownError("x", cause="y")):
        assert not refused.retryable, refused
    internal = Task("t", TaskStatus.FAILED, failure_code="INTERNAL")
    assert TaskFailedError(internal).retryable
    cancelled = Task("t", TaskStatus.CANCELLED, failure_code="INTERNAL")
    assert not cancelled.retryable and not TaskFailedError(cancelled).retryable


# -- a sweep: the cell's own retry and --retry-failed -------------------------------------------
def test_a_safety_output_cell_gets_no_second_task_and_retry_failed_does_not_resend_it(mlflow_store, tmp_path):
    spec = _helpers.write_spec(tmp_path, SPEC, max_task_retries=2)
    with Emulator(render_scale=0.25, queue_s=0.02, faults=FaultConfig(safety_output_rate=1.0, seed=1)) as emu:
        first = run_sweep(spec, progress=False, base_url=emu.base_url)
        assert [o.failure_code for o in first.outcomes] == ["SAFETY.OUTPUT.VIDEO"]
        assert "another seed" in first.outcomes[0].note  # the advice, shown with the failure
        assert emu.stats["tasks_total"] == 1  # no same-seed task within max_task_retries either
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    key = first.outcomes[0].cell.key
    assert not journal.get("rp", key).retryable
    # A journal written under the earlier rule said retryable: the policy, not the old word, decides.
    journal.set("rp", key, JournalState.FAILED, failure_code="SAFETY.OUTPUT.VIDEO", retryable=True)
    with Emulator(render_scale=0.25, queue_s=0.02) as emu:
        again = run_sweep(spec, progress=False, base_url=emu.base_url, retry_failed=True)
        assert again.counts == {"failed": 1} and emu.stats["tasks_total"] == 0


# -- the provider seam ----------------------------------------------------------------------------
def test_polling_and_download_do_not_import_the_client():
    code = ("import sys, v2v_lab.api.polling, v2v_lab.api.download; "
            "print('v2v_lab.api.client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_provider_names_have_one_home():
    from v2v_lab.cli_args import build_parser
    from v2v_lab.sweeps.spec import SweepSpec

    assert tuple(PROVIDERS) == PROVIDER_NAMES
    assert typing.get_args(SweepSpec.model_fields["provider"].annotation) == PROVIDER_NAMES
    sweep = next(a for a in build_parser()._subparsers._group_actions[0].choices["sweep"]._actions
                 if a.dest == "provider")
    assert tuple(sweep.choices) == PROVIDER_NAMES
    # Nowhere else spells the list (the emulator's flavors are its own: the APIs it imitates).
    package = Path(v2v_lab.__file__).parent
    spelled = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if '"runway", "cometapi", "local"' in p.read_text() and p.parts[-2] != "emulator"]
    assert spelled == ["api/provider_names.py"], spelled


def test_each_adapter_parses_its_own_task_shape():
    wrapped = {"code": "success", "data": {"task_id": "t3", "status": "QUEUED"}}
    assert isinstance(PROVIDERS["cometapi"], CometProvider)
    assert PROVIDERS["cometapi"].parse_task(wrapped, "t3").status is TaskStatus.PENDING
    assert isinstance(PROVIDERS["runway"], RunwayProvider)
    with pytest.raises(ValueError):  # Runway answers bare tasks only: no guessing from shapes
        PROVIDERS["runway"].parse_task(wrapped, "t3")
    not_yet = BadRequestError("task_not_exist", body={"code": "task_not_exist"})
    assert PROVIDERS["cometapi"].task_not_visible_yet(not_yet)
    assert not PROVIDERS["runway"].task_not_visible_yet(not_yet)


def test_cometapi_adapter_against_cometapis_flavour(monkeypatch, small_clip):
    """Over HTTP: the CometAPI adapter rides out task_not_exist and reads the wrapper; the Runway
    adapter pointed at the same endpoint refuses what it does not speak instead of guessing."""
    from v2v_lab.api import GenerationRequest

    monkeypatch.setenv("COMETAPI_API_KEY", "key_comet_test")
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_runway_test")
    request = GenerationRequest("https://example.com/clip.mp4", "neon city", seed=1, ratio="1280:720")
    with Emulator(flavor="cometapi", render_scale=0.25, queue_s=0.02, not_exist_s=0.3) as emu:
        with RunwayClient("cometapi", base_url=emu.base_url) as comet:  # polled at CometAPI's 5 s floor
            task_id = comet.create(_data_uri_request(request, small_clip))
            task = comet.wait(task_id, timeout=60)
            assert task.status is TaskStatus.SUCCEEDED and task.output
        with RunwayClient("runway", base_url=emu.base_url) as runway:
            task_id = runway.create(_data_uri_request(request, small_clip))
            with pytest.raises(BadRequestError, match="task_not_exist"):
                runway.wait(task_id, timeout=60)


def _data_uri_request(request, path):
    import base64
    from dataclasses import replace

    data = base64.b64encode(Path(path).read_bytes()).decode()
    return replace(request, video=f"data:video/mp4;base64,{data}")
