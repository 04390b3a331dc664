"""boto3 against a real `pushgw serve` process, delivering to the loopback mocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.harness import Mocks, Server

pytestmark = pytest.mark.e2e

T = TypeVar("T")
REGION = "us-east-1"
DELIVERY_TIMEOUT_S = 15.0
NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"


def client(
    server: Server,
    *,
    key: str | None = None,
    secret: str | None = None,
    region: str = REGION,
) -> Any:
    return boto3.session.Session().client(
        "sns",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def eventually(probe: Callable[[], T | None], timeout: float = DELIVERY_TIMEOUT_S) -> T:
    """Poll another process until `probe` returns a value (there is no event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"nothing after {timeout} s")


def adm_endpoint(sns: Any, mocks: Mocks, app_arn: str) -> tuple[str, str]:
    """Register a simulated ADM device and its endpoint; return (token, ARN)."""
    device = mocks.device("ADM")
    arn = sns.create_platform_endpoint(
        PlatformApplicationArn=app_arn, Token=device["token"]
    )["EndpointArn"]
    return device["token"], arn


def adm_app(sns: Any, mocks: Mocks, name: str = "e2e-adm") -> str:
    arn: str = sns.create_platform_application(
        Name=name, Platform="ADM", Attributes=mocks.credentials("ADM")
    )["PlatformApplicationArn"]
    return arn


def test_five_step_flow_delivers(pushgw_server: Server, mocks: Mocks) -> None:
    """Credentials, device, application, endpoint, publish: the device gets it."""
    sns = client(pushgw_server)
    app = adm_app(sns, mocks)
    token, endpoint = adm_endpoint(sns, mocks, app)

    message_id = sns.publish(TargetArn=endpoint, Message="hello from boto3")[
        "MessageId"
    ]

    received = eventually(lambda: mocks.received(token))
    assert message_id
    assert 1 == len(received)
    assert "hello from boto3" in str(received[0]["payload"])


def test_topic_fan_out(pushgw_server: Server, mocks: Mocks) -> None:
    """A topic publish reaches every subscribed endpoint."""
    sns = client(pushgw_server)
    app = adm_app(sns, mocks)
    topic = sns.create_topic(Name="e2e-news")["TopicArn"]
    tokens = []
    for _ in range(3):
        token, endpoint = adm_endpoint(sns, mocks, app)
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=endpoint)
        tokens.append(token)

    sns.publish(TopicArn=topic, Message="to everyone")

    def all_delivered() -> bool:
        return all(mocks.received(token) for token in tokens)

    assert eventually(all_delivered)
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert 3 == len(listed)


def test_crud_and_pagination(pushgw_server: Server, mocks: Mocks) -> None:
    """Endpoints page by 100 and the list is empty (not absent) after deletion."""
    sns = client(pushgw_server)
    app = adm_app(sns, mocks)
    arns = [
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"e2e-{n}")[
            "EndpointArn"
        ]
        for n in range(101)
    ]

    pages = list(
        sns.get_paginator("list_endpoints_by_platform_application").paginate(
            PlatformApplicationArn=app
        )
    )
    for arn in arns:
        sns.delete_endpoint(EndpointArn=arn)
    after = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)

    assert [100, 1] == [len(p["Endpoints"]) for p in pages]
    assert arns == [e["EndpointArn"] for p in pages for e in p["Endpoints"]]
    assert [] == after["Endpoints"]


def test_errors_are_modelled(pushgw_server: Server, mocks: Mocks) -> None:
    """SNS errors reach boto3 as its modelled exceptions."""
    sns = client(pushgw_server)
    app = adm_app(sns, mocks)
    _, endpoint = adm_endpoint(sns, mocks, app)
    sns.set_endpoint_attributes(EndpointArn=endpoint, Attributes={"Enabled": "false"})

    with pytest.raises(sns.exceptions.EndpointDisabledException):
        sns.publish(TargetArn=endpoint, Message="m")
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_endpoint_attributes(EndpointArn=endpoint + "x")


ACCESS_CASES: list[tuple[dict[str, str], str]] = [
    ({"secret": "wrong"}, "SignatureDoesNotMatch"),
    ({"key": "AKIAUNKNOWN000000000"}, "InvalidClientTokenId"),
    ({"region": "eu-central-1"}, "SignatureDoesNotMatch"),
    (
        {"key": "AKIAPUBLISHONLY00001", "secret": "publish-only-secret"},
        "AuthorizationError",
    ),
]


def test_access_is_checked(pushgw_server: Server) -> None:
    """Bad signatures, unknown keys and publish-only keys are refused."""
    codes = []
    for kwargs, _ in ACCESS_CASES:
        with pytest.raises(ClientError) as info:
            client(pushgw_server, **kwargs).create_topic(Name="nope")
        codes.append(info.value.response["Error"]["Code"])

    assert [code for _, code in ACCESS_CASES] == codes


def test_hostile_requests_get_xml_errors(pushgw_server: Server) -> None:
    """Unsigned and oversized requests get SNS XML errors from the real server."""
    unsigned = httpx.post(pushgw_server.url + "/", content=b"Action=ListTopics")
    huge = httpx.post(
        pushgw_server.url + "/",
        content=b"Action=ListTopics&P=" + b"x" * 2_000_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert 403 == unsigned.status_code
    assert "<Code>MissingAuthenticationToken</Code>" in unsigned.text
    assert 413 == huge.status_code
    assert "<Code>RequestEntityTooLarge</Code>" in huge.text
    assert huge.headers["content-type"].startswith("text/xml")
