"""ADM adapter against the loopback ADM mock, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.adm import AdmProvider, adm_md5, classify
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.mocks.adm import AdmMock
from pushgw.providers.mocks.base import FaultRule
from tests.providers.answers import answer
from tests.providers.clock import ManualClock as Clock

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/ADM/test"


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="mock")
async def _mock(clock: Clock) -> AsyncIterator[AdmMock]:
    async with AdmMock(clock=clock) as mock:
        yield mock


def make_provider(
    mock: AdmMock, *, timeout_s: float = 5.0, **creds: str
) -> AdmProvider:
    issued = mock.issue_credentials()
    app = PlatformApplication(
        arn=APP_ARN,
        name="test",
        platform=Platform.ADM,
        principal=creds.get("principal", issued["PlatformPrincipal"]),
        credential=creds.get("credential", issued["PlatformCredential"]),
    )
    settings = ProviderSettings(
        base_url=mock.base_url,
        token_url=f"{mock.base_url}/auth/O2/token",
        timeout_s=timeout_s,
    )
    return AdmProvider(app=app, settings=settings)


@pytest.fixture(name="adm")
async def _adm(mock: AdmMock, clock: Clock) -> AsyncIterator[AdmProvider]:
    provider = make_provider(mock)
    provider.clock = clock
    yield provider
    await provider.aclose()


def endpoint(token: str) -> Endpoint:
    return Endpoint(arn=f"{APP_ARN}/e", app_arn=APP_ARN, token=token)


def text(body: str = "hello", **kwargs: object) -> RenderedMessage:
    return RenderedMessage(message_id="m-1", body=body, native=False, **kwargs)  # type: ignore[arg-type]


def native(payload: object, **kwargs: object) -> RenderedMessage:
    return RenderedMessage(
        message_id="m-1",
        body=json.dumps(payload),
        native=True,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_plain_text_is_wrapped_as_default_data(
    mock: AdmMock, adm: AdmProvider
) -> None:
    """Plain text goes out as data.default with a correct md5 and the ADM headers."""
    token = mock.register_device()

    result = await adm.send(endpoint(token), text("hi there"))

    [got] = mock.received_for(token)

    assert result.outcome == Outcome.DELIVERED
    assert got.payload["data"] == {"default": "hi there"}
    assert adm_md5({"default": "hi there"}) == got.payload["md5"]
    assert (
        got.headers["X-Amzn-Type-Version"]
        == "com.amazon.device.messaging.ADMMessage@1.0"
    )


async def test_native_payload_values_are_stringified(
    mock: AdmMock, adm: AdmProvider
) -> None:
    """Native data values become strings, and other keys pass through unchanged."""
    token = mock.register_device()
    payload = {"data": {"n": 3, "o": {"a": 1}, "s": "x"}, "consolidationKey": "ck"}

    result = await adm.send(endpoint(token), native(payload))

    [got] = mock.received_for(token)

    assert result.outcome == Outcome.DELIVERED
    assert got.payload["data"] == {"n": "3", "o": '{"a":1}', "s": "x"}
    assert got.payload["consolidationKey"] == "ck"


def test_md5_known_vector() -> None:
    """The checksum is base64(md5("k1:v1,k2:v2")) with keys sorted."""
    # base64(md5(b"a:1,b:2")), computed once with hashlib and base64.
    assert adm_md5({"b": "2", "a": "1"}) == "Xvb142mSeo7pSjdDDASyeA=="


@pytest.mark.parametrize(
    ("state", "outcome", "reason"),
    [
        ("unregistered", Outcome.INVALID_TOKEN, "400 Unregistered"),
        ("invalid", Outcome.INVALID_TOKEN, "400 InvalidRegistrationId"),
        ("valid", Outcome.DELIVERED, "200"),
    ],
)
async def test_device_states(
    mock: AdmMock, adm: AdmProvider, state: str, outcome: Outcome, reason: str
) -> None:
    """Each registration state maps to its outcome and the provider's reason."""
    token = mock.register_device(state=state)

    result = await adm.send(endpoint(token), text())

    assert (outcome, reason) == (result.outcome, result.reason)


