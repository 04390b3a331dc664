"""WNS adapter against the loopback WNS mock, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage
from pushgw.providers.http import MAX_ANSWER_BYTES
from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.wns import WnsMock
from pushgw.providers.wns import WnsProvider, classify, toast_xml
from tests.providers.answers import answer
from tests.providers.clock import ManualClock as FakeClock
from tests.providers.resolver import StubResolver

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/WNS/test"


def make_app(credentials: dict[str, str]) -> PlatformApplication:
    return PlatformApplication(
        arn=APP_ARN,
        name="test",
        platform=Platform.WNS,
        principal=credentials["PlatformPrincipal"],
        credential=credentials["PlatformCredential"],
    )


def endpoint(token: str) -> Endpoint:
    return Endpoint(arn=f"{APP_ARN}/1", app_arn=APP_ARN, token=token)


def message(
    body: str = "hello",
    *,
    native: bool = False,
    subject: str | None = None,
    expires_at: float | None = None,
    **attrs: str,
) -> RenderedMessage:
    return RenderedMessage(
        message_id="m-1",
        body=body,
        native=native,
        subject=subject,
        expires_at=expires_at,
        attributes={
            f"AWS.SNS.MOBILE.WNS.{k}": MessageAttribute("String", v)
            for k, v in attrs.items()
        },
    )


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture(name="mock")
async def _mock(clock: FakeClock) -> AsyncIterator[WnsMock]:
    async with WnsMock(clock=clock, token_expires_in=3600) as mock:
        yield mock


@pytest.fixture(name="settings")
def _settings(mock: WnsMock) -> ProviderSettings:
    return ProviderSettings(
        base_url=mock.base_url,
        token_url=mock.token_url,
        allow_loopback=True,
        timeout_s=1.0,
    )


@pytest.fixture(name="provider")
async def _provider(
    mock: WnsMock, settings: ProviderSettings
) -> AsyncIterator[WnsProvider]:
    app = make_app(mock.issue_credentials())
    provider = await WnsProvider.create(app=app, settings=settings)
    yield provider
    await provider.aclose()


STATE_ROWS = [
    ("valid", Outcome.DELIVERED, 200),
    ("canonical", Outcome.DELIVERED, 200),
    ("unregistered", Outcome.INVALID_TOKEN, 410),
    ("invalid", Outcome.INVALID_TOKEN, 404),
    ("foreign", Outcome.BAD_CREDENTIALS, 403),
]


@pytest.mark.parametrize(("state", "outcome", "status"), STATE_ROWS)
async def test_device_state_outcomes(
    mock: WnsMock,
    provider: WnsProvider,
    state: str,
    outcome: Outcome,
    status: int | None,
) -> None:
    """Each channel state maps to the outcome of WNS's status code for it."""
    uri = mock.register_device(state=state)

    result = await provider.send(endpoint(uri), message())

    assert (outcome, status) == (result.outcome, result.status)


FAULT_ROWS = [
    ("throttle", Outcome.RETRY, 406),
    ("unavailable", Outcome.RETRY, 503),
    ("server_error", Outcome.RETRY, 500),
    ("bad_credentials", Outcome.BAD_CREDENTIALS, 403),
    ("invalid_token", Outcome.INVALID_TOKEN, 410),
    ("latency", Outcome.DELIVERED, 200),
    ("drop", Outcome.RETRY, None),
]


@pytest.mark.parametrize(("kind", "outcome", "status"), FAULT_ROWS)
async def test_fault_outcomes(
    mock: WnsMock,
    provider: WnsProvider,
    kind: str,
    outcome: Outcome,
    status: int | None,
) -> None:
    """Each injected fault maps to the right outcome (transport faults to RETRY)."""
    uri = mock.register_device()
    mock.faults.rules.append(
        FaultRule(kind=kind, token_prefix=uri, count=1, latency_s=0.01)
    )

    result = await provider.send(endpoint(uri), message())

    assert (outcome, status) == (result.outcome, result.status)


async def test_hang_times_out_as_retry(
    mock: WnsMock, settings: ProviderSettings
) -> None:
    """A provider that never answers gives RETRY once the client timeout passes."""
    uri = mock.register_device()
    mock.faults.rules.append(FaultRule(kind="hang", count=1))
    fast = dataclasses.replace(settings, timeout_s=0.2)
    provider = await WnsProvider.create(
        app=make_app(mock.issue_credentials()), settings=fast
    )
    try:
        await provider.tokens.get()  # the hang is for the notification POST
        result = await provider.send(endpoint(uri), message())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.RETRY
    assert result.reason.startswith("transport:")


