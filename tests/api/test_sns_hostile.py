"""
Malformed and hostile requests to the SNS Query API: every answer is SNS error XML
with the right code, never a 500 or a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pushgw.api.sns_query import make_sns_handler
from pushgw.arn import ArnBuilder
from pushgw.config import AccessKey
from pushgw.service import Service
from pushgw.store.memory import InMemoryStore

REGION = "us-east-1"
MAX_BODY = 65_536
KEY = AccessKey(
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
)
FORM = "application/x-www-form-urlencoded; charset=utf-8"
NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"


@dataclass(frozen=True)
class Answer:
    """One HTTP response, checked to be well-formed SNS XML."""

    status: int
    headers: dict[str, str]
    body: str

    def root(self) -> ElementTree.Element:
        return ElementTree.fromstring(self.body)

    @property
    def code(self) -> str:
        return self.root().findtext(f"{NS}Error/{NS}Code") or ""

    @property
    def message(self) -> str:
        return self.root().findtext(f"{NS}Error/{NS}Message") or ""


@pytest.fixture(name="url")
async def _url() -> AsyncIterator[str]:
    service = Service(
        store=InMemoryStore(), arns=ArnBuilder(region=REGION, account="123456789012")
    )
    handler = make_sns_handler(
        service=service,
        keys={KEY.access_key_id: KEY},
        region=REGION,
        max_body_bytes=MAX_BODY,
    )
    app = web.Application()
    app.router.add_route("POST", "/", handler)
    app.router.add_route("GET", "/", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/"))


def signed(url: str, body: bytes, content_type: str = FORM) -> dict[str, str]:
    """Headers that sign `body` (any bytes at all) for a POST to `url`."""
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": content_type}
    )
    credentials = Credentials(KEY.access_key_id, KEY.secret_access_key)
    SigV4Auth(credentials, "sns", REGION).add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    """POST raw bytes, signed unless `headers` is given."""
    headers = signed(url, body) if headers is None else headers
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return await _answer(response)


async def _answer(response: aiohttp.ClientResponse) -> Answer:
    answer = Answer(response.status, dict(response.headers), await response.text())
    check_sns_xml(answer)
    return answer


def check_sns_xml(answer: Answer) -> None:
    """Every answer: XML content type, request id header = body, no traceback."""
    root = answer.root()
    request_id = root.findtext(f"{NS}RequestId") or root.findtext(
        f"{NS}ResponseMetadata/{NS}RequestId"
    )

    assert answer.headers["Content-Type"].startswith("text/xml")
    assert answer.headers["x-amzn-RequestId"] == request_id
    assert "Traceback" not in answer.body
    assert answer.status != 500


async def raw_exchange(url: str, request: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes over TCP; return one response (b"" if the server just closed)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        if half_close:
            writer.write_eof()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except asyncio.IncompleteReadError:
            return b""
        length = _content_length(head)
        return head + await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            return int(value)
    raise AssertionError("the response has no Content-Length")


def _http_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    answer = Answer(int(lines[0].split()[1]), headers, body.decode())
    check_sns_xml(answer)
    return answer


async def test_missing_authentication(url: str) -> None:
    """An unsigned POST gets 403 MissingAuthenticationToken."""
    answer = await post(url, b"Action=ListTopics", headers={"Content-Type": FORM})

    assert (403, "MissingAuthenticationToken") == (answer.status, answer.code)
    assert "Request is missing Authentication Token" == answer.message


async def test_unsigned_get(url: str) -> None:
    """A bare GET / gets 403 MissingAuthenticationToken."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        answer = await _answer(response)

    assert (403, "MissingAuthenticationToken") == (answer.status, answer.code)


async def test_garbage_authorization(url: str) -> None:
    """A nonsense Authorization header gets 400 IncompleteSignature."""
    headers = {"Content-Type": FORM, "Authorization": "AWS4-HMAC-SHA256 <script>"}

    answer = await post(url, b"Action=ListTopics", headers=headers)

    assert (400, "IncompleteSignature") == (answer.status, answer.code)


async def test_declared_huge_body_is_refused_before_reading(url: str) -> None:
    """A Content-Length over the limit gets 413 without the body being sent."""
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000000\r\nConnection: close\r\n\r\n"
    )

    answer = _http_answer(await raw_exchange(url, request))

    assert (413, "RequestEntityTooLarge") == (answer.status, answer.code)


async def test_chunked_huge_body_is_refused(url: str) -> None:
    """A chunked body that grows past the limit gets 413."""
    chunk = b"a" * 40_000
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + framed * 2
        + b"0\r\n\r\n"
    )

    answer = _http_answer(await raw_exchange(url, request))

    assert (413, "RequestEntityTooLarge") == (answer.status, answer.code)


async def test_truncated_body_is_a_client_error(url: str) -> None:
    """A body shorter than its Content-Length is refused, and the server lives on."""
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100\r\n\r\nAction=Lis"
    )

    raw = await raw_exchange(url, request, half_close=True)
    after = await post(url, b"Action=ListTopics&Version=2010-03-31")

    if raw:  # the server may answer 400 or just close the connection
        assert 400 == _http_answer(raw).status
    assert 200 == after.status