async def test_canonical_registration_id(mock: AdmMock, adm: AdmProvider) -> None:
    """A 200 naming a different registrationID is a canonical token."""
    token = mock.register_device(state="canonical")

    result = await adm.send(endpoint(token), text())

    new = mock.canonical[token]

    assert result.outcome == Outcome.CANONICAL_TOKEN
    assert new == result.new_token
    assert len(mock.received_for(new)) == 1


@pytest.mark.parametrize(
    ("rule", "outcome", "retry_after"),
    [
        (FaultRule("throttle", retry_after=7), Outcome.RETRY, 7.0),
        (FaultRule("unavailable", retry_after=30), Outcome.RETRY, 30.0),
        (FaultRule("server_error"), Outcome.RETRY, None),
        (FaultRule("html_502"), Outcome.RETRY, None),
        (FaultRule("invalid_token"), Outcome.INVALID_TOKEN, None),
        (FaultRule("bad_credentials"), Outcome.BAD_CREDENTIALS, None),
        (FaultRule("drop"), Outcome.RETRY, None),
        (FaultRule("latency", latency_s=0.01), Outcome.DELIVERED, None),
    ],
    ids=lambda v: v.kind if isinstance(v, FaultRule) else None,
)
async def test_fault_answers(
    mock: AdmMock,
    adm: AdmProvider,
    rule: FaultRule,
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    """Each injected fault becomes the outcome the ADM error table prescribes."""
    token = mock.register_device()
    rule.count = 1
    mock.faults.rules.append(rule)

    result = await adm.send(endpoint(token), text())

    assert (outcome, retry_after) == (result.outcome, result.retry_after)


async def test_retry_after_http_date(mock: AdmMock, adm: AdmProvider) -> None:
    """A Retry-After given as an HTTP-date becomes seconds from now."""
    token = mock.register_device()
    mock.retry_after_http_date = True
    mock.faults.rules.append(FaultRule("throttle", count=1, retry_after=120))

    result = await adm.send(endpoint(token), text())

    assert result.outcome == Outcome.RETRY
    assert result.retry_after is not None
    assert 110 <= result.retry_after <= 121


async def test_other_400_reason_is_permanent(mock: AdmMock, adm: AdmProvider) -> None:
    """A 400 other than a token error (InvalidConsolidationKey) is permanent."""
    token = mock.register_device()

    result = await adm.send(
        endpoint(token), native({"data": {}, "consolidationKey": "k" * 65})
    )

    assert (
        result.outcome,
        result.reason,
    ) == (Outcome.PERMANENT, "400 InvalidConsolidationKey")


async def test_413_from_provider_is_permanent(mock: AdmMock, adm: AdmProvider) -> None:
    """A 413 MessageTooLarge from ADM is permanent."""
    token = mock.register_device()
    mock.max_data_bytes = 10

    result = await adm.send(endpoint(token), text("x" * 50))

    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "413 MessageTooLarge")


async def test_oversized_data_is_refused_without_sending(
    mock: AdmMock, adm: AdmProvider
) -> None:
    """Data over 6144 bytes is permanent and never reaches the provider."""
    token = mock.register_device()

    result = await adm.send(endpoint(token), text("x" * 6200))

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_ttl_attribute_sets_expires_after(
    mock: AdmMock, adm: AdmProvider, clock: Clock
) -> None:
    """AWS.SNS.MOBILE.ADM.TTL minus dwell time becomes expiresAfter."""
    token = mock.register_device()
    attrs = {"AWS.SNS.MOBILE.ADM.TTL": MessageAttribute("String", "600")}
    message = text(attributes=attrs, published_at=clock.now - 100)

    await adm.send(endpoint(token), message)

    assert mock.received_for(token)[0].payload["expiresAfter"] == 500


