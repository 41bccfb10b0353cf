"""Providers: one adapter per provider under the client, each with its profile.

The client (client.py) holds the generic flow: validate, upload, send with the retry policy,
wait, download. What differs between providers is here, behind Provider: its profile (where it
lives, which key it reads, how fast it may be polled, what it takes inline, its backoff) and its
adapter methods (paths, auth headers, the create's body, what a create and a task read answer,
whether "no such task" may mean "not visible yet"). As httpx keeps transports under its client and
the runwayml SDK keeps resources over its base client, adding a provider is one subclass and one
PROVIDERS entry (its name in provider_names.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._env import env_text
from .._net import is_loopback_host
from ..errors import APIError, InputError, V2VError
from ._retry import RetryPolicy
from .catalog import RUNWAY_API_VERSION, ModelSpec
from .limits import DATA_URI_MAX_BYTES, SDK_DATA_URI_MAX_BYTES
from .provider_names import names_text
from .task import CreatedTask, Task, credits_of, is_task_not_exist, parse_runway_task, parse_task

if TYPE_CHECKING:
    from .validation import GenerationRequest

__all__ = [
    "BASE_URL_ENV", "EMULATOR_KEY_ENV", "PROVIDERS", "CometProvider", "LocalProvider", "Provider", "RunwayProvider",
    "get_provider",
]

# The key a keyed emulator (`v2v-lab emulator --key ...`) wants, for provider local: read from the
# environment, never from a command-line argument (process lists show those).
EMULATOR_KEY_ENV = "V2V_LAB_EMULATOR_KEY"
BASE_URL_ENV = "V2V_LAB_BASE_URL"


@dataclass(frozen=True)
class Provider(ABC):
    """A provider's profile (the fields) and the adapter every provider gives the client (the
    abstract methods)."""

    name: str
    base_url: str | None
    key_env: str | None
    # Runway asks for no more than one poll per task every 5 s; the emulator can be polled fast.
    min_poll_interval_s: float
    has_uploads: bool
    max_data_uri_bytes: int
    paid: bool
    https_only: bool
    # Backoff between retried requests: Runway's advice (0.5 s doubling to 8 s) on a paid endpoint;
    # an emulator on this machine recovers at once.
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0

    # -- the adapter ----------------------------------------------------------------------------
    @abstractmethod
    def default_headers(self) -> dict[str, str]:
        """Sent with every API request (not to upload storage or output URLs)."""

    @abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]:
        """The key as this provider takes it."""

    @abstractmethod
    def create_path(self, request: GenerationRequest) -> str: ...

    @abstractmethod
    def task_path(self, task_id: str) -> str: ...

    @abstractmethod
    def uploads_path(self) -> str: ...

    @abstractmethod
    def organization_path(self) -> str: ...

    @abstractmethod
    def usage_path(self) -> str: ...

    @abstractmethod
    def build_body(self, request: GenerationRequest, spec: ModelSpec, video_uri: str,
                   reference_uris: list[str]) -> dict[str, Any]:
        """The create's JSON body for a request whose local inputs are already URIs."""

    @abstractmethod
    def parse_created(self, answer: Any) -> CreatedTask | None:
        """A create's answer: the task's id and what it may cost; None when it names no task."""

    @abstractmethod
    def parse_task(self, body: Any, task_id: str) -> Task:
        """A task read's answer (with the cost fields this provider sends); ValueError if it is not one."""

    @abstractmethod
    def task_not_visible_yet(self, error: V2VError) -> bool:
        """Whether a failed task read may only mean the task is not visible yet (taken for PENDING
        within the wait's grace)."""

    # -- the profile's rules --------------------------------------------------------------------
    def retry_policy(self, max_retries: int) -> RetryPolicy:
        return RetryPolicy(max_retries=max_retries, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)

    def bearer_key(self, api_key: str | None) -> str:
        """The key the client sends: require_key's (a paid provider has one, or refuses first)."""
        key = self.require_key(api_key)
        assert key, "require_key refuses a paid provider with no key"
        return key

    def endpoint(self, base_url: str | None) -> str:
        """Where requests go: base_url, else V2V_LAB_BASE_URL, else the provider's own; checked."""
        from_env = env_text(BASE_URL_ENV)
        base = base_url or from_env or self.base_url
        if base is None:
            raise InputError("base_url", None, f"an endpoint for provider {self.name}")
        field = "base_url" if base_url else (BASE_URL_ENV if from_env else "provider")
        return self.check_base_url(str(base), field)

    def key_from_env(self) -> str | None:
        return env_text(self.key_env) if self.key_env else None

    def require_key(self, api_key: str | None = None) -> str | None:
        """The key to use (given, else from the environment); a paid provider without one is an
        InputError raised before anything is set up or sent. A key that cannot be an HTTP header
        value (a newline, a non-ASCII character: a paste gone wrong) is refused here, by name and
        never by value, instead of failing deep in httpx."""
        key = api_key or self.key_from_env()
        if not key and self.paid:
            raise InputError("api_key", None, f"a key in {self.key_env} (or api_key=...) for provider {self.name}")
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            where = "api_key" if api_key else (self.key_env or "api_key")
            raise InputError(where, "(not shown)", "a key of printable ASCII characters with no spaces or line "
                             "breaks (check for a stray newline or quote)")
        return key

    def check_base_url(self, url: str, field: str, line: int | None = None) -> str:
        """Where this provider's key may be sent: over https, or plain http to a loopback address
        only (an emulator or a local proxy), for every provider: the emulator's key too, and the
        prompts and videos, are nobody else's to read on the way. Never a URL that is not http(s)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(field, url, "an http(s) URL such as https://api.dev.runwayml.com", line=line)
        # 0.0.0.0 is this machine too: what `v2v-lab emulator --host 0.0.0.0` prints as its address.
        if parts.scheme == "http" and not (is_loopback_host(parts.hostname) or parts.hostname in ("0.0.0.0", "::")):
            raise InputError(field, url, "an https URL (your key and media are sent there; plain http only "
                             "to a loopback address)", line=line)
        return url.rstrip("/")

    def check_spec_base_url(self, url: str, line: int | None) -> None:
        """A base_url written in a spec file, which people share: it may not send the user's key
        anywhere. A key (a paid provider's, or the emulator's in V2V_LAB_EMULATOR_KEY) goes only to
        a host the user named outside the spec: --base-url, or V2V_LAB_BASE_URL."""
        if self.paid or self.key_from_env():
            what = f"provider {self.name}" if self.paid else f"{self.key_env} set"
            raise InputError("base_url", url, f"no base_url in a spec file with {what} (a shared spec must not "
                             "redirect your key): pass --base-url, or remove it from the spec and set "
                             "V2V_LAB_BASE_URL yourself", line=line)
        self.check_base_url(url, "base_url", line)


def _wire_item(items: str | None, value: Any) -> Any:
    """A media list's item as the wire writes it: a path or URI becomes {uri} with the type the
    SDK's item names ({type: "video", uri} for reference_videos)."""
    if not isinstance(value, str):
        return dict(value)
    kind = {"image_typed": "image", "video": "video", "audio": "audio"}.get(items or "")
    return {"type": kind, "uri": value} if kind else {"uri": value}


