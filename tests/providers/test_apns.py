"""ApnsProvider against the loopback ApnsMock over real TLS + HTTP/2."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pushgw.errors import ProviderSetupError
from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.apns import ApnsProvider, JwtSigner
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.mocks.apns import ApnsMock
from pushgw.providers.mocks.base import FaultRule
from tests.tools import eventually

MakeProvider = Callable[..., Awaitable[ApnsProvider]]


@pytest.fixture(name="mock")
async def _mock() -> AsyncIterator[ApnsMock]:
    async with ApnsMock() as mock:
        yield mock


@pytest.fixture(name="ca_file")
def _ca_file(mock: ApnsMock, tmp_path: Path) -> str:
    path = tmp_path / "apns-ca.pem"
    mock.write_ca(path)
    return str(path)


@pytest.fixture(name="make_provider")
async def _make_provider(
    mock: ApnsMock, ca_file: str, tmp_path: Path
) -> AsyncIterator[MakeProvider]:
    providers: list[ApnsProvider] = []

    async def make(
        *,
        platform: Platform = Platform.APNS,
        auth: str = "token",
        timeout_s: float = 5.0,
        max_connections: int = 4,
        target: ApnsMock | None = None,
    ) -> ApnsProvider:
        server = target or mock
        server_ca = ca_file
        if target is not None:
            server_ca = str(tmp_path / f"ca-{id(target)}.pem")
            target.write_ca(server_ca)
        attrs = server.issue_credentials(auth=auth)
        app = PlatformApplication(
            arn=f"arn:aws:sns:us-east-1:1:app/{platform.value}/test",
            name="test",
            platform=platform,
            principal=attrs.pop("PlatformPrincipal"),
            credential=attrs.pop("PlatformCredential"),
            attributes=attrs,
        )
        settings = ProviderSettings(
            base_url=server.base_url,
            ca_file=server_ca,
            timeout_s=timeout_s,
            max_connections=max_connections,
        )
        provider = await ApnsProvider.create(app=app, settings=settings)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()


def endpoint(token: str) -> Endpoint:
    return Endpoint(
        arn="arn:aws:sns:us-east-1:1:endpoint/APNS/test/1", app_arn="a", token=token
    )


def message(
    body: str = "hello", *, native: bool = False, attrs: dict[str, str] | None = None
) -> RenderedMessage:
    attributes = {
        f"AWS.SNS.MOBILE.{name}": MessageAttribute("String", value)
        for name, value in (attrs or {}).items()
    }
    return RenderedMessage(
        message_id="m-1",
        body=body,
        native=native,
        attributes=attributes,
        published_at=1000.0,
    )


def last_headers(mock: ApnsMock) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = mock.requests[-1]["headers"]
    return headers


ERROR_TABLE = [
    (410, "Unregistered", Outcome.INVALID_TOKEN),
    (410, "ExpiredToken", Outcome.INVALID_TOKEN),
    (400, "BadDeviceToken", Outcome.INVALID_TOKEN),
    (400, "DeviceTokenNotForTopic", Outcome.INVALID_TOKEN),
    (403, "InvalidProviderToken", Outcome.BAD_CREDENTIALS),
    (403, "MissingProviderToken", Outcome.BAD_CREDENTIALS),
    (403, "BadCertificate", Outcome.BAD_CREDENTIALS),
    (403, "BadCertificateEnvironment", Outcome.BAD_CREDENTIALS),
    (403, "Forbidden", Outcome.BAD_CREDENTIALS),
    (400, "TopicDisallowed", Outcome.BAD_CREDENTIALS),
    (400, "BadTopic", Outcome.BAD_CREDENTIALS),
    (429, "TooManyRequests", Outcome.RETRY),
    (429, "TooManyProviderTokenUpdates", Outcome.RETRY),
    (500, "InternalServerError", Outcome.RETRY),
    (503, "ServiceUnavailable", Outcome.RETRY),
    (503, "Shutdown", Outcome.RETRY),
    (413, "PayloadTooLarge", Outcome.PERMANENT),
    (400, "BadCollapseId", Outcome.PERMANENT),
    (400, "PayloadEmpty", Outcome.PERMANENT),
    (400, "SomethingNew", Outcome.PERMANENT),
]


@pytest.mark.parametrize(("status", "reason", "outcome"), ERROR_TABLE)
async def test_error_table(
    mock: ApnsMock,
    make_provider: MakeProvider,
    status: int,
    reason: str,
    outcome: Outcome,
) -> None:
    """Each APNs status/reason on the wire maps to the outcome of the error table."""
    provider = await make_provider()
    mock.script(status, reason)

    result = await provider.send(endpoint(mock.register_device()), message())

    assert outcome == result.outcome
    assert f"{status} {reason}" == result.reason
    assert status == result.status


async def test_expired_provider_token_twice_is_retry(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """ExpiredProviderToken is re-signed and resent once, then reported as RETRY."""
    provider = await make_provider()
    mock.script(403, "ExpiredProviderToken", count=2)

    result = await provider.send(endpoint(mock.register_device()), message())

    assert Outcome.RETRY == result.outcome
    assert "403 ExpiredProviderToken" == result.reason
    assert 2 == len(mock.requests)


@pytest.mark.parametrize(
    ("state", "outcome", "reason"),
    [
        ("valid", Outcome.DELIVERED, "200"),
        ("unregistered", Outcome.INVALID_TOKEN, "410 Unregistered"),
        ("invalid", Outcome.INVALID_TOKEN, "400 BadDeviceToken"),
    ],
)
async def test_device_states(
    mock: ApnsMock,
    make_provider: MakeProvider,
    state: str,
    outcome: Outcome,
    reason: str,
) -> None:
    """The mock's device states come back as delivered / 410 / 400 BadDeviceToken."""
    provider = await make_provider()

    result = await provider.send(endpoint(mock.register_device(state=state)), message())

    assert (outcome, reason) == (result.outcome, result.reason)