async def test_expires_at_sets_expires_after(
    mock: AdmMock, adm: AdmProvider, clock: Clock
) -> None:
    """Without the attribute, the remaining time to expires_at is used."""
    token = mock.register_device()

    await adm.send(endpoint(token), text(expires_at=clock.now + 42))

    assert mock.received_for(token)[0].payload["expiresAfter"] == 42


async def test_expired_message_is_not_sent(
    mock: AdmMock, adm: AdmProvider, clock: Clock
) -> None:
    """A message whose TTL ran out while queued is permanent and not sent."""
    token = mock.register_device()

    result = await adm.send(endpoint(token), text(expires_at=clock.now - 1))

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_expired_access_token_is_refreshed_once(
    mock: AdmMock, adm: AdmProvider, clock: Clock
) -> None:
    """A 401 AccessTokenExpired refreshes the token once and resends."""
    token = mock.register_device()
    await adm.send(endpoint(token), text())
    clock.now += 4000  # past the mock's 3600 s lifetime; the cache does not know

    result = await adm.send(endpoint(token), text())

    assert result.outcome == Outcome.DELIVERED
    assert adm.tokens.fetches == 2
    assert mock.token_requests == 2


async def test_expire_auth_fault_is_recovered(mock: AdmMock, adm: AdmProvider) -> None:
    """The expire_auth fault costs one refresh, not a failed delivery."""
    token = mock.register_device()
    mock.faults.rules.append(FaultRule("expire_auth", count=1))

    result = await adm.send(endpoint(token), text())

    assert result.outcome == Outcome.DELIVERED
    assert mock.stats["tokens_issued"] == 2


async def test_concurrent_sends_fetch_one_token(
    mock: AdmMock, adm: AdmProvider
) -> None:
    """Fifty concurrent first sends share a single token fetch."""
    tokens = [mock.register_device() for _ in range(50)]

    results = await asyncio.gather(*(adm.send(endpoint(t), text()) for t in tokens))

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert mock.token_requests == 1


async def test_rejected_client_is_bad_credentials(mock: AdmMock) -> None:
    """An invalid_client answer from the token endpoint disables the app."""
    provider = make_provider(mock, credential="wrong")
    try:
        result = await provider.send(endpoint(mock.register_device()), text())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert result.reason == "token 400 invalid_client"


async def test_hang_times_out_as_retry(mock: AdmMock) -> None:
    """A provider that never answers yields RETRY after the client timeout."""
    provider = make_provider(mock, timeout_s=0.3)
    mock.faults.rules.append(FaultRule("hang", token_prefix="amzn1.adm-registration"))
    try:
        result: SendResult = await provider.send(
            endpoint(mock.register_device()), text()
        )
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.RETRY
    assert result.reason.startswith("transport:")


async def test_unreachable_provider_is_retry() -> None:
    """A refused connection to the token endpoint is a transient RETRY."""
    mock = AdmMock()
    await mock.start()
    provider = make_provider(mock)
    await mock.stop()
    try:
        result = await provider.send(endpoint("amzn1.adm-registration.v3.x"), text())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.RETRY


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    [
        (401, {"reason": "AccessTokenExpired"}, {}, Outcome.RETRY, None),
        (408, b"", {"Retry-After": "4"}, Outcome.RETRY, 4.0),
        (500, {"reason": "UnknownError"}, {}, Outcome.RETRY, None),
        (502, b"<html>", {}, Outcome.RETRY, None),
        (404, b"", {}, Outcome.PERMANENT, None),
        (400, {"reason": "InvalidData"}, {}, Outcome.PERMANENT, None),
        (200, {"registrationID": "same-id"}, {}, Outcome.DELIVERED, None),
    ],
    ids=["401 after refresh", "408", "500", "other 5xx", "other 4xx", "400 InvalidData", "same id"],
)  # fmt: skip
def test_classify_rows_the_mock_does_not_produce(
    status: int,
    body: object,
    headers: dict[str, str],
    expected: Outcome,
    retry_after: float | None,
) -> None:
    """Error-table rows without a mock trigger classify as the table says."""
    result = classify(answer(status, body, headers), "same-id")

    assert (expected, retry_after) == (result.outcome, result.retry_after)
