"""FcmProvider (FCM HTTP v1) against FcmMock over loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgw.errors import ProviderSetupError
from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.fcm import FcmProvider, classify
from pushgw.providers.gcm import gcm_provider_class
from pushgw.providers.gcm_legacy import GcmLegacyProvider
from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.fcm import FcmMock
from tests.providers.answers import answer
from tests.providers.clock import ManualClock as FakeClock

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/test"
NOW = 1_800_000_000.0
# One signing key for the module's service accounts: RSA key generation is slow.
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_app(credential: str) -> PlatformApplication:
    return PlatformApplication(
        arn=APP_ARN,
        name="test",
        platform=Platform.GCM,
        principal="",
        credential=credential,
    )


def endpoint(token: str) -> Endpoint:
    return Endpoint(arn=f"{APP_ARN}/1", app_arn=APP_ARN, token=token)


def text(body: str = "hello", **kw: Any) -> RenderedMessage:
    return RenderedMessage(message_id="m-1", body=body, native=False, **kw)


def native(payload: dict[str, Any], **kw: Any) -> RenderedMessage:
    return RenderedMessage(
        message_id="m-1", body=json.dumps(payload), native=True, **kw
    )


@contextlib.asynccontextmanager
async def adapter(
    settings: ProviderSettings, credential: str, clock: FakeClock, **changes: Any
) -> AsyncIterator[FcmProvider]:
    """An FcmProvider (settings with `changes`) that is closed afterwards."""
    settings = dataclasses.replace(settings, **changes)
    provider = FcmProvider(app=make_app(credential), settings=settings, clock=clock)
    try:
        yield provider
    finally:
        await provider.aclose()


@pytest.fixture(name="settings")
def _settings(mock: FcmMock, tmp_path: Path) -> ProviderSettings:
    """Settings that reach `mock` over TLS, trusting its test CA."""
    mock.write_ca(tmp_path / "ca.pem")
    return ProviderSettings(
        base_url=mock.base_url, timeout_s=5.0, ca_file=str(tmp_path / "ca.pem")
    )


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(name="mock")
async def _mock(clock: FakeClock) -> AsyncIterator[FcmMock]:
    """The mock as production serves FCM: TLS, HTTP/2 by ALPN."""
    async with FcmMock(clock=clock) as mock:
        yield mock


@pytest.fixture(name="credential")
def _credential(mock: FcmMock) -> str:
    return mock.issue_credentials(private_key=KEY)["PlatformCredential"]


@pytest.fixture(name="provider")
async def _provider(
    settings: ProviderSettings, credential: str, clock: FakeClock
) -> AsyncIterator[FcmProvider]:
    provider = FcmProvider(app=make_app(credential), settings=settings, clock=clock)
    yield provider
    await provider.aclose()


def _state(state: str) -> Callable[[FcmMock], str]:
    return lambda mock: mock.register_device(state=state)


def _fault(kind: str, **kw: Any) -> Callable[[FcmMock], str]:
    def setup(mock: FcmMock) -> str:
        token = mock.register_device()
        mock.faults.rules.append(FaultRule(kind, token_prefix=token, **kw))
        return token

    return setup


def _scripted(code: str) -> Callable[[FcmMock], str]:
    def setup(mock: FcmMock) -> str:
        token = mock.register_device()
        mock.script_error(token, code)
        return token

    return setup


# One row per line of the error table in providers/fcm.py (and PROVIDERS.md §2.3).
ERROR_TABLE = [
    ("valid", _state("valid"), Outcome.DELIVERED, None),
    ("canonical state delivers on v1", _state("canonical"), Outcome.DELIVERED, None),
    ("404 UNREGISTERED", _state("unregistered"), Outcome.INVALID_TOKEN, None),
    ("unknown token", lambda m: "A" * 30 + ":APA91b" + "x" * 140, Outcome.INVALID_TOKEN, None),
    ("400 message.token", _state("invalid"), Outcome.INVALID_TOKEN, None),
    ("400 malformed token", lambda m: "not a token!", Outcome.INVALID_TOKEN, None),
    ("400 other INVALID_ARGUMENT", _scripted("INVALID_ARGUMENT"), Outcome.PERMANENT, None),
    ("403 SENDER_ID_MISMATCH", lambda m: m.register_device(project_id="other"), Outcome.INVALID_TOKEN, None),
    ("401 THIRD_PARTY_AUTH_ERROR", _scripted("THIRD_PARTY_AUTH_ERROR"), Outcome.BAD_CREDENTIALS, None),
    ("429 QUOTA_EXCEEDED", _fault("throttle", retry_after=7), Outcome.RETRY, 7.0),
    ("503 UNAVAILABLE", _fault("unavailable", retry_after=3), Outcome.RETRY, 3.0),
    ("500 INTERNAL", _fault("server_error"), Outcome.RETRY, None),
    ("502 HTML page", _fault("html_502"), Outcome.RETRY, None),
    ("invalid_token fault", _fault("invalid_token"), Outcome.INVALID_TOKEN, None),
    ("401 twice", _fault("bad_credentials"), Outcome.BAD_CREDENTIALS, None),
    ("401 expired once", _fault("expire_auth", count=1), Outcome.DELIVERED, None),
    ("dropped connection", _fault("drop"), Outcome.RETRY, None),
    ("latency", _fault("latency", latency_s=0.05), Outcome.DELIVERED, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "expected", "retry_after"),
    [row[1:] for row in ERROR_TABLE],
    ids=[row[0] for row in ERROR_TABLE],
)
async def test_error_table(
    mock: FcmMock,
    provider: FcmProvider,
    setup: Callable[[FcmMock], str],
    expected: Outcome,
    retry_after: float | None,
) -> None:
    """Each FCM answer maps to the outcome in the adapter's error table."""
    token = setup(mock)

    result = await provider.send(endpoint(token), text())

    assert expected == result.outcome, result.reason
    assert retry_after == result.retry_after


