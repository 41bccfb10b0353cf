"""The endpoint client: providers, model catalog, validation, typed errors and tasks."""

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:  # what type checkers and readers see; at run time each loads on first use
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

__getattr__, __dir__ = lazy(__name__, {
    'APIError': ('..errors', 'APIError'),
    'AuthenticationError': ('..errors', 'AuthenticationError'),
    'BadRequestError': ('..errors', 'BadRequestError'),
    'ConnectionFailedError': ('..errors', 'ConnectionFailedError'),
    'CreateOutcomeUnknownError': ('..errors', 'CreateOutcomeUnknownError'),
    'DownloadError': ('..errors', 'DownloadError'),
    'InputError': ('..errors', 'InputError'),
    'MediaError': ('..errors', 'MediaError'),
    'ModelNotAvailableError': ('..errors', 'ModelNotAvailableError'),
    'NotFoundError': ('..errors', 'NotFoundError'),
    'PermissionDeniedError': ('..errors', 'PermissionDeniedError'),
    'RateLimitError': ('..errors', 'RateLimitError'),
    'ServerError': ('..errors', 'ServerError'),
    'TaskFailedError': ('..errors', 'TaskFailedError'),
    'V2VError': ('..errors', 'V2VError'),
    'WaitTimeoutError': ('..errors', 'WaitTimeoutError'),
    'Secret': ('._secret', 'Secret'),
    'redact': ('._secret', 'redact'),
    'RUNWAY_API_VERSION': ('.catalog', 'RUNWAY_API_VERSION'),
    'Catalog': ('.catalog', 'Catalog'),
    'ModelSpec': ('.catalog', 'ModelSpec'),
    'load_catalog': ('.catalog', 'load_catalog'),
    'AsyncRunwayClient': ('.client', 'AsyncRunwayClient'),
    'PROVIDERS': ('.providers', 'PROVIDERS'),
    'Provider': ('.providers', 'Provider'),
    'get_provider': ('.providers', 'get_provider'),
    'ModelLimits': ('.responses', 'ModelLimits'),
    'Organization': ('.responses', 'Organization'),
    'RunwayClient': ('.sync_client', 'RunwayClient'),
    'CreatedTask': ('.task', 'CreatedTask'),
    'Task': ('.task', 'Task'),
    'TaskStatus': ('.task', 'TaskStatus'),
    'classify_failure': ('.task', 'classify_failure'),
    'parse_task': ('.task', 'parse_task'),
    'GenerationRequest': ('.validation', 'GenerationRequest'),
    'utf16_len': ('.validation', 'utf16_len'),
    'validate_request': ('.validation', 'validate_request'),
}, globals())
