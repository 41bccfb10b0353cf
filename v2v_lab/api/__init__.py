"""The endpoint client: providers, model catalog, validation, typed errors and tasks."""

from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    DownloadError,
    InputError,
    MediaError,
    ModelNotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    V2VError,
    WaitTimeoutError,
)
from ._secret import Secret, redact
from .catalog import RUNWAY_API_VERSION, Catalog, ModelSpec, load_catalog
from .client import AsyncRunwayClient
from .providers import PROVIDERS, Provider, get_provider
from .responses import ModelLimits, Organization
from .sync_client import RunwayClient
from .task import CreatedTask, Task, TaskStatus, classify_failure, parse_task
from .validation import GenerationRequest, utf16_len, validate_request

__all__ = [
    "APIError", "AsyncRunwayClient", "AuthenticationError", "BadRequestError", "Catalog",
    "ConnectionFailedError", "CreateOutcomeUnknownError", "CreatedTask", "DownloadError", "GenerationRequest",
    "InputError", "MediaError", "ModelLimits", "ModelNotAvailableError", "ModelSpec", "NotFoundError",
    "Organization", "PROVIDERS", "PermissionDeniedError", "Provider", "RUNWAY_API_VERSION", "RateLimitError",
    "RunwayClient", "Secret", "ServerError", "Task", "TaskFailedError", "TaskStatus", "V2VError", "WaitTimeoutError",
    "classify_failure", "get_provider", "load_catalog", "parse_task", "redact", "utf16_len", "validate_request",
]