async def test_plain_text_is_a_data_message(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """
    Plain text goes out as `data.default` with the cached Bearer token over
    HTTP/2 (ALPN h2), token grant (httpx) and send (providers.h2client) alike,
    as in production.
    """
    token = mock.register_device()

    result = await provider.send(endpoint(token), text("hi there"))

    [got] = mock.received_for(token)

    assert result.outcome == Outcome.DELIVERED
    assert got.payload == {"token": token, "data": {"default": "hi there"}}
    assert got.headers["authorization"].startswith("Bearer ya29.")
    assert got.headers["user-agent"].startswith("pushgw")
    assert [("/token", "2"), ("v1", "2")] == [
        (r["path"], r["http"]) for r in mock.requests
    ]


async def test_hang_times_out_as_retry(
    mock: FcmMock, settings: ProviderSettings, credential: str, clock: FakeClock
) -> None:
    """A provider that never answers gives RETRY once the timeout runs out."""
    token = _fault("hang")(mock)

    async with adapter(settings, credential, clock, timeout_s=0.3) as provider:
        result = await provider.send(endpoint(token), text())

    assert result.outcome == Outcome.RETRY


async def test_concurrent_sends_fetch_one_token(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """Fifty concurrent first sends share one token fetch (single flight)."""
    tokens = [mock.register_device() for _ in range(50)]

    results = await asyncio.gather(
        *(provider.send(endpoint(t), text()) for t in tokens)
    )

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert mock.stats["token_issued"] == 1
    assert provider.tokens.fetches == 1


async def test_token_renewed_before_expiry(
    mock: FcmMock, provider: FcmProvider, clock: FakeClock
) -> None:
    """Past 90% of `expires_in` the adapter fetches a new token before sending."""
    token = mock.register_device()
    await provider.send(endpoint(token), text())
    clock.now += 3300  # 91.7% of 3600 s

    result = await provider.send(endpoint(token), text())

    assert result.outcome == Outcome.DELIVERED
    assert mock.stats["token_issued"] == 2
    assert mock.stats["error_ACCESS_TOKEN_EXPIRED"] == 0


async def test_401_forces_one_refresh_for_all_senders(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """Expired tokens give 401s; concurrent senders refresh once and resend."""
    tokens = [mock.register_device() for _ in range(20)]
    await provider.send(endpoint(tokens[0]), text())
    mock.expire_access_tokens()

    results = await asyncio.gather(
        *(provider.send(endpoint(t), text()) for t in tokens)
    )

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert mock.stats["token_issued"] == 2
    assert mock.stats["error_ACCESS_TOKEN_EXPIRED"] > 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, Outcome.BAD_CREDENTIALS), (401, Outcome.BAD_CREDENTIALS),
     (500, Outcome.RETRY), (503, Outcome.RETRY)],
)  # fmt: skip
async def test_token_endpoint_errors(
    mock: FcmMock, provider: FcmProvider, status: int, expected: Outcome
) -> None:
    """Token endpoint 4xx means bad credentials; 5xx means retry later."""
    mock.token_endpoint_status = status

    result = await provider.send(endpoint(mock.register_device()), text())

    assert expected == result.outcome
    assert mock.stats["delivered"] == 0


