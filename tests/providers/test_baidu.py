"""Baidu Push adapter against the loopback Baidu mock, over real sockets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import pytest

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.baidu import BaiduProvider, baidu_sign, classify, php_urlencode
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage
from pushgw.providers.mocks.baidu import BaiduMock
from pushgw.providers.mocks.base import FaultRule
from tests.providers.clock import ManualClock as Clock

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/BAIDU/myapp"


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="mock")
async def _mock(clock: Clock) -> AsyncIterator[BaiduMock]:
    async with BaiduMock(clock=clock) as mock:
        yield mock


def make_provider(mock: BaiduMock, **creds: str) -> BaiduProvider:
    issued = mock.issue_credentials()
    app = PlatformApplication(
        arn=APP_ARN,
        name="myapp",
        platform=Platform.BAIDU,
        principal=creds.get("principal", issued["PlatformPrincipal"]),
        credential=creds.get("credential", issued["PlatformCredential"]),
    )
    return BaiduProvider(app=app, settings=ProviderSettings(base_url=mock.base_url))


@pytest.fixture(name="baidu")
async def _baidu(mock: BaiduMock, clock: Clock) -> AsyncIterator[BaiduProvider]:
    provider = make_provider(mock)
    provider.clock = clock
    yield provider
    await provider.aclose()


def endpoint(mock: BaiduMock, channel_id: str) -> Endpoint:
    user_id = mock.user_ids.get(channel_id, "1")
    return Endpoint(
        arn=f"{APP_ARN}/e",
        app_arn=APP_ARN,
        token=channel_id,
        attributes={"ChannelId": channel_id, "UserId": user_id},
    )


def attrs(**values: str) -> dict[str, MessageAttribute]:
    return {
        f"AWS.SNS.MOBILE.BAIDU.{name}": MessageAttribute("String", value)
        for name, value in values.items()
    }


def text(body: str = "hello", **kwargs: object) -> RenderedMessage:
    return RenderedMessage(message_id="m-1", body=body, native=False, **kwargs)  # type: ignore[arg-type]


def native(body: str, **kwargs: object) -> RenderedMessage:
    return RenderedMessage(message_id="m-1", body=body, native=True, **kwargs)  # type: ignore[arg-type]


def test_sign_known_vector() -> None:
    """The sign matches one worked by hand from PHP urlencode (space, ~, JSON)."""
    # "POST" + url + "apikey=key" "channel_id=123" "msg=..." "timestamp=..." + secret,
    # then PHP urlencode: ':' '/' '=' '{' '"' '~' %-encoded, ' ' -> '+'.
    encoded = (
        "POSThttp%3A%2F%2Fapi.tuisong.baidu.com%2Frest%2F3.0%2Fpush%2Fsingle_device"
        "apikey%3Dkeychannel_id%3D123msg%3D%7B%22title%22%3A%22a+b%7Ec%22%7D"
        "timestamp%3D1700000000s%7Ee+cret"
    )
    params = {
        "timestamp": "1700000000",
        "apikey": "key",
        "msg": '{"title":"a b~c"}',
        "channel_id": "123",
    }

    sign = baidu_sign(
        method="post",
        url="http://api.tuisong.baidu.com/rest/3.0/push/single_device",
        params=params,
        secret="s~e cret",
    )

    assert hashlib.md5(encoded.encode()).hexdigest() == sign
    assert sign == "63a637f066abb1a00cbc306587be3f64"


def test_php_urlencode_rules() -> None:
    """Only A-Za-z0-9_.- survive; space is '+', '~' and UTF-8 are %XX uppercase."""
    assert php_urlencode("a-b_c.d ~*!é") == "a-b_c.d+%7E%2A%21%C3%A9"


async def test_plain_text_becomes_notification(
    mock: BaiduMock, baidu: BaiduProvider
) -> None:
    """Plain text is sent as a msg_type=1 notification titled with the app name."""
    channel = mock.register_device()

    result = await baidu.send(endpoint(mock, channel), text("hi there"))

    [got] = mock.received_for(channel)

    assert result.outcome == Outcome.DELIVERED
    assert got.payload == {"title": "myapp", "description": "hi there"}
    assert {"apikey", "device_type", "msg_type"} == set(got.headers)
    assert (got.headers["msg_type"], got.headers["device_type"]) == ("1", "3")


async def test_native_with_reserved_attributes(
    mock: BaiduMock, baidu: BaiduProvider
) -> None:
    """MessageType, DeployStatus and TTL attributes become form parameters."""
    channel = mock.register_device()
    message = native(
        '{"custom":"x"}', attributes=attrs(MessageType="0", DeployStatus="2", TTL="90")
    )

    await baidu.send(endpoint(mock, channel), message)

    [got] = mock.received_for(channel)

    assert got.payload == {"custom": "x"}
    assert tuple(
        got.headers[k] for k in ("msg_type", "deploy_status", "msg_expires")
    ) == ("0", "2", "90")


async def test_channel_id_attribute_wins_over_token(
    mock: BaiduMock, baidu: BaiduProvider
) -> None:
    """The ChannelId endpoint attribute addresses the device, not the token."""
    channel = mock.register_device()
    ep = Endpoint(
        arn="a", app_arn=APP_ARN, token="other", attributes={"ChannelId": channel}
    )

    result = await baidu.send(ep, text())

    assert result.outcome == Outcome.DELIVERED
    assert len(mock.received_for(channel)) == 1


@pytest.mark.parametrize(
    ("state", "outcome", "code"),
    [
        ("unregistered", Outcome.INVALID_TOKEN, "30607"),
        ("invalid", Outcome.INVALID_TOKEN, "30608"),
    ],
)
async def test_channel_states(
    mock: BaiduMock, baidu: BaiduProvider, state: str, outcome: Outcome, code: str
) -> None:
    """Expired and unknown channels disable the endpoint."""
    channel = mock.register_device(state=state)

    result = await baidu.send(endpoint(mock, channel), text())

    assert outcome == result.outcome
    assert result.reason.startswith(code)


@pytest.mark.parametrize(
    ("kind", "outcome", "reason"),
    [
        ("throttle", Outcome.RETRY, "30699"),
        ("server_error", Outcome.RETRY, "30600"),
        ("unavailable", Outcome.RETRY, "503"),
        ("html_502", Outcome.RETRY, "502"),
        ("invalid_token", Outcome.INVALID_TOKEN, "30608"),
        ("bad_credentials", Outcome.BAD_CREDENTIALS, "30603"),
        ("drop", Outcome.RETRY, "transport"),
        ("expire_auth", Outcome.DELIVERED, "200"),
    ],
)
async def test_fault_answers(
    mock: BaiduMock, baidu: BaiduProvider, kind: str, outcome: Outcome, reason: str
) -> None:
    """Each injected fault becomes the outcome of the Baidu error table."""
    channel = mock.register_device()
    mock.faults.rules.append(FaultRule(kind, count=1))

    result = await baidu.send(endpoint(mock, channel), text())

    assert outcome == result.outcome
    assert result.reason.startswith(reason)


async def test_clock_skew_resigns_once_then_retries(
    mock: BaiduMock, baidu: BaiduProvider, clock: Clock
) -> None:
    """A persistent 30606 is re-signed once and then left to the retry policy."""
    channel = mock.register_device()
    baidu.clock = lambda: clock.now - 1000

    result = await baidu.send(endpoint(mock, channel), text())

    assert result.outcome == Outcome.RETRY
    assert result.reason.startswith("30606")
    assert len(mock.requests) == 2


async def test_wrong_secret_is_bad_credentials(mock: BaiduMock) -> None:
    """A sign made with the wrong secret key fails authentication."""
    provider = make_provider(mock, credential="not-the-secret")
    provider.clock = mock.clock
    try:
        result = await provider.send(endpoint(mock, mock.register_device()), text())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.BAD_CREDENTIALS


async def test_unknown_api_key_is_bad_credentials(mock: BaiduMock) -> None:
    """An API key the platform does not know fails authentication."""
    provider = make_provider(mock, principal="nope")
    provider.clock = mock.clock
    try:
        result = await provider.send(endpoint(mock, mock.register_device()), text())
    finally:
        await provider.aclose()

    assert (
        result.outcome,
        result.reason,
    ) == (Outcome.BAD_CREDENTIALS, "30603 Authentication Failed")


@pytest.mark.parametrize(
    "message",
    [
        native("not json"),
        text(attributes=attrs(DeployStatus="9")),
        text(attributes=attrs(MessageType="7")),
    ],
    ids=["bad-json", "deploy-status", "msg-type"],
)
async def test_bad_params_are_permanent(
    mock: BaiduMock, baidu: BaiduProvider, message: RenderedMessage
) -> None:
    """Invalid msg JSON or out-of-range parameters (30602) are permanent."""
    channel = mock.register_device()

    result = await baidu.send(endpoint(mock, channel), message)

    assert result.outcome == Outcome.PERMANENT
    assert result.reason.startswith("30602")


async def test_oversized_msg_is_refused_without_sending(
    mock: BaiduMock, baidu: BaiduProvider
) -> None:
    """A msg over 4096 bytes is permanent and never reaches the provider."""
    channel = mock.register_device()

    result = await baidu.send(
        endpoint(mock, channel), native(json.dumps({"x": "y" * 4100}))
    )

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_expired_message_is_not_sent(
    mock: BaiduMock, baidu: BaiduProvider, clock: Clock
) -> None:
    """A message whose TTL ran out while queued is permanent and not sent."""
    channel = mock.register_device()
    message = text(attributes=attrs(TTL="60"), published_at=clock.now - 61)

    result = await baidu.send(endpoint(mock, channel), message)

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_expires_at_sets_msg_expires(
    mock: BaiduMock, baidu: BaiduProvider, clock: Clock
) -> None:
    """The remaining time to expires_at becomes msg_expires."""
    channel = mock.register_device()

    await baidu.send(endpoint(mock, channel), text(expires_at=clock.now + 300))

    assert mock.received_for(channel)[0].headers["msg_expires"] == "300"


def test_secret_is_never_sent(baidu: BaiduProvider) -> None:
    """The signed form carries apikey and sign but never the secret key."""
    form = baidu.signed({"channel_id": "1", "msg": "{}"})

    assert baidu.app.credential not in form.values()
    assert {"apikey", "timestamp", "expires", "sign", "channel_id", "msg"} == set(form)


@pytest.mark.parametrize(
    ("status", "answer", "outcome"),
    [
        (200, {"request_id": 1, "response_params": {"msg_id": "9"}}, Outcome.DELIVERED),
        (400, {"error_code": 30605, "error_msg": "x"}, Outcome.PERMANENT),
        (403, {"error_code": 30612, "error_msg": "x"}, Outcome.BAD_CREDENTIALS),
        (403, {"error_code": 30613, "error_msg": "x"}, Outcome.BAD_CREDENTIALS),
        (400, {"error_code": 30604, "error_msg": "x"}, Outcome.PERMANENT),
        (500, None, Outcome.RETRY),
        (400, None, Outcome.PERMANENT),
    ],
)
def test_classify_rows_the_mock_does_not_produce(
    status: int, answer: object, outcome: Outcome
) -> None:
    """Error-table rows without a mock trigger classify as the table says."""
    assert outcome == classify(status, answer).outcome