@dataclass(frozen=True)
class RunwayProvider(Provider):
    """Runway's own API: bare task objects, estimatedCost on a create and cost on a finished task."""

    def default_headers(self) -> dict[str, str]:
        return {"X-Runway-Version": RUNWAY_API_VERSION}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def create_path(self, request: GenerationRequest) -> str:
        return "/v1/video_to_video"

    def task_path(self, task_id: str) -> str:
        return f"/v1/tasks/{task_id}"

    def uploads_path(self) -> str:
        return "/v1/uploads"

    def organization_path(self) -> str:
        return "/v1/organization"

    def usage_path(self) -> str:
        return "/v1/organization/usage"

    def build_body(self, request: GenerationRequest, spec: ModelSpec, video_uri: str,
                   reference_uris: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, spec.video_field: video_uri}
        if request.prompt is not None:
            body["promptText"] = request.prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.ratio is not None:
            body["ratio"] = request.ratio
        if reference_uris:
            typed = spec.fields["references"].items == "image_typed" if "references" in spec.fields else True
            body["references"] = [{"type": "image", "uri": u} if typed else {"uri": u} for u in reference_uris]
        if request.content_moderation:
            body["contentModeration"] = dict(request.content_moderation)
        if request.keyframes:
            body["keyframes"] = [dict(k) for k in request.keyframes]
        if request.target_aspect_ratio:
            body["targetAspectRatio"] = request.target_aspect_ratio
        for name, value in sorted(request.options.items()):
            f = spec.fields[name]
            body[f.wire] = [_wire_item(f.items, v) for v in value] if f.type == "list" else value
        return body

    def parse_created(self, answer: Any) -> CreatedTask | None:
        if not isinstance(answer, dict) or "id" not in answer:
            return None
        return CreatedTask(str(answer["id"]), credits_of(answer.get("estimatedCost")))

    def parse_task(self, body: Any, task_id: str) -> Task:
        return parse_runway_task(body)

    def task_not_visible_yet(self, error: V2VError) -> bool:
        return False  # Runway's task exists once its create answered


