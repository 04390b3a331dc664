"""boto3, unchanged but for endpoint_url, against the SNS Query API on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from yarl import URL

from pushgw.api.sns_query import make_sns_handler
from pushgw.arn import ArnBuilder
from pushgw.config import AccessKey
from pushgw.model import Topic
from pushgw.service import Service
from pushgw.service.types import Listing
from pushgw.store.memory import InMemoryStore

T = TypeVar("T")

REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN = AccessKey(
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
)
PUBLISHER = AccessKey(
    access_key_id="AKIAPUBLISHONLY00001",
    secret_access_key="publisher-secret",
    actions=frozenset({"Publish", "PublishBatch"}),
)
KEYS = {k.access_key_id: k for k in (ADMIN, PUBLISHER)}
ADM_CREDENTIALS = {"PlatformPrincipal": "client-id", "PlatformCredential": "secret"}
AWS_CLI = Path(sys.executable).with_name("aws")
BOTO_CONFIG = Config(
    retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10
)


@dataclass
class Gateway:
    """A running SNS Query API on 127.0.0.1 with its in-memory store."""

    url: str
    store: InMemoryStore

    def client(
        self, key: AccessKey = ADMIN, *, secret: str | None = None, region: str = REGION
    ) -> Any:
        return boto3.session.Session().client(
            "sns",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=secret or key.secret_access_key,
            config=BOTO_CONFIG,
        )


class ExplodingService(Service):
    """A Service whose ListTopics fails with an unexpected exception."""

    async def list_topics(self, next_token: str | None) -> Listing[Topic]:
        raise RuntimeError("boom: secret detail")


async def start(service_type: type[Service] = Service) -> tuple[TestServer, Gateway]:
    store = InMemoryStore()
    service = service_type(store=store, arns=ArnBuilder(region=REGION, account=ACCOUNT))
    handler = make_sns_handler(
        service=service, keys=KEYS, region=REGION, max_body_bytes=1_048_576
    )
    app = web.Application()
    app.router.add_route("POST", "/", handler)
    app.router.add_route("GET", "/", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, Gateway(str(server.make_url("/")), store)


@pytest.fixture(name="gateway")
async def _gateway() -> AsyncIterator[Gateway]:
    server, gateway = await start()
    yield gateway
    await server.close()


@pytest.fixture(name="sns")
def _sns(gateway: Gateway) -> Any:
    return gateway.client()


async def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a (blocking) boto3 call in a thread."""
    return await asyncio.to_thread(fn, **kwargs)


async def client_error(fn: Callable[..., Any], /, **kwargs: Any) -> dict[str, Any]:
    """Run a boto3 call that must fail; return botocore's parsed error response."""
    with pytest.raises(ClientError) as info:
        await call(fn, **kwargs)
    response: dict[str, Any] = info.value.response
    return response


async def make_app(sns: Any, name: str = "myapp") -> str:
    created = await call(
        sns.create_platform_application,
        Name=name,
        Platform="ADM",
        Attributes=ADM_CREDENTIALS,
    )
    arn: str = created["PlatformApplicationArn"]
    return arn


async def make_endpoint(sns: Any, app_arn: str, token: str = "token-1") -> str:
    created = await call(
        sns.create_platform_endpoint, PlatformApplicationArn=app_arn, Token=token
    )
    arn: str = created["EndpointArn"]
    return arn


async def test_platform_application_lifecycle(sns: Any) -> None:
    """Create, list, read, update and delete a platform application."""
    arn = await make_app(sns)

    listed = await call(sns.list_platform_applications)
    attrs = await call(
        sns.get_platform_application_attributes, PlatformApplicationArn=arn
    )
    await call(
        sns.set_platform_application_attributes,
        PlatformApplicationArn=arn,
        Attributes={"SuccessFeedbackSampleRate": "50"},
    )
    updated = await call(
        sns.get_platform_application_attributes, PlatformApplicationArn=arn
    )
    await call(sns.delete_platform_application, PlatformApplicationArn=arn)
    gone = await client_error(
        sns.get_platform_application_attributes, PlatformApplicationArn=arn
    )

    assert f"arn:aws:sns:{REGION}:{ACCOUNT}:app/ADM/myapp" == arn
    assert [arn] == [
        a["PlatformApplicationArn"] for a in listed["PlatformApplications"]
    ]
    assert {"Enabled": "true"} == attrs["Attributes"]
    assert "50" == updated["Attributes"]["SuccessFeedbackSampleRate"]
    assert ("NotFound", 404) == (
        gone["Error"]["Code"],
        gone["ResponseMetadata"]["HTTPStatusCode"],
    )


