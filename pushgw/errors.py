"""
Exception tree of pushgw.

Every error that reaches a client carries SNS's error code, HTTP status and
message, so the SNS Query API and the JSON API render the same rule the same way.

PushGwError
├── ConfigError              startup only; the CLI prints it and exits 2
├── StartupError             serve could not bind or open its store; one line, exit 1
├── StoreError               driver error kept in __cause__
│   ├── NotFoundError        a row the caller named does not exist
│   ├── ConflictError        a uniqueness rule was broken (e.g. token per app)
│   └── StoreUnavailableError  transient: connection lost, disk full, locked, timeout
├── ApiError                 an error returned to the client (code, status, message)
│   │   SNS's own errors
│   ├── InvalidParameterError        400 InvalidParameter
│   ├── ParameterValueInvalidError   400 ParameterValueInvalid
│   ├── ValidationError              400 ValidationError
│   ├── NotFoundApiError             404 NotFound
│   ├── ResourceNotFoundError        404 ResourceNotFound (tag calls)
│   ├── TagLimitExceededError        400 TagLimitExceeded
│   ├── EndpointDisabledError        400 EndpointDisabled
│   ├── PlatformAppDisabledError     400 PlatformApplicationDisabled
│   ├── AuthorizationError           403 AuthorizationError
│   │   └── ForeignAccountError      403 another account's ARN
│   ├── BatchError                   400 batch-request errors (code varies)
│   ├── InvalidActionError           400 InvalidAction
│   ├── InternalError                500 InternalError
│   ├── ServiceUnavailableError      503 ServiceUnavailable (the store is down)
│   │   the SNS Query API's request layer (AWS's common errors)
│   ├── InvalidQueryError            400 InvalidQueryParameter
│   ├── MissingActionError           400 MissingAction
│   ├── RequestTooLargeError         413 RequestEntityTooLarge
│   ├── SigV4Error                   403 a rejected signature
│   │   ├── MissingAuthenticationTokenError  403 MissingAuthenticationToken
│   │   ├── InvalidClientTokenIdError        403 InvalidClientTokenId
│   │   ├── SignatureDoesNotMatchError       403 SignatureDoesNotMatch
│   │   ├── IncompleteSignatureError         400 IncompleteSignature
│   │   └── RequestExpiredError              400 RequestExpired
│   │   the JSON API's request layer
│   ├── UnauthorizedError            401 Unauthorized (no or a wrong bearer key)
│   ├── ForbiddenError               403 AuthorizationError (the key's actions)
│   └── JsonValidationError          400 ValidationError (the body's shape)
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


class StartupError(PushGwError):
    """The daemon could not start."""


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


# -- the API layers' own errors (authentication, request shape) ---------------


class RequestTooLargeError(ApiError):
    """The request body is too large."""

    code = "RequestEntityTooLarge"
    status = 413


class InvalidQueryError(ApiError):
    """The AWS query string is malformed or does not adhere to AWS standards."""

    code = "InvalidQueryParameter"
    status = 400


class MissingActionError(ApiError):
    """The request is missing an action or a required parameter."""

    code = "MissingAction"
    status = 400


class UnauthorizedError(ApiError):
    """Missing or invalid bearer key."""

    code = "Unauthorized"
    status = 401


class ForbiddenError(ApiError):
    """This key may not perform this action."""

    code = "AuthorizationError"
    status = 403


class JsonValidationError(ApiError):
    """The request body is invalid."""

    code = "ValidationError"
    status = 400


SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you"
    " provided. Check your AWS Secret Access Key and signing method. Consult the"
    " service documentation for details."
)


class SigV4Error(ApiError):
    """The request signature was rejected."""

    status = 403


class MissingAuthenticationTokenError(SigV4Error):
    """Request is missing Authentication Token"""

    code = "MissingAuthenticationToken"


class InvalidClientTokenIdError(SigV4Error):
    """The security token included in the request is invalid."""

    code = "InvalidClientTokenId"


class SignatureDoesNotMatchError(SigV4Error):
    """The signature (or its scope or date) does not match the request."""

    code = "SignatureDoesNotMatch"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or SIGNATURE_MISMATCH)


class IncompleteSignatureError(SigV4Error):
    """The request signature does not conform to AWS standards."""

    code = "IncompleteSignature"
    status = 400


class RequestExpiredError(SigV4Error):
    """Request has expired."""

    code = "RequestExpired"
    status = 400


class ForeignAccountError(AuthorizationError):
    """
    403 for an ARN of another AWS account (SNS_API §9, "policy deny / foreign
    account"): pushgw holds only its own account's resources, and no resource
    policy lets another account's resource be used through it.

    The service knows the action but not the caller. The SNS Query API, which
    knows the access key, names it with `by()`; elsewhere (JSON API, direct
    callers) the principal is the account's root, the one identity every pushgw
    key acts as, as GetSubscriptionAttributes' SubscriptionPrincipal says.
    """

    def __init__(self, *, action: str, arn: str, principal: str) -> None:
        # AWS appends which policy type failed to allow the call; cross-account
        # that is the resource-based policy [field: quoted AWS CLI output of
        # cross-account SNS:Subscribe and SNS:Publish].
        super().__init__(
            f"User: {principal} is not authorized to perform: SNS:{action} on"
            f" resource: {arn} because no resource-based policy allows the"
            f" SNS:{action} action"
        )
        self.action = action
        self.arn = arn

    def by(self, principal: str) -> ForeignAccountError:
        """The same refusal naming `principal` as the caller."""
        return ForeignAccountError(
            action=self.action, arn=self.arn, principal=principal
        )


class TagLimitExceededError(ApiError):
    """Could not complete request: tag quota of per resource exceeded"""

    code = "TagLimitExceeded"
    status = 400


class ResourceNotFoundError(ApiError):
    """Resource does not exist"""

    code = "ResourceNotFound"
    status = 404