async def test_body_at_the_limit_is_accepted(url: str) -> None:
    """A signed body of exactly the limit is read and served."""
    prefix = b"Action=ListTopics&Version=2010-03-31&Pad="
    body = prefix + b"x" * (MAX_BODY - len(prefix))

    answer = await post(url, body)

    assert 200 == answer.status


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"Action=Publish&Message=\xff\xfe", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=%C3%28", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=%zz", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=50%", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=a&Message=b", 400, "InvalidQueryParameter"),
        (b"Action=ListTopics&Action=CreateTopic", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=a%00b", 400, "InvalidQueryParameter"),
        (b"Action=Publish&Message=a&Message.member.1=b", 400, "InvalidQueryParameter"),
        (b"Action=Frobnicate", 400, "InvalidAction"),
        (b"Version=2010-03-31", 400, "MissingAction"),
        (b"Action=", 400, "MissingAction"),
        (b"&&&", 400, "MissingAction"),
        (b"=", 400, "InvalidQueryParameter"),
        (
            b"Action=SetEndpointAttributes&EndpointArn=x"
            b"&Attributes.entry.99999999999999999999.key=a"
            b"&Attributes.entry.99999999999999999999.value=b",
            400,
            "InvalidQueryParameter",
        ),
        (
            b"Action=Publish&TargetArn=x&Message=m"
            b"&MessageAttributes.entry.1.Name=b"
            b"&MessageAttributes.entry.1.Value.DataType=Binary"
            b"&MessageAttributes.entry.1.Value.BinaryValue=%%%invalid",
            400,
            "InvalidQueryParameter",
        ),
        (
            b"Action=Publish&TargetArn=x&Message=m"
            b"&MessageAttributes.entry.1.Name=b"
            b"&MessageAttributes.entry.1.Value.DataType=Binary"
            b"&MessageAttributes.entry.1.Value.BinaryValue=not-base64!",
            400,
            "ParameterValueInvalid",
        ),
        (b"Action=CreateTopic&Tags=oops", 400, "InvalidQueryParameter"),
        (b"Action=CreateTopic&Name=t&Tags.member.1.Key=k", 400, "ValidationError"),
        (b"Action=Subscribe&ReturnSubscriptionArn=maybe", 400, "ValidationError"),
    ],
)
async def test_malformed_body_gets_sns_error(
    url: str, body: bytes, status: int, code: str
) -> None:
    """Bad encodings, duplicates, clashes and bad values each get their SNS error."""
    answer = await post(url, body)

    assert (status, code) == (answer.status, answer.code)


async def test_unknown_action_message(url: str) -> None:
    """An unknown action gets AWS's InvalidAction text."""
    answer = await post(url, b"Action=Frobnicate")

    assert "The action Frobnicate is not valid for this web service." == answer.message


async def test_markup_is_escaped_in_errors(url: str) -> None:
    """Markup in an echoed value is escaped, never injected into the XML."""
    answer = await post(url, b"Action=%3Cscript%3Ealert(1)%3C/script%3E%26")

    assert "InvalidAction" == answer.code
    assert "<script>" not in answer.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in answer.body
    assert answer.message.startswith("The action <script>alert(1)</script>&")


async def test_markup_round_trips_through_attributes(url: str) -> None:
    """XML/HTML stored in a value comes back intact and escaped."""
    hostile = "<?xml?><!DOCTYPE x [<!ENTITY e 'boom'>]><a>&e;</a>]]>"
    created = await post(url, b"Action=CreateTopic&Name=t")
    arn = created.root().findtext(f"{NS}CreateTopicResult/{NS}TopicArn") or ""
    body = urlencode(
        {
            "Action": "SetTopicAttributes",
            "TopicArn": arn,
            "AttributeName": "DisplayName",
            "AttributeValue": hostile,
        }
    ).encode()

    await post(url, body)
    got = await post(url, f"Action=GetTopicAttributes&TopicArn={arn}".encode())

    entries = got.root().iterfind(
        f"{NS}GetTopicAttributesResult/{NS}Attributes/{NS}entry"
    )
    attributes = {e.findtext(f"{NS}key"): e.findtext(f"{NS}value") for e in entries}
    assert hostile == attributes.get("DisplayName")
    assert "<!DOCTYPE" not in got.body


async def test_wrong_content_type_is_refused(url: str) -> None:
    """A JSON body is refused as a malformed query."""
    body = b'{"Action": "ListTopics"}'

    answer = await post(url, body, headers=signed(url, body, "application/json"))

    assert (400, "InvalidQueryParameter") == (answer.status, answer.code)


async def test_deep_and_many_parameters_are_harmless(url: str) -> None:
    """Thousands of parameters and a very deep name do not break the server."""
    deep = b"X" + b".a" * 10_000 + b"=1"
    many = b"&".join(b"P%d=v" % n for n in range(3_000))

    answer = await post(url, b"Action=ListTopics&" + deep + b"&" + many)

    assert 200 == answer.status


async def test_malformed_query_string_on_get(url: str) -> None:
    """A GET with bad percent-encoding in the URL gets InvalidQueryParameter."""
    raw = await raw_exchange(
        url, b"GET /?Action=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )

    answer = _http_answer(raw)

    assert (400, "InvalidQueryParameter") == (answer.status, answer.code)