async def test_unregistered_answer_carries_timestamp(
    mock: ApnsMock, ca_file: str
) -> None:
    """A 410 from the mock is one DATA frame with reason and a millisecond timestamp."""
    from pushgw.providers.h2client import H2Pool

    token = mock.register_device(state="unregistered")
    settings = ProviderSettings(base_url=mock.base_url, ca_file=ca_file)
    pool = H2Pool(
        host="127.0.0.1",
        port=int(mock.base_url.rsplit(":", 1)[1]),
        ssl_context=settings.ssl_context(),
    )
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":path", b"/3/device/" + token.encode()),
        (b":authority", b"x"),
        (b"apns-topic", mock.default_bundle.encode()),
    ]
    try:
        response = await pool.request(headers, b'{"aps":{}}', timeout_s=5)
    finally:
        await pool.aclose()

    body = json.loads(response.body)

    assert 410 == response.status
    assert "Unregistered" == body["reason"]
    assert isinstance(body["timestamp"], int)


async def test_topic_of_other_app_is_invalid_token(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A token registered for another bundle answers DeviceTokenNotForTopic."""
    provider = await make_provider()
    token = mock.register_device(bundle_id="com.other.app")

    result = await provider.send(endpoint(token), message())

    assert Outcome.INVALID_TOKEN == result.outcome
    assert "400 DeviceTokenNotForTopic" == result.reason


async def test_faults_map_to_outcomes(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """Injected throttle/unavailable/server_error/bad_credentials/invalid_token faults classify."""
    provider = await make_provider()
    token = mock.register_device()
    kinds = [
        "throttle",
        "unavailable",
        "server_error",
        "bad_credentials",
        "invalid_token",
    ]
    mock.faults.rules.extend(FaultRule(kind, count=1) for kind in kinds)

    outcomes = [
        (await provider.send(endpoint(token), message())).outcome for _ in kinds
    ]

    expected = [
        Outcome.RETRY,
        Outcome.RETRY,
        Outcome.RETRY,
        Outcome.BAD_CREDENTIALS,
        Outcome.INVALID_TOKEN,
    ]
    assert expected == outcomes


async def test_retry_after_is_surfaced(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A 429 with Retry-After gives RETRY with retry_after set to the header's seconds."""
    provider = await make_provider()
    mock.faults.rules.append(FaultRule("throttle", count=1, retry_after=7))

    result = await provider.send(endpoint(mock.register_device()), message())

    assert SendResult(Outcome.RETRY, "429 TooManyRequests", 7.0, status=429) == result


async def test_jwt_shared_across_connections(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """Every connection of an app (and every app of the key) sends the same JWT."""
    mock.max_concurrent_streams = 1
    provider = await make_provider(max_connections=4)
    token = mock.register_device()
    mock.faults.rules.append(FaultRule("latency", count=8, latency_s=0.1))

    results = await asyncio.gather(
        *(provider.send(endpoint(token), message()) for _ in range(8))
    )

    tokens = {r["headers"][b"authorization"] for r in mock.requests}

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert 2 <= mock.stats["connections"]
    assert 1 == len(tokens)
    assert provider.signer is not None and 1 == provider.signer.signed


async def test_expired_provider_token_is_resigned(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """On 403 ExpiredProviderToken the adapter re-signs and resends once, successfully."""
    provider = await make_provider()
    token = mock.register_device()
    mock.faults.rules.append(FaultRule("expire_auth", count=1))

    result = await provider.send(endpoint(token), message())

    first, second = (r["headers"][b"authorization"] for r in mock.requests)

    assert Outcome.DELIVERED == result.outcome
    assert first != second
    assert provider.signer is not None and 2 == provider.signer.signed


async def test_stale_jwt_by_server_clock(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A server clock an hour ahead rejects the JWT as expired; the adapter retries once."""
    provider = await make_provider()
    token = mock.register_device()
    assert (
        Outcome.DELIVERED == (await provider.send(endpoint(token), message())).outcome
    )
    mock.clock = lambda: 10**10

    result = await provider.send(endpoint(token), message())

    assert Outcome.RETRY == result.outcome
    assert "403 ExpiredProviderToken" == result.reason
    assert 3 == len(mock.requests)


def test_jwt_rotated_every_40_minutes() -> None:
    """The shared signer keeps one token for 40 minutes, then signs a new one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    now = [1_000_000.0]
    signer = JwtSigner(
        key_pem=pem, key_id="ABCDEFGHIJ", team_id="TEAM123456", clock=lambda: now[0]
    )
    first = signer.header()
    now[0] += 39 * 60
    same = signer.header()
    now[0] += 60
    rotated = signer.header()

    assert first == same
    assert first != rotated
    assert 2 == signer.signed


@pytest.mark.parametrize(
    ("platform", "size", "outcome"),
    [
        (Platform.APNS, 4096, Outcome.DELIVERED),
        (Platform.APNS, 4097, Outcome.PERMANENT),
        (Platform.APNS_VOIP, 5120, Outcome.DELIVERED),
        (Platform.APNS_VOIP, 5121, Outcome.PERMANENT),
    ],
)
async def test_payload_limits(
    mock: ApnsMock,
    make_provider: MakeProvider,
    platform: Platform,
    size: int,
    outcome: Outcome,
) -> None:
    """Payloads over 4096 bytes (5120 for VoIP) are PERMANENT and never sent."""
    provider = await make_provider(platform=platform)
    skeleton = '{"aps":{"alert":""}}'
    body = '{"aps":{"alert":"' + "x" * (size - len(skeleton)) + '"}}'
    assert size == len(body)

    result = await provider.send(
        endpoint(mock.register_device()), message(body, native=True)
    )

    assert outcome == result.outcome
    assert (1 if outcome is Outcome.DELIVERED else 0) == len(mock.requests)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"'])
async def test_native_payload_must_be_json_object(
    mock: ApnsMock, make_provider: MakeProvider, body: str
) -> None:
    """A native APNS body that is not a JSON object is PERMANENT without sending."""
    provider = await make_provider()

    result = await provider.send(
        endpoint(mock.register_device()), message(body, native=True)
    )

    assert Outcome.PERMANENT == result.outcome
    assert 0 == len(mock.requests)


async def test_text_is_wrapped_as_alert(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A non-native message is sent as {"aps":{"alert": text}} with push type alert."""
    provider = await make_provider()
    token = mock.register_device()

    await provider.send(endpoint(token), message("héllo"))

    received = mock.received_for(token)[0]

    assert {"aps": {"alert": "héllo"}} == received.payload
    assert "alert" == received.headers["apns-push-type"]
    assert "com.example.app" == received.headers["apns-topic"]
    assert "apns-priority" not in received.headers
    assert "apns-expiration" not in received.headers


@pytest.mark.parametrize(
    ("platform", "body", "attrs", "expected"),
    [
        (
            Platform.APNS,
            '{"aps":{"content-available":1}}',
            {},
            {"apns-push-type": "background", "apns-priority": "5"},
        ),
        (
            Platform.APNS,
            '{"aps":{"content-available":1,"sound":"a.caf"}}',
            {},
            {"apns-push-type": "alert"},
        ),
        (
            Platform.APNS_VOIP,
            '{"aps":{}}',
            {},
            {"apns-push-type": "voip", "apns-topic": "com.example.app.voip"},
        ),
        (
            Platform.APNS,
            '{"aps":{"alert":"x"}}',
            {
                "APNS.PUSH_TYPE": "location",
                "APNS.PRIORITY": "10",
                "APNS.COLLAPSE_ID": "group-1",
                "APNS.TTL": "60",
            },
            {
                "apns-push-type": "location",
                "apns-priority": "10",
                "apns-collapse-id": "group-1",
                "apns-expiration": "1060",
            },
        ),
        (
            Platform.APNS_SANDBOX,
            '{"aps":{"alert":"x"}}',
            {"APNS_SANDBOX.TTL": "0"},
            {"apns-expiration": "0"},
        ),
    ],
)
async def test_request_headers(
    mock: ApnsMock,
    make_provider: MakeProvider,
    platform: Platform,
    body: str,
    attrs: dict[str, str],
    expected: dict[str, str],
) -> None:
    """Push type, priority, collapse id, expiration and topic follow SNS's rules."""
    provider = await make_provider(platform=platform)
    token = mock.register_device()

    result = await provider.send(
        endpoint(token), message(body, native=True, attrs=attrs)
    )

    headers = mock.received_for(token)[0].headers

    assert Outcome.DELIVERED == result.outcome
    assert expected == {k: headers.get(k) for k in expected}
    assert 36 == len(headers["apns-id"])


async def test_expiration_from_expires_at(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """message.expires_at wins over the TTL attribute for apns-expiration."""
    provider = await make_provider()
    token = mock.register_device()
    msg = RenderedMessage(
        message_id="m",
        body="x",
        native=False,
        attributes={"AWS.SNS.MOBILE.APNS.TTL": MessageAttribute("String", "60")},
        expires_at=2_000_000_000.5,
        published_at=1000.0,
    )

    await provider.send(endpoint(token), msg)

    assert "2000000000" == mock.received_for(token)[0].headers["apns-expiration"]


async def test_topic_attribute_overrides_bundle(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """AWS.SNS.MOBILE.APNS.TOPIC replaces the bundle id as apns-topic."""
    provider = await make_provider()
    token = mock.register_device(bundle_id="com.example.widget")

    result = await provider.send(
        endpoint(token), message(attrs={"APNS.TOPIC": "com.example.widget"})
    )

    assert Outcome.DELIVERED == result.outcome
    assert "com.example.widget" == mock.received_for(token)[0].headers["apns-topic"]


async def test_late_response_after_timeout_is_harmless(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """An answer arriving after the caller timed out is dropped; the connection lives on."""
    provider = await make_provider(timeout_s=0.2)
    slow, other = mock.register_device(), mock.register_device()
    mock.late_answers = True
    mock.faults.rules.append(
        FaultRule("latency", token_prefix=slow, count=1, latency_s=0.4)
    )
    mock.faults.rules.append(
        FaultRule("latency", token_prefix=other, count=1, latency_s=0.6)
    )

    timed_out = await provider.send(endpoint(slow), message())
    provider.settings = dataclasses.replace(provider.settings, timeout_s=5.0)
    survived = await provider.send(endpoint(other), message())
    after = await provider.send(endpoint(other), message())

    assert Outcome.RETRY == timed_out.outcome
    assert "TimeoutError" in timed_out.reason
    assert 1 == mock.stats["late_answer"]
    assert Outcome.DELIVERED == survived.outcome == after.outcome
    assert 1 == mock.stats["connections"]
    assert 0 == provider.pool.open_streams


async def test_goaway_with_streams_open(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """GOAWAY fails the unprocessed stream as RETRY and the next send uses a new connection."""
    provider = await make_provider()
    token = mock.register_device()
    mock.faults.rules.append(FaultRule("goaway", count=1))

    result = await provider.send(endpoint(token), message())
    first_connection = list(provider.pool.connections)
    after = await provider.send(endpoint(token), message())

    assert Outcome.RETRY == result.outcome
    assert "GOAWAY" in result.reason and "Shutdown" in result.reason
    assert [] == first_connection
    assert Outcome.DELIVERED == after.outcome
    assert 2 == mock.stats["connections"]


async def test_drop_and_hang_are_retry(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A dropped connection and a never-answered stream both give RETRY, not a hang."""
    provider = await make_provider(timeout_s=0.3)
    token = mock.register_device()
    mock.faults.rules.append(FaultRule("drop", count=1))
    mock.faults.rules.append(FaultRule("hang", count=1))

    dropped = await provider.send(endpoint(token), message())
    hung = await provider.send(endpoint(token), message())

    assert Outcome.RETRY == dropped.outcome
    assert Outcome.RETRY == hung.outcome
    assert "TimeoutError" in hung.reason
    assert 0 == provider.pool.open_streams


@pytest.mark.parametrize(
    ("kind", "outcome", "reason"),
    [
        ("invalid_token", Outcome.INVALID_TOKEN, "410 (no reason)"),
        ("bad_credentials", Outcome.BAD_CREDENTIALS, "403 (no reason)"),
        ("throttle", Outcome.RETRY, "429 (no reason)"),
        ("unavailable", Outcome.RETRY, "503 (no reason)"),
    ],
)
async def test_error_without_body(
    mock: ApnsMock,
    make_provider: MakeProvider,
    kind: str,
    outcome: Outcome,
    reason: str,
) -> None:
    """An error status without a JSON body is classified by status, never a hang."""
    provider = await make_provider(timeout_s=2)
    mock.error_without_body = True
    mock.faults.rules.append(FaultRule(kind, count=1))

    result = await asyncio.wait_for(
        provider.send(endpoint(mock.register_device()), message()), 2
    )

    assert (outcome, reason) == (result.outcome, result.reason)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(500, Outcome.RETRY), (502, Outcome.RETRY), (504, Outcome.RETRY),
     (400, Outcome.PERMANENT), (413, Outcome.PERMANENT)],
)  # fmt: skip
async def test_status_without_reason(
    mock: ApnsMock, make_provider: MakeProvider, status: int, outcome: Outcome
) -> None:
    """The STATUSES rows (and the 5xx/other fallbacks) classify a bare status."""
    provider = await make_provider(timeout_s=2)
    mock.error_without_body = True
    mock.script(status, "unsent")

    result = await provider.send(endpoint(mock.register_device()), message())

    assert (outcome, f"{status} (no reason)") == (result.outcome, result.reason)


async def test_one_stream_before_settings(make_provider: MakeProvider) -> None:
    """Against a token-strict server (1 stream until a valid JWT) 50 concurrent sends succeed."""
    async with ApnsMock(token_strict=True) as strict:
        strict.settings_delay_s = 0.2  # SETTINGS arrive well after the handshake
        provider = await make_provider(target=strict, max_connections=2)
        token = strict.register_device()

        results = await asyncio.gather(
            *(provider.send(endpoint(token), message()) for _ in range(50))
        )

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert 0 == strict.stats["protocol_error"]
    assert 50 == strict.stats["delivered"]


async def test_certificate_auth(mock: ApnsMock, make_provider: MakeProvider) -> None:
    """Certificate credentials authenticate by mTLS, the topic being the cert's UID."""
    provider = await make_provider(auth="certificate")
    token = mock.register_device()

    result = await provider.send(endpoint(token), message())

    assert Outcome.DELIVERED == result.outcome
    assert provider.signer is None
    assert "com.example.app" == provider.topic
    assert b"authorization" not in last_headers(mock)


async def test_certificate_for_other_topic_is_bad_credentials(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """A certificate pushing to a topic it does not cover gets TopicDisallowed."""
    provider = await make_provider(auth="certificate")
    token = mock.register_device(bundle_id="com.other.app")

    result = await provider.send(
        endpoint(token), message(attrs={"APNS.TOPIC": "com.other.app"})
    )

    assert (Outcome.BAD_CREDENTIALS, "400 TopicDisallowed") == (
        result.outcome,
        result.reason,
    )


async def test_unreachable_server_is_retry(make_provider: MakeProvider) -> None:
    """A refused connection is a transport error: RETRY."""
    mock = ApnsMock()
    mock.base_url = "https://127.0.0.1:9"
    provider = await make_provider(target=mock)

    result = await provider.send(endpoint("ab" * 32), message())

    assert Outcome.RETRY == result.outcome
    assert "transport" in result.reason


async def _send_many(provider: ApnsProvider, token: str, count: int, width: int) -> Any:
    sem = asyncio.Semaphore(width)

    async def one() -> Outcome:
        async with sem:
            return (await provider.send(endpoint(token), message())).outcome

    return await asyncio.gather(*(one() for _ in range(count)))


# The client's timeout in the bounded runs: 300 sends in flight on a loaded
# 2-core box took more than 0.5 s at times, and each such send counted as one
# of the hung ones (a CI run saw 300 of them).
BOUNDED_TIMEOUT_S = 2.0


async def _bounded_run(mock: ApnsMock, provider: ApnsProvider, count: int) -> None:
    """`count` sends: 10 hang, 10 answered late, a tenth to an unregistered device."""
    token, gone = mock.register_device(), mock.register_device(state="unregistered")
    mock.late_answers = True
    mock.faults.rules.append(FaultRule("hang", token_prefix=token, count=10))
    # Answered 2 s after the client's timeout (BOUNDED_TIMEOUT_S): a margin
    # that holds on a loaded machine (0.1 s let the client's late timer and the
    # answer cross).
    mock.faults.rules.append(
        FaultRule(
            "latency", token_prefix=token, count=10, latency_s=BOUNDED_TIMEOUT_S + 2
        )
    )

    outcomes = await _send_many(provider, token, count - count // 10, 300)
    outcomes += await _send_many(provider, gone, count // 10, 300)

    assert count - count // 10 - 20 == outcomes.count(Outcome.DELIVERED)
    assert 20 == outcomes.count(Outcome.RETRY)
    assert count // 10 == outcomes.count(Outcome.INVALID_TOKEN)
    assert 0 == provider.pool.tracked


async def test_maps_bounded_over_1000_sends(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """After 1,000 sends with timeouts and errors no stream or waiter is left behind."""
    provider = await make_provider(timeout_s=BOUNDED_TIMEOUT_S)

    await _bounded_run(mock, provider, 1000)


@pytest.mark.slow
async def test_maps_bounded_over_10000_sends(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """After 10,000 sends (timeouts, late answers, errors) the client maps are empty."""
    provider = await make_provider(timeout_s=BOUNDED_TIMEOUT_S)

    await _bounded_run(mock, provider, 10000)
    # The late answers come 2 s after their sends' timeouts: wait for them.
    await eventually(lambda: mock.stats["late_answer"] >= 10, limit_s=10, step_s=0.1)

    assert 10 == mock.stats["late_answer"]
    assert 0 == provider.pool.tracked  # the late answers found nothing to wake
    assert 1 == mock.stats["connections"]


@pytest.mark.parametrize(
    ("principal", "credential", "attributes"),
    [
        (
            "ABCDEFGHIJ",
            "not a key",
            {"ApplePlatformTeamID": "T", "ApplePlatformBundleID": "b"},
        ),
        ("ABCDEFGHIJ", "", {"ApplePlatformBundleID": "b"}),
        ("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----", "k", {}),
    ],
)
def test_bad_credentials_are_setup_errors(
    principal: str, credential: str, attributes: dict[str, str]
) -> None:
    """Unusable credentials fail at construction with ProviderSetupError."""
    app = PlatformApplication(
        arn="a",
        name="n",
        platform=Platform.APNS,
        principal=principal,
        credential=credential,
        attributes=attributes,
    )

    with pytest.raises(ProviderSetupError):
        ApnsProvider(app=app, settings=ProviderSettings(base_url="https://127.0.0.1:9"))


async def test_sandbox_platform_uses_sandbox_url(mock: ApnsMock, ca_file: str) -> None:
    """APNS_SANDBOX apps connect to settings.sandbox_url, not base_url."""
    attrs = mock.issue_credentials()
    app = PlatformApplication(
        arn="a",
        name="n",
        platform=Platform.APNS_SANDBOX,
        principal=attrs.pop("PlatformPrincipal"),
        credential=attrs.pop("PlatformCredential"),
        attributes=attrs,
    )
    settings = ProviderSettings(
        base_url="https://127.0.0.1:9", sandbox_url=mock.base_url, ca_file=ca_file
    )
    provider = ApnsProvider(app=app, settings=settings)
    try:
        result = await provider.send(endpoint(mock.register_device()), message())
    finally:
        await provider.aclose()

    assert Outcome.DELIVERED == result.outcome


@pytest.mark.parametrize("token", ["", "abc", "zz" * 32, "ab/cd", "ab" * 101])
async def test_malformed_token_not_sent(
    mock: ApnsMock, make_provider: MakeProvider, token: str
) -> None:
    """A token that is not even-length hex (<= 200 chars) is INVALID_TOKEN, unsent."""
    provider = await make_provider()

    result = await provider.send(endpoint(token), message())

    assert Outcome.INVALID_TOKEN == result.outcome
    assert 0 == len(mock.requests)


async def test_each_request_carries_its_own_canonical_apns_id(
    mock: ApnsMock, make_provider: MakeProvider
) -> None:
    """apns-id is a canonical UUID (the mock answers BadMessageId otherwise),
    a new one per request."""
    provider = await make_provider()
    token = mock.register_device()
    outcomes = await _send_many(provider, token, 50, 10)
    assert outcomes == [Outcome.DELIVERED] * 50
    ids = [r["headers"][b"apns-id"] for r in list(mock.requests)[-50:]]
    assert len(set(ids)) == 50
    assert all(
        re.fullmatch(rb"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i) for i in ids
    )