@dataclass(frozen=True)
class CometProvider(RunwayProvider):
    """CometAPI's "official format" proxy of Runway's API (under its /runwayml prefix): the same
    paths, headers and bodies, no uploads; a task read answers a bare task or CometAPI's wrapper
    (its own status words, no cost fields), and "task_not_exist" for a few seconds after a create."""

    def parse_task(self, body: Any, task_id: str) -> Task:
        return parse_task(body, task_id)

    def task_not_visible_yet(self, error: V2VError) -> bool:
        return isinstance(error, APIError) and is_task_not_exist(error.body)


@dataclass(frozen=True)
class LocalProvider(CometProvider):
    """The emulator on this machine, in either flavor (Runway's API or CometAPI's proxy of it): no
    key needed unless it was started with one, polled fast, backed off briefly."""

    def bearer_key(self, api_key: str | None) -> str:
        return self.require_key(api_key) or "key_local_emulator"  # an open emulator takes any bearer key

    def endpoint(self, base_url: str | None) -> str:
        if base_url is None and env_text(BASE_URL_ENV) is None:
            raise InputError("base_url", None, "the endpoint of a running emulator for provider local: "
                             "Emulator().client(), `v2v-lab emulator` and --base-url, or V2V_LAB_BASE_URL")
        return super().endpoint(base_url)


PROVIDERS: dict[str, Provider] = {
    "runway": RunwayProvider(name="runway", base_url="https://api.dev.runwayml.com", key_env="RUNWAYML_API_SECRET",
                             min_poll_interval_s=5.0, has_uploads=True, max_data_uri_bytes=SDK_DATA_URI_MAX_BYTES,
                             paid=True, https_only=True),
    "cometapi": CometProvider(name="cometapi", base_url="https://api.cometapi.com/runwayml",
                              key_env="COMETAPI_API_KEY", min_poll_interval_s=5.0, has_uploads=False,
                              max_data_uri_bytes=SDK_DATA_URI_MAX_BYTES, paid=True, https_only=True),
    "local": LocalProvider(name="local", base_url=None, key_env=EMULATOR_KEY_ENV, min_poll_interval_s=0.05,
                           has_uploads=True, max_data_uri_bytes=DATA_URI_MAX_BYTES["video"], paid=False,
                           https_only=False, backoff_base_s=0.02, backoff_cap_s=0.5),
}


def get_provider(name: str | None) -> Provider:
    """The named provider; with no name, the first whose key is set, else the local emulator."""
    if name is None:
        keyed = [p for p in PROVIDERS.values() if p.paid and p.key_from_env()]  # runway first, as listed
        return keyed[0] if keyed else PROVIDERS["local"]
    if name not in PROVIDERS:
        raise InputError("provider", name, names_text())
    return PROVIDERS[name]
