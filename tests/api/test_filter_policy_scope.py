"""
FilterPolicyScope over the SNS Query API: its values are checked, and a policy
is checked against the scope it will be matched in, at Subscribe and whenever
the policy or the scope changes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.test_sns_api import call, client_error, make_app, make_endpoint, start

NESTED = json.dumps({"detail": {"kind": ["a"]}})
FLAT = json.dumps({"kind": ["a"]})
BAD_SCOPE = (
    "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]."
    " Please use either MessageBody or MessageAttributes"
)
NOT_NESTED = (
    "Invalid parameter: Filter policy scope MessageAttributes does not support"
    " nested filter policy"
)


@pytest.fixture(name="sns")
async def _sns() -> AsyncIterator[Any]:
    server, gateway = await start()
    yield gateway.client()
    await server.close()


async def subscribe(sns: Any, **attributes: str) -> str:
    endpoint = await make_endpoint(sns, await make_app(sns))
    topic = (await call(sns.create_topic, Name="news"))["TopicArn"]
    created = await call(
        sns.subscribe,
        TopicArn=topic,
        Protocol="application",
        Endpoint=endpoint,
        Attributes=attributes,
    )
    return str(created["SubscriptionArn"])


async def attributes_of(sns: Any, sub: str) -> dict[str, str]:
    found = await call(sns.get_subscription_attributes, SubscriptionArn=sub)
    return dict(found["Attributes"])


def refused(error: dict[str, Any]) -> tuple[str, str]:
    return error["Error"]["Code"], error["Error"]["Message"]


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"FilterPolicyScope": "RandomValue"}, BAD_SCOPE),
        ({"FilterPolicyScope": "RandomValue", "FilterPolicy": FLAT}, BAD_SCOPE),
        ({"FilterPolicy": NESTED}, NOT_NESTED),
        (
            {"FilterPolicy": NESTED, "FilterPolicyScope": "MessageAttributes"},
            NOT_NESTED,
        ),
        (
            {"FilterPolicy": json.dumps({f"k{i}": ["v"] for i in range(6)})},
            "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys",
        ),
        (
            {"FilterPolicy": json.dumps({"k": [str(i) for i in range(151)]})},
            "Invalid parameter: FilterPolicy: Filter policy is too complex",
        ),
    ],
)
async def test_subscribe_refuses_a_bad_scope_or_policy(
    sns: Any, attributes: dict[str, str], message: str
) -> None:
    """Subscribe checks the scope's value and the policy against that scope."""
    endpoint = await make_endpoint(sns, await make_app(sns))
    topic = (await call(sns.create_topic, Name="news"))["TopicArn"]

    error = await client_error(
        sns.subscribe,
        TopicArn=topic,
        Protocol="application",
        Endpoint=endpoint,
        Attributes=attributes,
    )

    assert ("InvalidParameter", message) == refused(error)


async def test_subscribe_accepts_a_nested_policy_for_the_body(sns: Any) -> None:
    """A nested policy with FilterPolicyScope=MessageBody is stored as given."""
    sub = await subscribe(sns, FilterPolicy=NESTED, FilterPolicyScope="MessageBody")

    stored = await attributes_of(sns, sub)

    assert NESTED == stored["FilterPolicy"]
    assert "MessageBody" == stored["FilterPolicyScope"]


async def test_set_subscription_attributes_refuses_a_bad_scope(sns: Any) -> None:
    """SetSubscriptionAttributes answers an unknown scope with AWS's text."""
    sub = await subscribe(sns)

    error = await client_error(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicyScope",
        AttributeValue="RandomValue",
    )

    assert ("InvalidParameter", BAD_SCOPE) == refused(error)
    assert "FilterPolicyScope" not in await attributes_of(sns, sub)


async def test_scope_change_rechecks_the_stored_policy(sns: Any) -> None:
    """A nested policy cannot move to MessageAttributes; the scope stays as it was."""
    sub = await subscribe(sns, FilterPolicy=NESTED, FilterPolicyScope="MessageBody")

    error = await client_error(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicyScope",
        AttributeValue="MessageAttributes",
    )

    assert ("InvalidParameter", NOT_NESTED) == refused(error)
    assert "MessageBody" == (await attributes_of(sns, sub))["FilterPolicyScope"]


async def test_policy_change_is_checked_against_the_stored_scope(sns: Any) -> None:
    """A nested policy is refused under the default scope and accepted once it is MessageBody."""
    sub = await subscribe(sns, FilterPolicy=FLAT)

    error = await client_error(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicy",
        AttributeValue=NESTED,
    )
    await call(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicyScope",
        AttributeValue="MessageBody",
    )
    await call(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicy",
        AttributeValue=NESTED,
    )

    assert ("InvalidParameter", NOT_NESTED) == refused(error)
    assert NESTED == (await attributes_of(sns, sub))["FilterPolicy"]


async def test_scope_change_without_a_policy_is_accepted(sns: Any) -> None:
    """With no policy stored, any valid scope may be set."""
    sub = await subscribe(sns)

    await call(
        sns.set_subscription_attributes,
        SubscriptionArn=sub,
        AttributeName="FilterPolicyScope",
        AttributeValue="MessageBody",
    )

    assert "MessageBody" == (await attributes_of(sns, sub))["FilterPolicyScope"]