async def test_endpoint_lifecycle(sns: Any) -> None:
    """Endpoints are created, read, updated, listed and deleted; the list empties."""
    app = await make_app(sns)
    arn = await make_endpoint(sns, app)

    await call(
        sns.set_endpoint_attributes,
        EndpointArn=arn,
        Attributes={"CustomUserData": "<user id='1'>&amp;</user>", "Enabled": "false"},
    )
    attrs = await call(sns.get_endpoint_attributes, EndpointArn=arn)
    listed = await call(
        sns.list_endpoints_by_platform_application, PlatformApplicationArn=app
    )
    await call(sns.delete_endpoint, EndpointArn=arn)
    await call(sns.delete_endpoint, EndpointArn=arn)
    after = await call(
        sns.list_endpoints_by_platform_application, PlatformApplicationArn=app
    )

    expected = {
        "Enabled": "false",
        "Token": "token-1",
        "CustomUserData": "<user id='1'>&amp;</user>",
    }
    assert expected == attrs["Attributes"]
    assert [{"EndpointArn": arn, "Attributes": expected}] == listed["Endpoints"]
    assert [] == after["Endpoints"]
    assert "NextToken" not in after


async def test_list_endpoints_paginates_by_100(sns: Any) -> None:
    """boto3's paginator walks 101 endpoints in two pages of at most 100."""
    app = await make_app(sns)
    created = [await make_endpoint(sns, app, f"token-{n}") for n in range(101)]

    def pages() -> list[dict[str, Any]]:
        paginator = sns.get_paginator("list_endpoints_by_platform_application")
        return list(paginator.paginate(PlatformApplicationArn=app))

    got = await asyncio.to_thread(pages)

    assert [100, 1] == [len(p["Endpoints"]) for p in got]
    assert created == [e["EndpointArn"] for p in got for e in p["Endpoints"]]


async def test_publish_to_endpoint(sns: Any, gateway: Gateway) -> None:
    """Publish to an endpoint returns a MessageId and stores the message."""
    endpoint = await make_endpoint(sns, await make_app(sns))

    result = await call(
        sns.publish,
        TargetArn=endpoint,
        Message="hello <world> & all",
        MessageAttributes={
            "AWS.SNS.MOBILE.ADM.TTL": {"DataType": "Number", "StringValue": "60"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    stored = gateway.store.messages[result["MessageId"]]
    assert "hello <world> & all" == stored.body
    assert b"\x00\x01" == stored.attributes["blob"].binary_value


async def test_topics_subscriptions_tags_and_batch(sns: Any) -> None:
    """Topic, application subscription, tags and PublishBatch round-trip."""
    endpoint = await make_endpoint(sns, await make_app(sns))
    topic = (
        await call(sns.create_topic, Name="news", Tags=[{"Key": "team", "Value": "a"}])
    )["TopicArn"]
    sub = (
        await call(
            sns.subscribe, TopicArn=topic, Protocol="application", Endpoint=endpoint
        )
    )["SubscriptionArn"]

    by_topic = await call(sns.list_subscriptions_by_topic, TopicArn=topic)
    everything = await call(sns.list_subscriptions)
    topics = await call(sns.list_topics)
    await call(
        sns.tag_resource, ResourceArn=topic, Tags=[{"Key": "env", "Value": "prod"}]
    )
    await call(sns.untag_resource, ResourceArn=topic, TagKeys=["team"])
    tags = await call(sns.list_tags_for_resource, ResourceArn=topic)
    batch = await call(
        sns.publish_batch,
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "a", "Message": "one"},
            {"Id": "b", "Message": "two"},
        ],
    )
    await call(sns.unsubscribe, SubscriptionArn=sub)
    await call(sns.delete_topic, TopicArn=topic)

    member = {
        "SubscriptionArn": sub,
        "Owner": ACCOUNT,
        "Protocol": "application",
        "Endpoint": endpoint,
        "TopicArn": topic,
    }
    assert [member] == by_topic["Subscriptions"]
    assert [member] == everything["Subscriptions"]
    assert [{"TopicArn": topic}] == topics["Topics"]
    assert [{"Key": "env", "Value": "prod"}] == tags["Tags"]
    assert ["a", "b"] == [s["Id"] for s in batch["Successful"]]
    assert [] == batch["Failed"]


async def test_modelled_error_becomes_its_exception(sns: Any) -> None:
    """NotFound arrives as botocore's NotFoundException with SNS's message."""
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/ADM/myapp/00000000-0000"

    with pytest.raises(sns.exceptions.NotFoundException) as info:
        await call(sns.get_endpoint_attributes, EndpointArn=arn)

    error = info.value.response
    assert "Endpoint does not exist" == error["Error"]["Message"]
    assert "Sender" == error["Error"]["Type"]
    headers = error["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-requestid"] == error["ResponseMetadata"]["RequestId"]
    assert headers["content-type"].startswith("text/xml")


async def test_empty_attributes_are_a_validation_error(sns: Any) -> None:
    """`Attributes={}` is not serialised; the service answers ValidationError."""
    endpoint = await make_endpoint(sns, await make_app(sns))

    error = await client_error(
        sns.set_endpoint_attributes, EndpointArn=endpoint, Attributes={}
    )

    assert "ValidationError" == error["Error"]["Code"]


async def test_publish_only_key_is_refused_other_actions(gateway: Gateway) -> None:
    """A key limited to Publish gets AuthorizationError for CreateTopic."""
    error = await client_error(gateway.client(PUBLISHER).create_topic, Name="t")

    expected = (
        f"User: arn:aws:iam::{ACCOUNT}:user/{PUBLISHER.access_key_id} is not"
        " authorized to perform: SNS:CreateTopic on resource: *"
    )
    assert ("AuthorizationError", expected, 403) == (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


async def test_publish_only_key_names_the_resource(gateway: Gateway) -> None:
    """The AuthorizationError names the resource ARN the request was about."""
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/ADM/a/b"

    error = await client_error(
        gateway.client(PUBLISHER).get_endpoint_attributes, EndpointArn=arn
    )

    assert error["Error"]["Message"].endswith(
        f"SNS:GetEndpointAttributes on resource: {arn}"
    )


async def test_publish_only_key_can_publish(sns: Any, gateway: Gateway) -> None:
    """A key limited to Publish can publish."""
    endpoint = await make_endpoint(sns, await make_app(sns))

    result = await call(
        gateway.client(PUBLISHER).publish, TargetArn=endpoint, Message="m"
    )

    assert result["MessageId"] in gateway.store.messages


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"region": "eu-west-1"}, "SignatureDoesNotMatch"),
        (
            {"key": AccessKey(access_key_id="AKIAUNKNOWN", secret_access_key="x")},
            "InvalidClientTokenId",
        ),
    ],
)
async def test_bad_credentials_are_refused(
    gateway: Gateway, kwargs: dict[str, Any], code: str
) -> None:
    """Wrong secret, wrong region or unknown key are refused with AWS's codes."""
    error = await client_error(gateway.client(**kwargs).list_topics)

    assert (code, 403) == (
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


async def test_presigned_get_is_served(gateway: Gateway) -> None:
    """A signed GET with the parameters in the query string is answered."""
    request = AWSRequest(
        method="GET",
        url=gateway.url,
        params={"Action": "ListTopics", "Version": "2010-03-31"},
    )
    credentials = Credentials(ADMIN.access_key_id, ADMIN.secret_access_key)
    SigV4QueryAuth(credentials, "sns", REGION, expires=60).add_auth(request)
    url = request.prepare().url

    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True)) as response,
    ):
        body = await response.text()

    assert 200 == response.status
    assert "<ListTopicsResponse" in body
    assert "<Topics/>" in body
    assert urlsplit(url).query.startswith("Action=ListTopics")


