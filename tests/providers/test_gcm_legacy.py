"""GcmLegacyProvider (legacy `/fcm/send`) against FcmMock over loopback sockets."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage
from pushgw.providers.gcm_legacy import GcmLegacyProvider, classify
from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.fcm import FcmMock
from tests.providers.answers import answer

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/legacy"
NOW = 1_800_000_000.0


def make_app(credential: str) -> PlatformApplication:
    return PlatformApplication(
        arn=APP_ARN,
        name="legacy",
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


@pytest.fixture(name="mock")
async def _mock() -> AsyncIterator[FcmMock]:
    async with FcmMock(clock=lambda: NOW) as mock:
        yield mock


@pytest.fixture(name="api_key")
def _api_key(mock: FcmMock) -> str:
    return mock.issue_credentials(kind="api_key")["PlatformCredential"]


@pytest.fixture(name="settings")
def _settings(mock: FcmMock, tmp_path: Path) -> ProviderSettings:
    """Settings that reach the mock over TLS (HTTP/1.1 here), trusting its CA."""
    mock.write_ca(tmp_path / "ca.pem")
    return ProviderSettings(
        base_url=mock.base_url, timeout_s=5.0, ca_file=str(tmp_path / "ca.pem")
    )


@pytest.fixture(name="provider")
async def _provider(
    settings: ProviderSettings, api_key: str
) -> AsyncIterator[GcmLegacyProvider]:
    provider = GcmLegacyProvider(
        app=make_app(api_key), settings=settings, clock=lambda: NOW
    )
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


# One row per line of LEGACY_ERRORS / the HTTP handling in providers/gcm_legacy.py.
ERROR_TABLE = [
    ("valid", _state("valid"), Outcome.DELIVERED, None),
    ("NotRegistered", _state("unregistered"), Outcome.INVALID_TOKEN, None),
    ("InvalidRegistration", _state("invalid"), Outcome.INVALID_TOKEN, None),
    ("malformed token", lambda m: "not a token!", Outcome.INVALID_TOKEN, None),
    ("MismatchSenderId", _scripted("MismatchSenderId"), Outcome.INVALID_TOKEN, None),
    ("Unavailable", _scripted("Unavailable"), Outcome.RETRY, None),
    ("InternalServerError", _scripted("InternalServerError"), Outcome.RETRY, None),
    ("DeviceMessageRateExceeded", _fault("throttle", retry_after=5), Outcome.RETRY, 5.0),
    ("TopicsMessageRateExceeded", _scripted("TopicsMessageRateExceeded"), Outcome.RETRY, None),
    ("MessageTooBig", _scripted("MessageTooBig"), Outcome.PERMANENT, None),
    ("InvalidDataKey", _scripted("InvalidDataKey"), Outcome.PERMANENT, None),
    ("MissingRegistration", _scripted("MissingRegistration"), Outcome.PERMANENT, None),
    ("InvalidPackageName", _scripted("InvalidPackageName"), Outcome.PERMANENT, None),
    ("InvalidTtl", _scripted("InvalidTtl"), Outcome.PERMANENT, None),
    ("unknown error", _scripted("SomethingNew"), Outcome.PERMANENT, None),
    ("InvalidApnsCredential", _scripted("InvalidApnsCredential"), Outcome.BAD_CREDENTIALS, None),
    ("invalid_token fault", _fault("invalid_token"), Outcome.INVALID_TOKEN, None),
    ("HTTP 503", _fault("unavailable", retry_after=3), Outcome.RETRY, 3.0),
    ("HTTP 500", _fault("server_error"), Outcome.RETRY, None),
    ("HTTP 502 HTML", _fault("html_502"), Outcome.RETRY, None),
    ("HTTP 401", _fault("bad_credentials"), Outcome.BAD_CREDENTIALS, None),
    ("dropped connection", _fault("drop"), Outcome.RETRY, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "expected", "retry_after"),
    [row[1:] for row in ERROR_TABLE],
    ids=[row[0] for row in ERROR_TABLE],
)
async def test_error_table(
    mock: FcmMock,
    provider: GcmLegacyProvider,
    setup: Callable[[FcmMock], str],
    expected: Outcome,
    retry_after: float | None,
) -> None:
    """Each legacy answer maps to the outcome in the adapter's error table."""
    token = setup(mock)

    result = await provider.send(endpoint(token), text())

    assert result.outcome == expected, result.reason
    assert result.retry_after == retry_after


async def test_plain_text_sent_with_server_key(
    mock: FcmMock, provider: GcmLegacyProvider, api_key: str
) -> None:
    """Plain text goes out as `data.default` to `to`, authorised by `key=`."""
    token = mock.register_device()

    result = await provider.send(endpoint(token), text("hi"))

    [got] = mock.received_for(token)

    assert result.outcome == Outcome.DELIVERED
    assert got.payload == {"to": token, "data": {"default": "hi"}}
    assert got.headers["Authorization"] == f"key={api_key}"
    assert "1.1" == mock.requests[-1]["http"]  # aiohttp: no ALPN h2, as in production


