"""
Exception tree of pushgw.

Every error that reaches a client carries SNS's error code, HTTP status and
message, so the SNS Query API and the JSON API render the same rule the same way.

PushGwError
├── ConfigError              startup only; the CLI prints it and exits 2
├── StoreError               driver error kept in __cause__
│   ├── NotFoundError        a row the caller named does not exist
│   ├── ConflictError        a uniqueness rule was broken (e.g. token per app)
│   └── StoreUnavailableError  transient: connection lost, disk full, locked, timeout
├── ApiError                 an SNS error returned to the client (code, status, message)
│   ├── InvalidParameterError        400 InvalidParameter
│   ├── ParameterValueInvalidError   400 ParameterValueInvalid
│   ├── ValidationError              400 ValidationError
│   ├── NotFoundApiError             404 NotFound
│   ├── EndpointDisabledError        400 EndpointDisabled
│   ├── PlatformAppDisabledError     400 PlatformApplicationDisabled
│   ├── AuthorizationError           403 AuthorizationError
│   ├── BatchError                   400 batch-request errors (code varies)
│   ├── InternalError                500 InternalError
│   └── ServiceUnavailableError      503 ServiceUnavailable (the store is down)
└── ProviderSetupError       bad provider credentials or settings
"""

from __future__ import annotations


class PushGwError(Exception):
    """pushgw failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(PushGwError):
    """The configuration is invalid."""


class StoreError(PushGwError):
    """The store failed."""


class NotFoundError(StoreError):
    """The row does not exist."""


class ConflictError(StoreError):
    """The row conflicts with an existing one."""


class StoreUnavailableError(StoreError):
    """The store is unavailable; the operation may succeed if tried again."""


class ProviderSetupError(PushGwError):
    """The provider credentials or settings are invalid."""


class ApiError(PushGwError):
    """An SNS error: code, HTTP status and message, rendered by the API layers."""

    code: str = "InternalError"
    status: int = 500

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def sender_fault(self) -> bool:
        return self.status < 500


class InvalidParameterError(ApiError):
    """Invalid parameter"""

    code = "InvalidParameter"
    status = 400


class ParameterValueInvalidError(ApiError):
    """Invalid parameter value"""

    code = "ParameterValueInvalid"
    status = 400


class ValidationError(ApiError):
    """1 validation error detected"""

    code = "ValidationError"
    status = 400


class NotFoundApiError(ApiError):
    """Resource does not exist"""

    code = "NotFound"
    status = 404


class EndpointDisabledError(ApiError):
    """Endpoint is disabled"""

    code = "EndpointDisabled"
    status = 400


class PlatformAppDisabledError(ApiError):
    """Platform application is disabled"""

    code = "PlatformApplicationDisabled"
    status = 400


class AuthorizationError(ApiError):
    """Not authorized"""

    code = "AuthorizationError"
    status = 403


class BatchError(ApiError):
    """The batch request is invalid."""

    code = "InvalidBatchEntryId"
    status = 400


class InternalError(ApiError):
    """Internal error"""

    code = "InternalError"
    status = 500


class ServiceUnavailableError(ApiError):
    """Service is unavailable. Try again later."""

    # AWS's generic throttling-free 503 (SDKs retry it with back-off); the answer
    # while the store is down, so a client never reads a stack trace or a 500.
    code = "ServiceUnavailable"
    status = 503


class InvalidActionError(ApiError):
    """The action is not valid for this web service."""

    code = "InvalidAction"
    status = 400


def missing_attributes() -> ValidationError:
    """The modelled-required `Attributes` member was absent or empty (SNS §9)."""
    return ValidationError(
        "1 validation error detected: Value null at 'attributes' failed to satisfy"
        " constraint: Member must not be null"
    )