async def test_unexpected_exception_is_an_opaque_internal_error() -> None:
    """A crash in the service is a 500 InternalError without any detail."""
    server, gateway = await start(ExplodingService)
    try:
        error = await client_error(gateway.client().list_topics)
    finally:
        await server.close()

    assert ("InternalError", "Receiver", 500) == (
        error["Error"]["Code"],
        error["Error"]["Type"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )
    assert "boom" not in error["Error"]["Message"]


async def aws_cli(gateway: Gateway, *args: str) -> tuple[int, Any, str]:
    """Run the AWS CLI against the gateway; return (exit code, JSON output, stderr)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": ADMIN.access_key_id,
        "AWS_SECRET_ACCESS_KEY": ADMIN.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(AWS_CLI),
        "--endpoint-url",
        gateway.url,
        "--output",
        "json",
        "sns",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out) if out.strip() else None, err.decode()


async def test_aws_cli_mobile_flow(gateway: Gateway) -> None:
    """The AWS CLI creates an application and endpoint, lists it, and gets NotFound."""
    _, app, _ = await aws_cli(
        gateway,
        "create-platform-application",
        "--name",
        "cliapp",
        "--platform",
        "ADM",
        "--attributes",
        "PlatformPrincipal=id,PlatformCredential=secret",
    )
    _, endpoint, _ = await aws_cli(
        gateway,
        "create-platform-endpoint",
        "--platform-application-arn",
        app["PlatformApplicationArn"],
        "--token",
        "cli-token",
    )
    _, listed, _ = await aws_cli(
        gateway,
        "list-endpoints-by-platform-application",
        "--platform-application-arn",
        app["PlatformApplicationArn"],
    )
    code, _, err = await aws_cli(
        gateway,
        "get-endpoint-attributes",
        "--endpoint-arn",
        endpoint["EndpointArn"] + "0",
    )

    assert [endpoint["EndpointArn"]] == [e["EndpointArn"] for e in listed["Endpoints"]]
    assert 0 != code
    assert "(NotFound)" in err
    assert "Endpoint does not exist" in err


async def test_publish_message_group_id_refused(sns: Any) -> None:
    """MessageGroupId on a standard topic is refused with SNS's InvalidParameter."""
    topic = (await call(sns.create_topic, Name="std"))["TopicArn"]

    error = await client_error(
        sns.publish, TopicArn=topic, Message="m", MessageGroupId="g-1"
    )

    assert {
        "Type": "Sender",
        "Code": "InvalidParameter",
        "Message": "Invalid parameter: The request includes MessageGroupId parameter"
        " that is not valid for this topic type",
    } == error["Error"]
