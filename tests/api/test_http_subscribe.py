"""HTTP/HTTPS subscriptions at the service: SNS's answers and errors (no network)."""

from __future__ import annotations

import json

import pytest

from pushgw.arn import ArnBuilder
from pushgw.errors import AuthorizationError, InvalidParameterError
from pushgw.service import Service
from pushgw.sns import confirmation
from pushgw.store.memory import InMemoryStore


@pytest.fixture(name="service")
def _service() -> Service:
    # The default URL check: private addresses refused, as in production.
    return Service(store=InMemoryStore(), arns=ArnBuilder("us-east-1", "123456789012"))


async def topic(service: Service, name: str = "hooks") -> str:
    return await service.create_topic(name=name, attributes=None, tags=None)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "https://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "https://user:pw@hooks.example/",
        "https://2130706433/",
    ],
)
async def test_private_and_odd_urls_are_refused(service: Service, url: str) -> None:
    arn = await topic(service)
    protocol = url.split(":")[0]
    with pytest.raises(InvalidParameterError) as err:
        await service.subscribe(
            topic_arn=arn, protocol=protocol, endpoint=url, attributes=None
        )
    assert err.value.message.startswith("Invalid parameter: Endpoint")


async def test_pending_until_confirmed(service: Service) -> None:
    arn = await topic(service)
    url = "https://hooks.example/sns"
    answer = await service.subscribe(
        topic_arn=arn, protocol="https", endpoint=url, attributes=None
    )
    assert answer == "pending confirmation"
    (sub,) = (await service.list_subscriptions_by_topic(arn, None)).items
    assert sub.pending
    attrs = await service.get_subscription_attributes(sub.arn)
    assert attrs["PendingConfirmation"] == "true"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["healthyRetryPolicy"]
    counts = await service.get_topic_attributes(arn)
    assert (counts["SubscriptionsPending"], counts["SubscriptionsConfirmed"]) == (
        "1",
        "0",
    )
    # Subscribe again: the same subscription, its confirmation sent again.
    again = await service.subscribe(
        topic_arn=arn,
        protocol="https",
        endpoint=url,
        attributes=None,
        return_subscription_arn=True,
    )
    assert again == sub.arn
    confirmations = [m for m in service.store.messages.values() if m.topic_arn == arn]  # type: ignore[attr-defined]
    assert len(confirmations) == 2
    token = confirmation.token_for(sub)
    assert (
        await service.confirm_subscription(
            topic_arn=arn, token=token, authenticate_on_unsubscribe="true"
        )
        == sub.arn
    )
    # Confirmed twice (the link followed again): the same answer.
    assert (
        await service.confirm_subscription(
            topic_arn=arn, token=token, authenticate_on_unsubscribe=None
        )
        == sub.arn
    )
    attrs = await service.get_subscription_attributes(sub.arn)
    assert attrs["ConfirmationWasAuthenticated"] == "true"
    with pytest.raises(AuthorizationError):
        await service.unsubscribe(sub.arn, authenticated=False)
    await service.unsubscribe(sub.arn)
    counts = await service.get_topic_attributes(arn)
    assert counts["SubscriptionsDeleted"] == "1"


@pytest.mark.parametrize("token", ["", "abc", "0" * 96, "g" * 96, "0" * 95, "0" * 97])
async def test_bad_tokens_are_invalid_parameters(service: Service, token: str) -> None:
    arn = await topic(service)
    with pytest.raises(InvalidParameterError) as err:
        await service.confirm_subscription(
            topic_arn=arn, token=token, authenticate_on_unsubscribe=None
        )
    assert err.value.message == "Invalid parameter: Token"


async def test_expired_token_is_refused(service: Service) -> None:
    arn = await topic(service)
    await service.subscribe(
        topic_arn=arn,
        protocol="https",
        endpoint="https://hooks.example/",
        attributes=None,
    )
    (sub,) = (await service.list_subscriptions_by_topic(arn, None)).items
    service.clock = lambda: sub.created_at + confirmation.TOKEN_TTL_S + 1
    with pytest.raises(InvalidParameterError):
        await service.confirm_subscription(
            topic_arn=arn,
            token=confirmation.token_for(sub),
            authenticate_on_unsubscribe=None,
        )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "SignatureVersion",
            "3",
            "SignatureVersion: Invalid value [3]. Must be 1 or 2",
        ),
        (
            "DeliveryPolicy",
            json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 101}}}),
            "Invalid parameter: DeliveryPolicy: ",
        ),
    ],
)
async def test_topic_attributes_are_checked(
    service: Service, name: str, value: str, message: str
) -> None:
    arn = await topic(service)
    with pytest.raises(InvalidParameterError) as err:
        await service.set_topic_attributes(arn=arn, name=name, value=value)
    assert message in err.value.message


async def test_delivery_policy_only_for_http(service: Service) -> None:
    arn = await topic(service)
    app = await service.create_platform_application(
        name="a", platform="GCM", attributes={"PlatformCredential": "AIzaKey"}
    )
    endpoint = await service.create_platform_endpoint(
        app_arn=app, token="t", custom_user_data=None, attributes=None
    )
    policy = json.dumps(
        {
            "healthyRetryPolicy": {
                "minDelayTarget": 1,
                "maxDelayTarget": 2,
                "numRetries": 3,
            }
        }
    )
    with pytest.raises(InvalidParameterError):
        await service.subscribe(
            topic_arn=arn,
            protocol="application",
            endpoint=endpoint,
            attributes={"DeliveryPolicy": policy},
        )
