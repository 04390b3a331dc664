"""MPNS adapter against the loopback MPNS mock, over real sockets (and mTLS)."""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage
from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.mpns import MpnsMock
from pushgw.providers.mpns import MpnsProvider, classify, toast_xml
from tests.providers.answers import answer
from tests.providers.resolver import StubResolver

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/MPNS/test"
WP = "{WPNotification}"
TILE = (
    '<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
    "<wp:Tile><wp:Count>3</wp:Count><wp:Title>Scores</wp:Title></wp:Tile>"
    "</wp:Notification>"
)


def make_app(principal: str = "", credential: str = "") -> PlatformApplication:
    return PlatformApplication(
        arn=APP_ARN,
        name="test",
        platform=Platform.MPNS,
        principal=principal,
        credential=credential,
    )


def endpoint(token: str) -> Endpoint:
    return Endpoint(arn=f"{APP_ARN}/1", app_arn=APP_ARN, token=token)


def message(
    body: str = "hello",
    *,
    native: bool = False,
    subject: str | None = None,
    **attrs: str,
) -> RenderedMessage:
    return RenderedMessage(
        message_id="m-1",
        body=body,
        native=native,
        subject=subject,
        attributes={
            f"AWS.SNS.MOBILE.MPNS.{k}": MessageAttribute("String", v)
            for k, v in attrs.items()
        },
    )


@pytest.fixture(name="mock")
async def _mock() -> AsyncIterator[MpnsMock]:
    async with MpnsMock() as mock:
        yield mock


@pytest.fixture(name="provider")
async def _provider(mock: MpnsMock) -> AsyncIterator[MpnsProvider]:
    settings = ProviderSettings(
        base_url=mock.base_url, allow_loopback=True, timeout_s=1
    )
    provider = await MpnsProvider.create(app=make_app(), settings=settings)
    yield provider
    await provider.aclose()


STATE_ROWS = [
    ("valid", Outcome.DELIVERED, 200, None),
    ("canonical", Outcome.DELIVERED, 200, None),
    ("unregistered", Outcome.INVALID_TOKEN, 404, None),
    ("invalid", Outcome.INVALID_TOKEN, 404, None),
    ("inactive", Outcome.RETRY, 412, 3660.0),
    ("suppressed", Outcome.PERMANENT, 200, None),
    ("queuefull", Outcome.RETRY, 200, 60.0),
]


@pytest.mark.parametrize(("state", "outcome", "status", "retry_after"), STATE_ROWS)
async def test_device_state_outcomes(
    mock: MpnsMock,
    provider: MpnsProvider,
    state: str,
    outcome: Outcome,
    status: int | None,
    retry_after: float | None,
) -> None:
    """Each channel state maps to the outcome of MPNS's status code and headers."""
    uri = mock.register_device(state=state)

    result = await provider.send(endpoint(uri), message())

    assert (result.outcome, result.status, result.retry_after) == (
        outcome,
        status,
        retry_after,
    )


FAULT_ROWS = [
    ("throttle", Outcome.RETRY, 406, 3600.0),
    ("unavailable", Outcome.RETRY, 503, 300.0),
    ("server_error", Outcome.RETRY, 500, None),
    ("expire_auth", Outcome.INVALID_TOKEN, 401, None),
    ("bad_credentials", Outcome.BAD_CREDENTIALS, 403, None),
    ("invalid_token", Outcome.INVALID_TOKEN, 404, None),
    ("latency", Outcome.DELIVERED, 200, None),
    ("drop", Outcome.RETRY, None, None),
]


@pytest.mark.parametrize(("kind", "outcome", "status", "retry_after"), FAULT_ROWS)
async def test_fault_outcomes(
    mock: MpnsMock,
    provider: MpnsProvider,
    kind: str,
    outcome: Outcome,
    status: int | None,
    retry_after: float | None,
) -> None:
    """Each injected fault maps to the §6 outcome (transport faults to RETRY)."""
    uri = mock.register_device()
    mock.faults.rules.append(
        FaultRule(kind=kind, token_prefix=uri, count=1, latency_s=0.01)
    )

    result = await provider.send(endpoint(uri), message())

    assert (result.outcome, result.status, result.retry_after) == (
        outcome,
        status,
        retry_after,
    )