async def test_throttle_surfaces_continue_after(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """406 with X-WNS-CONTINUE-AFTER comes back as RETRY with that retry_after."""
    uri = mock.register_device()
    mock.faults.rules.append(FaultRule(kind="throttle", count=1, retry_after=17))

    result = await provider.send(endpoint(uri), message())

    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 17.0)
    assert "channelthrottled" in result.reason


async def test_expired_token_is_refreshed_and_resent_once(
    mock: WnsMock, provider: WnsProvider, clock: FakeClock
) -> None:
    """A 401 for an expired token triggers one token refresh and one resend."""
    uri = mock.register_device()
    first = await provider.send(endpoint(uri), message("one"))
    clock.now += 7200  # the mock's token (3600 s) has expired; the cache doesn't know

    second = await provider.send(endpoint(uri), message("two"))

    assert (first.outcome, second.outcome) == (Outcome.DELIVERED, Outcome.DELIVERED)
    assert mock.token_requests == 2
    assert [r["status"] for r in mock.requests] == [200, 401, 200]
    assert [
        ET.fromstring(r.payload).findtext("visual/binding/text")
        for r in mock.received_for(uri)
    ] == ["one", "two"]


async def test_second_401_is_bad_credentials(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """If the refreshed token is rejected too, the result is BAD_CREDENTIALS, no loop."""
    uri = mock.register_device()
    mock.faults.rules.append(FaultRule(kind="expire_auth", count=2))

    result = await provider.send(endpoint(uri), message())

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert mock.token_requests == 2
    assert len(mock.requests) == 2


async def test_wrong_secret_is_bad_credentials(
    mock: WnsMock, settings: ProviderSettings
) -> None:
    """A token endpoint 400 invalid_client means BAD_CREDENTIALS, and nothing is sent."""
    creds = mock.issue_credentials()
    creds["PlatformCredential"] = "not-the-secret"
    provider = await WnsProvider.create(app=make_app(creds), settings=settings)
    try:
        result = await provider.send(endpoint(mock.register_device()), message())
    finally:
        await provider.aclose()

    assert result.outcome == Outcome.BAD_CREDENTIALS
    assert "invalid_client" in result.reason
    assert mock.requests == []


async def test_concurrent_sends_share_one_token(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """Twenty concurrent first sends fetch the access token once."""
    uris = [mock.register_device() for _ in range(20)]

    results = await asyncio.gather(
        *(provider.send(endpoint(u), message()) for u in uris)
    )

    assert {Outcome.DELIVERED} == {r.outcome for r in results}
    assert mock.token_requests == 1


async def test_plain_text_becomes_escaped_toast(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """Plain text is wrapped in ToastGeneric XML with the text escaped."""
    uri = mock.register_device()
    text = 'a < b & c > "d" \x01'

    result = await provider.send(endpoint(uri), message(text))

    [got] = mock.received_for(uri)
    root = ET.fromstring(got.payload)

    assert result.outcome == Outcome.DELIVERED
    assert got.headers["X-WNS-Type"] == "wns/toast"
    assert got.headers["Content-Type"] == "text/xml"
    assert root.findtext("visual/binding/text") == 'a < b & c > "d" '
    assert toast_xml(text) == got.payload


async def test_plain_text_with_subject_and_raw(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """The subject becomes the toast title; with WNS.Type wns/raw the text goes as is."""
    uri = mock.register_device()

    await provider.send(endpoint(uri), message("body", subject="Title"))
    await provider.send(endpoint(uri), message("just text", Type="wns/raw"))

    toast, raw = mock.received_for(uri)
    texts = [t.text for t in ET.fromstring(toast.payload).iter("text")]

    assert texts == ["Title", "body"]
    assert (raw.payload, raw.headers["Content-Type"]) == (
        "just text",
        "application/octet-stream",
    )


@pytest.mark.parametrize(
    ("body", "wns_type", "content_type"),
    [
        ('<badge value="3"/>', "wns/badge", "text/xml"),
        ('<?xml version="1.0"?><tile><visual/></tile>', "wns/tile", "text/xml"),
        ("<toast><visual/></toast>", "wns/toast", "text/xml"),
        ('{"some": "data"}', "wns/raw", "application/octet-stream"),
    ],
)
async def test_type_inferred_from_native_body(
    mock: WnsMock, provider: WnsProvider, body: str, wns_type: str, content_type: str
) -> None:
    """Without WNS.Type, the XML root picks the type; anything else is raw."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), message(body, native=True))

    [got] = mock.received_for(uri)

    assert result.outcome == Outcome.DELIVERED
    assert (wns_type, content_type) == (
        got.headers["X-WNS-Type"],
        got.headers["Content-Type"],
    )
    assert body == got.payload


async def test_attributes_become_headers(mock: WnsMock, provider: WnsProvider) -> None:
    """The reserved WNS attributes become X-WNS-* headers, TTL from expires_at."""
    uri = mock.register_device()
    msg = message(
        "<tile><visual/></tile>",
        native=True,
        expires_at=time.time() + 600,
        Type="wns/tile",
        CachePolicy="no-cache",
        Tag="scores",
        Group="sports",
        SuppressPopup="true",
    )

    result = await provider.send(endpoint(uri), msg)

    [got] = mock.received_for(uri)
    headers = got.headers

    assert result.outcome == Outcome.DELIVERED
    assert headers["X-WNS-Cache-Policy"] == "no-cache"
    assert (
        headers["X-WNS-Tag"],
        headers["X-WNS-Group"],
        headers["X-WNS-SuppressPopup"],
    ) == ("scores", "sports", "true")
    assert 590 <= int(headers["X-WNS-TTL"]) <= 600


async def test_type_body_mismatch_is_permanent(
    mock: WnsMock, provider: WnsProvider
) -> None:
    """WNS answers 400 when X-WNS-Type does not match the XML root: PERMANENT."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), message("hi", Type="wns/tile"))

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 400)


@pytest.mark.parametrize(
    ("msg", "why"),
    [
        (message("x" * 5001, native=True, Type="wns/raw"), "bytes"),
        (message("hi", Tag="seventeen-chars-x"), "Tag"),
        (message("hi", Type="wns/popup"), "Type"),
        (message("hi", TTL="soon"), "TTL"),
        (message("hi", expires_at=time.time() - 1), "expired"),
        (message("hi", Group="a\r\nX-Evil: 1"), "non-printable"),
    ],
)
async def test_refused_before_sending(
    mock: WnsMock, provider: WnsProvider, msg: RenderedMessage, why: str
) -> None:
    """Oversized payloads and bad attributes are PERMANENT and never sent."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), msg)

    assert result.outcome == Outcome.PERMANENT
    assert why in result.reason
    assert mock.requests == []


async def test_payload_at_limit_is_sent(mock: WnsMock, provider: WnsProvider) -> None:
    """A raw payload of exactly 5000 bytes is sent and delivered."""
    uri = mock.register_device()

    result = await provider.send(endpoint(uri), message("x" * 5000, native=True))

    assert result.outcome == Outcome.DELIVERED


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/?token=x",
        "http://10.0.0.1/",
        "https://a@db5.notify.windows.com/",
    ],
)
async def test_ssrf_guard_refuses_without_request(
    mock: WnsMock, provider: WnsProvider, uri: str
) -> None:
    """A channel URI outside notify.windows.com is PERMANENT and never contacted."""
    result = await provider.send(endpoint(uri), message())

    assert result.outcome == Outcome.PERMANENT
    assert mock.token_requests == 0


async def test_loopback_refused_unless_allowed(mock: WnsMock) -> None:
    """Without allow_loopback the mock's own channel URI is refused."""
    settings = ProviderSettings(base_url=mock.base_url, token_url=mock.token_url)
    provider = await WnsProvider.create(
        app=make_app(mock.issue_credentials()), settings=settings
    )
    try:
        result = await provider.send(endpoint(mock.register_device()), message())
    finally:
        await provider.aclose()

    assert (
        result.outcome,
        result.reason,
    ) == (Outcome.PERMANENT, "loopback channel URIs are not allowed")
    assert mock.requests == []


# (allow_loopback, the DNS answer for a notify.windows.com host, its kind)
INWARD_ANSWERS = [
    (False, "127.0.0.1", "a loopback address"),
    (False, "::1", "a loopback address"),
    (True, "169.254.169.254", "a cloud metadata address"),
    (True, "10.0.0.7", "a private address"),
]


@pytest.mark.parametrize(("allow_loopback", "address", "kind"), INWARD_ANSWERS)
async def test_channel_host_resolving_inward_is_refused_at_connect_time(
    mock: WnsMock, allow_loopback: bool, address: str, kind: str
) -> None:
    """
    A channel URI that passes the channel guard, on a host whose DNS answer is
    loopback (or metadata, or private: allow_loopback opens loopback only), is
    refused when the connection is made: RETRY with the reason, nothing sent.
    The token still comes from the configured token URL (not guarded).
    """
    settings = ProviderSettings(
        base_url=mock.base_url,
        token_url=mock.token_url,
        allow_loopback=allow_loopback,
        timeout_s=1.0,
    )
    provider = await WnsProvider.create(
        app=make_app(mock.issue_credentials()), settings=settings
    )
    provider.resolver = dns = StubResolver({"db5.notify.windows.com": [address]})
    try:
        result = await provider.send(
            endpoint("https://db5.notify.windows.com/?token=abc"), message()
        )
    finally:
        await provider.aclose()

    assert (Outcome.RETRY, None) == (result.outcome, result.status)
    assert (
        f"transport: refused: {address} is {kind} (resolved from db5.notify.windows.com)"
        == result.reason
    )
    assert ["db5.notify.windows.com"] == dns.lookups
    assert 1 == mock.token_requests


async def test_redirects_are_not_followed(mock: WnsMock, provider: WnsProvider) -> None:
    """A 3xx from a channel host is not followed, so the token stays put."""
    target = mock.register_device()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target)

    app = web.Application()
    app.router.add_post("/w/", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        result = await provider.send(
            endpoint(f"http://{host}:{port}/w/?token=x"), message()
        )
    finally:
        await runner.cleanup()

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 307)
    assert mock.requests == []


@contextlib.asynccontextmanager
async def raw_channel(
    answer: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """
    A bare TCP server standing in for a channel host: it reads the request and
    lets `answer` write whatever bytes it likes. Yields the channel URI.
    """

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        with contextlib.suppress(ConnectionError):  # the client hung up
            await answer(writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/w/?token=x"
    finally:
        server.close()
        await server.wait_closed()


async def test_malformed_answer_is_a_transport_retry(provider: WnsProvider) -> None:
    """An answer aiohttp cannot parse (a four-digit status) is RETRY with the
    parser's words, like a reset connection, not an adapter error."""

    async def garbled(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 2000 WAT\r\n\r\n")
        await writer.drain()

    async with raw_channel(garbled) as uri:
        result = await provider.send(endpoint(uri), message())

    assert (Outcome.RETRY, None) == (result.outcome, result.status)
    assert result.reason.startswith("transport: ClientResponseError: 400")


async def test_a_url_aiohttp_cannot_use_is_not_a_transport_failure(
    provider: WnsProvider,
) -> None:
    """A URL that is not one (our data, not the provider's answer) raises, so
    the dispatcher takes it for an adapter error (permanent for that endpoint)
    and never for a provider failure that would pause the app."""
    with pytest.raises(aiohttp.InvalidURL):
        await provider.post("http://[not-a-host/x", data=b"", headers={})


async def test_endless_answer_is_read_up_to_the_cap_and_classified(
    provider: WnsProvider,
) -> None:
    """A channel host streaming an error page without end: its first
    MAX_ANSWER_BYTES are read, the rest never, and the status classifies the
    answer (400: PERMANENT) well before the timeout; no memory grows."""

    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n")
        while True:  # no length: the body runs until the connection closes
            writer.write(b"<p>" + b"x" * 65_536)
            await writer.drain()

    async with raw_channel(endless) as uri:
        started = time.monotonic()
        result = await provider.send(endpoint(uri), message())
        elapsed = time.monotonic() - started
        answer = await provider.post(uri, data=b"", headers={})

    assert (Outcome.PERMANENT, 400) == (result.outcome, result.status)
    assert elapsed < provider.settings.timeout_s / 2
    assert MAX_ANSWER_BYTES == len(answer.body)


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (200, {"X-WNS-Status": "dropped"}, Outcome.PERMANENT, None),
        (200, {"X-WNS-Status": "channelthrottled"}, Outcome.DELIVERED, None),
        (400, {}, Outcome.PERMANENT, None),
        (401, {}, Outcome.BAD_CREDENTIALS, None),
        (405, {}, Outcome.PERMANENT, None),
        (406, {"Retry-After": "9"}, Outcome.RETRY, 9.0),
        (413, {}, Outcome.PERMANENT, None),
        (429, {"Retry-After": "2"}, Outcome.RETRY, 2.0),
        (503, {"Retry-After": "5"}, Outcome.RETRY, 5.0),
        (202, {}, Outcome.DELIVERED, None),
        (418, {}, Outcome.PERMANENT, None),
    ],
)
def test_classify_rows_the_mock_does_not_produce(
    status: int, headers: dict[str, str], expected: Outcome, retry_after: float | None
) -> None:
    """STATUS_TABLE rows without a mock trigger, and the fallbacks, classify as written."""
    result = classify(answer(status, b"", headers))

    assert (expected, retry_after) == (result.outcome, result.retry_after)
