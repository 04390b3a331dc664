"""boto3 against the SNS Query API: another account's ARNs are AuthorizationError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.config import Config
from botocore.exceptions import ClientError

from pushgw.api.sns_query import make_sns_handler
from pushgw.arn import ArnBuilder
from pushgw.config import AccessKey
from pushgw.service import Service
from pushgw.store.memory import InMemoryStore

REGION = "us-east-1"
ACCOUNT = "123456789012"
KEY = AccessKey(access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="secret")
FOREIGN_TOPIC = f"arn:aws:sns:{REGION}:111111111111:news"


@pytest.fixture(name="sns")
async def _sns() -> AsyncIterator[Any]:
    service = Service(store=InMemoryStore(), arns=ArnBuilder(REGION, ACCOUNT))
    handler = make_sns_handler(
        service=service,
        keys={KEY.access_key_id: KEY},
        region=REGION,
        max_body_bytes=1_048_576,
    )
    app = web.Application()
    app.router.add_route("POST", "/", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield boto3.session.Session().client(
        "sns",
        endpoint_url=str(server.make_url("/")),
        region_name=REGION,
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}),
    )
    await server.close()


async def test_delete_topic_of_another_account_names_the_caller(sns: Any) -> None:
    """The 403 names the access key's user, as AWS names the caller."""
    ours = (await asyncio.to_thread(sns.create_topic, Name="news"))["TopicArn"]

    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(sns.delete_topic, TopicArn=FOREIGN_TOPIC)

    error = info.value.response
    assert (
        "AuthorizationError",
        403,
        f"User: arn:aws:iam::{ACCOUNT}:user/{KEY.access_key_id} is not authorized"
        f" to perform: SNS:DeleteTopic on resource: {FOREIGN_TOPIC} because no"
        " resource-based policy allows the SNS:DeleteTopic action",
    ) == (
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Message"],
    )
    assert isinstance(info.value, sns.exceptions.AuthorizationErrorException)
    topics = await asyncio.to_thread(sns.list_topics)
    assert [ours] == [t["TopicArn"] for t in topics["Topics"]]