async def test_reason_carries_the_three_status_headers(
    mock: MpnsMock, provider: MpnsProvider
) -> None:
    """The result reason quotes X-NotificationStatus, subscription and device status."""
    uri = mock.register_device(state="unregistered")

    result = await provider.send(endpoint(uri), message())

    assert result.reason == "404 Dropped/Expired/Disconnected"


@pytest.mark.parametrize(
    ("body", "attrs", "cls", "target"),
    [
        ("hi", {}, "2", "toast"),
        ("hi", {"NotificationClass": "priority"}, "12", "toast"),
        ("hi", {"NotificationClass": "regular"}, "22", "toast"),
        (TILE, {}, "1", "token"),
        (TILE, {"NotificationClass": "regular"}, "21", "token"),
        ("raw bytes", {"Type": "raw", "NotificationClass": "priority"}, "13", None),
        ("<data>1</data>", {}, "3", None),
    ],
)
async def test_class_and_target_headers(
    mock: MpnsMock,
    provider: MpnsProvider,
    body: str,
    attrs: dict[str, str],
    cls: str,
    target: str | None,
) -> None:
    """Type and NotificationClass pick X-NotificationClass and X-WindowsPhone-Target."""
    uri = mock.register_device()
    native = body != "hi"

    result = await provider.send(endpoint(uri), message(body, native=native, **attrs))

    [got] = mock.received_for(uri)

    assert result.outcome == Outcome.DELIVERED
    assert got.headers["X-NotificationClass"] == cls
    assert got.headers.get("X-WindowsPhone-Target") == target


async def test_plain_text_becomes_escaped_toast(
    mock: MpnsMock, provider: MpnsProvider
) -> None:
    """Plain text becomes a wp:Toast with Text1 = subject and Text2 = escaped text."""
    uri = mock.register_device()

    result = await provider.send(
        endpoint(uri), message("1 < 2 & 3 > 0", subject="<Alert>")
    )

    [got] = mock.received_for(uri)
    toast = ET.fromstring(got.payload).find(f"{WP}Toast")

    assert result.outcome == Outcome.DELIVERED
    assert toast is not None
    assert (toast.findtext(f"{WP}Text1"), toast.findtext(f"{WP}Text2")) == (
        "<Alert>",
        "1 < 2 & 3 > 0",
    )
    assert got.payload == toast_xml("1 < 2 & 3 > 0", subject="<Alert>")


async def test_malformed_xml_is_permanent(
    mock: MpnsMock, provider: MpnsProvider
) -> None:
    """The mock answers 400 to broken toast XML; that is PERMANENT."""
    uri = mock.register_device()
    broken = '<wp:Notification xmlns:wp="WPNotification"><wp:Toast></wp:Notification>'

    result = await provider.send(endpoint(uri), message(broken, native=True))

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 400)


@pytest.mark.parametrize(
    ("msg", "why"),
    [
        (message(TILE + " " * 3000, native=True), "3072"),
        (message("x" * 1025, native=True, Type="raw"), "1024"),
        (message("hi", Type="tile"), "Type"),
        (message("hi", NotificationClass="now"), "NotificationClass"),
    ],
)
async def test_refused_before_sending(
    mock: MpnsMock, provider: MpnsProvider, msg: RenderedMessage, why: str
) -> None:
    """Oversized payloads and bad attributes are PERMANENT and never sent."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), msg)

    assert result.outcome == Outcome.PERMANENT
    assert why in result.reason
    assert mock.requests == []


async def test_raw_at_limit_is_sent(mock: MpnsMock, provider: MpnsProvider) -> None:
    """A raw payload of exactly 1024 bytes is sent and delivered."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), message("x" * 1024, Type="raw"))

    assert result.outcome == Outcome.DELIVERED


@pytest.mark.parametrize(
    "uri",
    ["https://evil.example/m/1", "http://10.0.0.1/", "https://db5.notify.windows.com/"],
)
async def test_ssrf_guard_refuses_without_request(
    mock: MpnsMock, provider: MpnsProvider, uri: str
) -> None:
    """A channel URI outside notify.live.net is PERMANENT and never contacted."""
    result = await provider.send(endpoint(uri), message())

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