async def test_unknown_signing_key_is_bad_credentials(
    mock: FcmMock, settings: ProviderSettings, clock: FakeClock
) -> None:
    """An assertion signed by a key the token endpoint does not know is refused."""
    issued = json.loads(mock.issue_credentials(private_key=KEY)["PlatformCredential"])
    other = json.loads(mock.issue_credentials()["PlatformCredential"])  # a fresh key
    forged = json.dumps({**issued, "private_key": other["private_key"]})

    async with adapter(settings, forged, clock) as provider:
        result = await provider.send(endpoint(mock.register_device()), text())

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert "invalid_grant" in result.reason
    assert mock.stats["token_rejected"] == 1


async def test_unreachable_token_endpoint_is_retry(
    mock: FcmMock, settings: ProviderSettings, clock: FakeClock
) -> None:
    """A token endpoint that refuses connections gives RETRY, not bad credentials."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the send
    info = json.loads(mock.issue_credentials(private_key=KEY)["PlatformCredential"])
    info["token_uri"] = f"http://127.0.0.1:{port}/token"

    async with adapter(settings, json.dumps(info), clock) as provider:
        result = await provider.send(endpoint(mock.register_device()), text())

    assert result.outcome == Outcome.RETRY
    assert "token endpoint" in result.reason


async def test_wrong_project_is_bad_credentials(
    mock: FcmMock, settings: ProviderSettings, clock: FakeClock
) -> None:
    """Sending to a project the account has no rights on is a credential problem."""
    info = json.loads(mock.issue_credentials(private_key=KEY)["PlatformCredential"])
    info["project_id"] = "someone-elses-project"

    async with adapter(settings, json.dumps(info), clock) as provider:
        result = await provider.send(endpoint(mock.register_device()), text())

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert result.status == 403


async def test_oversized_payload_is_not_sent(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """Data over 4096 bytes is PERMANENT without a token fetch or a request."""
    payload = {"data": {"blob": "x" * 4100}}

    result = await provider.send(endpoint(mock.register_device()), native(payload))

    assert result.outcome == Outcome.PERMANENT
    assert mock.stats["token_issued"] == 0
    assert mock.requests == []


async def test_non_string_data_in_passthrough_is_permanent(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """fcmV1Message is sent as given, so FCM's 400 on non-string data is PERMANENT."""
    payload = {"fcmV1Message": {"message": {"data": {"n": 5}}}}

    result = await provider.send(endpoint(mock.register_device()), native(payload))

    assert result.outcome == Outcome.PERMANENT
    assert "INVALID_ARGUMENT" in result.reason