async def test_canonical_id_names_a_working_token(
    mock: FcmMock, provider: GcmLegacyProvider
) -> None:
    """A canonical registration id is delivered, and the new token works too."""
    token = mock.register_device(state="canonical")

    result = await provider.send(endpoint(token), text())
    assert result.new_token is not None
    again = await provider.send(endpoint(result.new_token), text())

    assert result.outcome == Outcome.CANONICAL_TOKEN
    assert result.new_token == mock.canonical[token]
    assert again.outcome == Outcome.DELIVERED


async def test_unknown_key_is_bad_credentials(
    mock: FcmMock, settings: ProviderSettings
) -> None:
    """A server key the service does not know is rejected with 401."""
    provider = GcmLegacyProvider(app=make_app("AIzaUnknown"), settings=settings)
    try:
        result = await provider.send(endpoint(mock.register_device()), text())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert result.status == 401


@pytest.mark.parametrize("status", [404, 410, 403])
async def test_retired_service_is_bad_credentials(
    mock: FcmMock, provider: GcmLegacyProvider, status: int
) -> None:
    """The shut-down legacy API's answer disables the app and says why."""
    mock.retired = True
    mock.retired_status = status

    result = await provider.send(endpoint(mock.register_device()), text())

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert "2024-07-22" in result.reason
    assert result.status == status


async def test_native_payload_and_ttl_attribute(
    mock: FcmMock, provider: GcmLegacyProvider
) -> None:
    """A legacy payload is sent as is, with the TTL attribute as `time_to_live`."""
    token = mock.register_device()
    payload = {
        "notification": {"title": "T"},
        "data": {"k": "v"},
        "collapse_key": "ck",
        "time_to_live": 125,
        "to": "someone-else",
    }
    attrs = {"AWS.SNS.MOBILE.GCM.TTL": MessageAttribute("String", "60")}

    await provider.send(endpoint(token), native(payload, attributes=attrs))

    [got] = mock.received_for(token)

    assert got.payload == {**payload, "to": token, "time_to_live": 60}


async def test_dwell_time_subtracted_from_body_ttl(
    mock: FcmMock, provider: GcmLegacyProvider
) -> None:
    """Time spent queued since publish is taken off the body's `time_to_live`."""
    token = mock.register_device()

    await provider.send(
        endpoint(token), native({"time_to_live": 100}, published_at=NOW - 30)
    )

    [got] = mock.received_for(token)

    assert got.payload["time_to_live"] == 70


@pytest.mark.parametrize(
    "message",
    [
        native({"data": {"blob": "x" * 4100}}),
        native({"fcmV1Message": {"message": {}}}),
        text(expires_at=NOW - 5),
        RenderedMessage(message_id="m-1", body="[]", native=True),
    ],
    ids=["too big", "fcmV1Message", "expired", "not an object"],
)
async def test_unsendable_messages_are_permanent(
    mock: FcmMock, provider: GcmLegacyProvider, message: RenderedMessage
) -> None:
    """Payloads the legacy API cannot take are PERMANENT and never sent."""
    result = await provider.send(endpoint(mock.register_device()), message)

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_mock_answers_per_token_results(
    mock: FcmMock, api_key: str, settings: ProviderSettings
) -> None:
    """A multicast gets one aligned result per token, with canonical ids counted."""
    tokens = [
        mock.register_device(),
        mock.register_device(state="canonical"),
        mock.register_device(state="unregistered"),
        mock.register_device(state="invalid"),
    ]
    headers = {"Authorization": f"key={api_key}"}
    body = {"registration_ids": tokens, "data": {"k": "v"}}

    tls: ssl.SSLContext = settings.ssl_context()
    url = f"{mock.base_url}/fcm/send"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers, ssl=tls) as resp,
    ):
        answer = await resp.json()

    results = answer["results"]

    assert resp.status == 200
    assert (answer["success"], answer["failure"], answer["canonical_ids"]) == (2, 2, 1)
    assert "message_id" in results[0]
    assert "registration_id" not in results[0]
    assert results[1]["registration_id"] == mock.canonical[tokens[1]]
    assert results[2] == {"error": "NotRegistered"}
    assert results[3] == {"error": "InvalidRegistration"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    [
        (200, {"results": []}, {}, Outcome.RETRY, None),
        (200, b"not json", {}, Outcome.RETRY, None),
        (200, {"results": [{"error": "Unavailable"}]}, {"Retry-After": "6"}, Outcome.RETRY, 6.0),
        (429, b"", {"Retry-After": "8"}, Outcome.RETRY, 8.0),
        (400, b"JSON_PARSING_ERROR", {}, Outcome.PERMANENT, None),
        (410, b"<html>Gone</html>", {}, Outcome.BAD_CREDENTIALS, None),
    ],
    ids=["200 no results", "200 not JSON", "per-token Retry-After", "429", "400", "410 retired"],
)  # fmt: skip
def test_classify_rows_the_mock_does_not_produce(
    status: int,
    body: object,
    headers: dict[str, str],
    expected: Outcome,
    retry_after: float | None,
) -> None:
    """HTTP rows of the legacy table without a mock trigger classify as written."""
    result = classify(answer(status, body, headers))

    assert (expected, retry_after) == (result.outcome, result.retry_after)