async def test_loopback_refused_unless_allowed(mock: MpnsMock) -> None:
    """Without allow_loopback the mock's own channel URI is refused."""
    settings = ProviderSettings(base_url=mock.base_url)
    provider = await MpnsProvider.create(app=make_app(), settings=settings)
    try:
        result = await provider.send(endpoint(mock.register_device()), message())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.PERMANENT
    assert mock.requests == []


@pytest.mark.parametrize(
    ("allow_loopback", "address", "kind"),
    [
        (False, "127.0.0.1", "a loopback address"),
        (True, "169.254.169.254", "a cloud metadata address"),
        (True, "fd00::1", "a private address"),
    ],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_channel_host_resolving_inward_is_refused_at_connect_time(
    mock: MpnsMock, allow_loopback: bool, address: str, kind: str, scheme: str
) -> None:
    """A notify.live.net host resolving inward is refused when connecting: RETRY."""
    settings = ProviderSettings(
        base_url=mock.base_url, allow_loopback=allow_loopback, timeout_s=1
    )
    provider = await MpnsProvider.create(app=make_app(), settings=settings)
    provider.resolver = dns = StubResolver({"db3.notify.live.net": [address]})
    try:
        result = await provider.send(
            endpoint(f"{scheme}://db3.notify.live.net/m/1"), message()
        )
    finally:
        await provider.aclose()

    assert Outcome.RETRY == result.outcome
    assert (
        f"transport: refused: {address} is {kind} (resolved from db3.notify.live.net)"
        == result.reason
    )
    assert ["db3.notify.live.net"] == dns.lookups
    assert mock.requests == []


@pytest.fixture(name="tls_mock")
async def _tls_mock() -> AsyncIterator[tuple[MpnsMock, trustme.CA]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # trust only issued credentials
    async with MpnsMock(ssl_context=server_ctx) as mock:
        yield mock, ca


async def test_certificate_credentials_authenticate_over_mtls(
    tls_mock: tuple[MpnsMock, trustme.CA], tmp_path: Path
) -> None:
    """A PEM certificate and key as credentials become the TLS client certificate."""
    mock, ca = tls_mock
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    creds = mock.issue_credentials()
    settings = ProviderSettings(
        base_url=mock.base_url, allow_loopback=True, ca_file=str(ca_file), timeout_s=2
    )
    app = make_app(creds["PlatformPrincipal"], creds["PlatformCredential"])
    authenticated = await MpnsProvider.create(app=app, settings=settings)
    anonymous = await MpnsProvider.create(app=make_app(), settings=settings)
    uri = mock.register_device()
    try:
        with_cert = await authenticated.send(endpoint(uri), message())
        without_cert = await anonymous.send(endpoint(uri), message())
    finally:
        await authenticated.aclose()
        await anonymous.aclose()

    assert uri.startswith("https://127.0.0.1:")
    assert with_cert.outcome == Outcome.DELIVERED
    assert without_cert.outcome == Outcome.RETRY  # handshake refused: transport
    assert len(mock.received_for(uri)) == 1


@pytest.mark.parametrize(
    ("status", "note", "expected", "retry_after"),
    [
        (200, "Received", Outcome.DELIVERED, None),
        (200, "Dropped", Outcome.PERMANENT, None),
        (200, "", Outcome.DELIVERED, None),
        (400, "", Outcome.PERMANENT, None),
        (405, "", Outcome.PERMANENT, None),
        (502, "", Outcome.RETRY, None),
        (418, "", Outcome.PERMANENT, None),
    ],
)
def test_classify_rows_the_mock_does_not_produce(
    status: int, note: str, expected: Outcome, retry_after: float | None
) -> None:
    """STATUS_TABLE rows without a mock trigger, and the fallbacks, classify as written."""
    headers = {"X-NotificationStatus": note} if note else {}

    result = classify(answer(status, b"", headers))

    assert (expected, retry_after) == (result.outcome, result.retry_after)
