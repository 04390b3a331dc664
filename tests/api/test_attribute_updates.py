"""
Set*Attributes is all or nothing in both APIs: a refused attribute anywhere in the
request leaves every attribute as it was, and the request's good ones unwritten.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.test_bad_input import json_api
from tests.api.test_json_api import Api, assert_error
from tests.api.test_sns_api import call, client_error, make_app, make_endpoint, start

FILTER = json.dumps({"kind": ["a"]})


@pytest.fixture(name="api")
async def _api() -> AsyncIterator[Api]:
    async with json_api() as (api, _):
        yield api


@pytest.fixture(name="sns")
async def _sns() -> AsyncIterator[Any]:
    server, gateway = await start()
    yield gateway.client()
    await server.close()


async def json_resources(api: Api) -> dict[str, str]:
    """One of each resource with Set*Attributes, by its /v1 path."""
    app = await api.gcm_app()
    endpoint = await api.endpoint(app, "tok-1")
    topic = await api.topic()
    created = await api.ok(
        "POST", f"/v1/topics/{topic}/subscriptions", {"endpointArn": endpoint}
    )
    return {
        "app": f"/v1/platform-applications/{app}",
        "endpoint": f"/v1/endpoints/{endpoint}",
        "topic": f"/v1/topics/{topic}",
        "subscription": f"/v1/subscriptions/{created['subscriptionArn']}",
    }


# (resource, a good attribute, a bad second one, the error code)
JSON_CASES = [
    ("app", ("SuccessFeedbackSampleRate", "50"), ("Bogus", "x"), "InvalidParameter"),
    (
        "app",
        ("SuccessFeedbackRoleArn", "arn:aws:iam::123456789012:role/r"),
        ("SuccessFeedbackSampleRate", "101"),
        "InvalidParameter",
    ),
    ("endpoint", ("CustomUserData", "new"), ("Enabled", "maybe"), "InvalidParameter"),
    ("endpoint", ("CustomUserData", "new"), ("Bogus", "x"), "InvalidParameter"),
    ("topic", ("DisplayName", "News"), ("Bogus", "x"), "InvalidParameter"),
    ("subscription", ("FilterPolicy", FILTER), ("Bogus", "x"), "InvalidParameter"),
    (
        "subscription",
        ("RawMessageDelivery", "true"),
        ("FilterPolicy", "{"),
        "InvalidParameter",
    ),
]


@pytest.mark.parametrize(("resource", "good", "bad", "code"), JSON_CASES)
async def test_json_bad_second_attribute_changes_nothing(
    api: Api,
    resource: str,
    good: tuple[str, str],
    bad: tuple[str, str],
    code: str,
) -> None:
    """PATCH with a good and a bad attribute is refused and writes neither."""
    path = (await json_resources(api))[resource]
    before = (await api.ok("GET", path))["attributes"]

    status, body = await api.call("PATCH", path, {"attributes": dict([good, bad])})

    assert_error(status, body, 400, code)
    after = (await api.ok("GET", path))["attributes"]
    assert before == after
    assert good[1] != after.get(good[0])


@pytest.mark.parametrize("resource", ["topic", "subscription"])
async def test_json_several_attributes_are_written_together(
    api: Api, resource: str
) -> None:
    """A topic or subscription PATCH with two good attributes sets both."""
    path = (await json_resources(api))[resource]
    attributes = (
        {"DisplayName": "News", "DeliveryPolicy": "{}"}
        if resource == "topic"
        else {"RawMessageDelivery": "true", "FilterPolicy": FILTER}
    )

    status, _ = await api.call("PATCH", path, {"attributes": attributes})

    assert 204 == status
    after = (await api.ok("GET", path))["attributes"]
    assert attributes == {k: after[k] for k in attributes}


@pytest.mark.parametrize("resource", ["topic", "subscription"])
async def test_json_empty_attributes_are_refused(api: Api, resource: str) -> None:
    """PATCH with no attributes is a 400 ValidationError for every resource."""
    path = (await json_resources(api))[resource]

    status, body = await api.call("PATCH", path, {"attributes": {}})

    assert_error(status, body, 400, "ValidationError")


async def test_sns_app_bad_second_attribute_changes_nothing(sns: Any) -> None:
    """SetPlatformApplicationAttributes with one bad attribute writes none."""
    arn = await make_app(sns)
    before = await call(sns.get_platform_application_attributes, **_app(arn))

    error = await client_error(
        sns.set_platform_application_attributes,
        PlatformApplicationArn=arn,
        Attributes={"SuccessFeedbackSampleRate": "50", "Bogus": "x"},
    )

    assert "InvalidParameter" == error["Error"]["Code"]
    after = await call(sns.get_platform_application_attributes, **_app(arn))
    assert before["Attributes"] == after["Attributes"]


async def test_sns_endpoint_bad_second_attribute_changes_nothing(sns: Any) -> None:
    """SetEndpointAttributes with one bad value writes none of the others."""
    arn = await make_endpoint(sns, await make_app(sns), "tok-1")

    error = await client_error(
        sns.set_endpoint_attributes,
        EndpointArn=arn,
        Attributes={"CustomUserData": "new", "Enabled": "maybe"},
    )

    assert "InvalidParameter" == error["Error"]["Code"]
    after = await call(sns.get_endpoint_attributes, EndpointArn=arn)
    assert {"Enabled": "true", "Token": "tok-1"} == after["Attributes"]


def _app(arn: str) -> dict[str, str]:
    return {"PlatformApplicationArn": arn}