async def test_legacy_payload_translated_to_v1(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """A legacy-shaped GCM payload arrives at FCM as the equivalent v1 message."""
    token = mock.register_device()
    payload = {
        "notification": {
            "title": "T",
            "body": "B",
            "sound": "default",
            "android_channel_id": "news",
            "click_action": "OPEN",
            "body_loc_args": '["a", 2]',
            "badge": 3,
        },
        "data": {"s": "x", "n": 5, "o": {"a": 1}},
        "time_to_live": 125,
        "collapse_key": "ck",
        "priority": "high",
        "restricted_package_name": "com.example",
        "delay_while_idle": True,
    }

    await provider.send(endpoint(token), native(payload))

    [got] = mock.received_for(token)

    assert {
        "token": token,
        "notification": {"title": "T", "body": "B"},
        "data": {"s": "x", "n": "5", "o": '{"a":1}'},
        "android": {
            "notification": {
                "sound": "default",
                "channel_id": "news",
                "click_action": "OPEN",
                "body_loc_args": ["a", "2"],
            },
            "collapse_key": "ck",
            "priority": "HIGH",
            "restricted_package_name": "com.example",
            "ttl": "125s",
        },
    } == got.payload


async def test_fcm_v1_message_passed_through(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """A top-level fcmV1Message is sent as is, targeted at the endpoint's token."""
    token = mock.register_device()
    message = {
        "notification": {"title": "T"},
        "android": {"priority": "high", "notification": {"tag": "t"}},
        "apns": {"payload": {"aps": {"badge": 1}}},
        "topic": "ignored",
    }

    await provider.send(endpoint(token), native({"fcmV1Message": {"message": message}}))

    [got] = mock.received_for(token)
    expected = {k: v for k, v in message.items() if k != "topic"} | {"token": token}

    assert expected == got.payload


def _ttl_attr(value: str) -> dict[str, MessageAttribute]:
    return {"AWS.SNS.MOBILE.FCM.TTL": MessageAttribute("String", value)}


@pytest.mark.parametrize(
    ("payload", "kw", "expected"),
    [
        ({"time_to_live": 125}, {}, "125s"),
        ({"time_to_live": 125}, {"attributes": _ttl_attr("60")}, "60s"),
        ({}, {"attributes": {"AWS.SNS.MOBILE.GCM.TTL": MessageAttribute("String", "0")}}, "0s"),
        ({"time_to_live": 125}, {"published_at": NOW - 20}, "105s"),
        ({}, {"expires_at": NOW + 30}, "30s"),
        ({"fcmV1Message": {"message": {"android": {"ttl": "90s"}}}}, {"published_at": NOW - 10}, "80s"),
    ],
    ids=["body", "attribute overrides body", "gcm attribute zero", "dwell", "expires_at", "v1 body"],
)  # fmt: skip
async def test_ttl(
    mock: FcmMock,
    provider: FcmProvider,
    payload: dict[str, Any],
    kw: dict[str, Any],
    expected: str,
) -> None:
    """TTL precedence is attribute > body, minus the time spent since publish."""
    token = mock.register_device()

    await provider.send(endpoint(token), native(payload, **kw))

    [got] = mock.received_for(token)

    assert expected == got.payload["android"]["ttl"]


async def test_expired_message_is_not_sent(
    mock: FcmMock, provider: FcmProvider
) -> None:
    """A message whose TTL ran out before the send is dropped as PERMANENT."""
    result = await provider.send(
        endpoint(mock.register_device()), text(expires_at=NOW - 5)
    )

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_dry_run_validates_only(mock: FcmMock, provider: FcmProvider) -> None:
    """Legacy `dry_run` becomes v1 `validate_only`: accepted, not delivered."""
    token = mock.register_device()

    result = await provider.send(endpoint(token), native({"data": {}, "dry_run": True}))

    assert result.outcome == Outcome.DELIVERED
    assert result.reason.endswith("fake_message_id")
    assert mock.received_for(token) == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"fcmV1Message": 1}'])
async def test_unusable_native_payload_is_permanent(
    mock: FcmMock, provider: FcmProvider, body: str
) -> None:
    """A native GCM body that is not a usable JSON object is PERMANENT."""
    message = RenderedMessage(message_id="m-1", body=body, native=True)

    result = await provider.send(endpoint(mock.register_device()), message)

    assert result.outcome == Outcome.PERMANENT


@pytest.mark.parametrize(
    "credential",
    ["{not json", '{"type": "authorized_user"}', '{"type": "service_account"}'],
)
def test_bad_service_account_is_a_setup_error(credential: str) -> None:
    """A JSON credential that is no usable service account fails at creation."""
    settings = ProviderSettings(base_url="http://127.0.0.1:9")

    with pytest.raises(ProviderSetupError):
        FcmProvider(app=make_app(credential), settings=settings)


def test_provider_class_chosen_by_credential(credential: str) -> None:
    """Service-account JSON selects FCM v1; anything else the legacy adapter."""
    assert FcmProvider is gcm_provider_class(make_app(credential))
    assert GcmLegacyProvider is gcm_provider_class(make_app("AIzaSyExampleKey"))
    assert FcmProvider is gcm_provider_class(make_app(" {broken"))


async def test_create_then_send(tmp_path: Path) -> None:
    """The `create` factory builds a working adapter (real clock) inside the loop."""
    async with FcmMock() as mock:
        mock.write_ca(tmp_path / "ca.pem")
        credential = mock.issue_credentials()["PlatformCredential"]
        settings = ProviderSettings(
            base_url=mock.base_url, ca_file=str(tmp_path / "ca.pem")
        )
        result = await _send_with_created(settings, mock, credential)

    assert result.outcome == Outcome.DELIVERED


async def _send_with_created(
    settings: ProviderSettings, mock: FcmMock, credential: str
) -> SendResult:
    provider = await FcmProvider.create(app=make_app(credential), settings=settings)
    try:
        return await provider.send(endpoint(mock.register_device()), text())
    finally:
        await provider.aclose()


def _rpc(
    status: int, rpc_status: str, message: str = "m", code: str | None = None
) -> dict[str, Any]:
    details = [
        {
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": code,
        }
    ]
    error = {"code": status, "status": rpc_status, "message": message}
    return {"error": {**error, "details": details} if code else error}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    [
        (401, _rpc(401, "UNAUTHENTICATED", code="APNS_AUTH_ERROR"), {}, Outcome.BAD_CREDENTIALS, None),
        (404, _rpc(404, "NOT_FOUND"), {}, Outcome.PERMANENT, None),
        (429, _rpc(429, "RESOURCE_EXHAUSTED"), {"Retry-After": "11"}, Outcome.RETRY, 11.0),
        (400, _rpc(400, "INVALID_ARGUMENT"), {}, Outcome.PERMANENT, None),
        (400, _rpc(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"), {}, Outcome.INVALID_TOKEN, None),
        (504, b"", {}, Outcome.RETRY, None),
        (418, b"teapot", {}, Outcome.PERMANENT, None),
        (200, b"not json", {}, Outcome.DELIVERED, None),
    ],
    ids=["APNS_AUTH_ERROR", "404 no code", "429 no code", "400 no code", "400 token message", "504", "other 4xx", "200 not JSON"],
)  # fmt: skip
def test_classify_rows_the_mock_does_not_produce(
    status: int,
    body: object,
    headers: dict[str, str],
    expected: Outcome,
    retry_after: float | None,
) -> None:
    """FCM_ERRORS and STATUS_FALLBACK rows without a mock trigger classify as written."""
    result = classify(answer(status, body, headers))

    assert (expected, retry_after) == (result.outcome, result.retry_after)
