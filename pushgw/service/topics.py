"""Topics, `application` subscriptions and tags (SNS_API §7)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence

from pushgw import arn as arns
from pushgw.errors import (
    ApiError,
    ConflictError,
    InvalidParameterError,
    NotFoundApiError,
)
from pushgw.model import Subscription, Topic
from pushgw.service.base import PAGE_SIZE, ServiceBase
from pushgw.service.types import Listing

TOPIC_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")
TOPIC_ATTRIBUTES = frozenset(
    {
        "DisplayName",
        "Policy",
        "DeliveryPolicy",
        "KmsMasterKeyId",
        "TracingConfig",
        "SignatureVersion",
        "DataProtectionPolicy",
        "ApplicationSuccessFeedbackRoleArn",
        "ApplicationSuccessFeedbackSampleRate",
        "ApplicationFailureFeedbackRoleArn",
    }
)
SUBSCRIPTION_ATTRIBUTES = frozenset(
    {
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "SubscriptionRoleArn",
    }
)
# Protocols SNS knows; pushgw delivers only `application`.
SNS_PROTOCOLS = frozenset(
    {
        "http",
        "https",
        "email",
        "email-json",
        "sms",
        "sqs",
        "application",
        "lambda",
        "firehose",
    }
)
MAX_TAGS = 50


class TagLimitExceededError(ApiError):
    """Could not complete request: tag quota of per resource exceeded"""

    code = "TagLimitExceeded"
    status = 400


class ResourceNotFoundError(ApiError):
    """Resource does not exist"""

    code = "ResourceNotFound"
    status = 404


class TopicsMixin(ServiceBase):
    # -- topics ----------------------------------------------------------------
    async def create_topic(
        self,
        *,
        name: str | None,
        attributes: Mapping[str, str] | None,
        tags: Mapping[str, str] | None,
    ) -> str:
        name = self.required(name, "name")
        if not TOPIC_NAME.match(name):
            raise InvalidParameterError("Invalid parameter: Topic Name")
        attrs = _checked(attributes or {}, TOPIC_ATTRIBUTES)
        arn = self.arns.topic(name)
        existing = await self.store.get_topic(arn)
        if existing is not None:
            if any(existing.attributes.get(k) != v for k, v in attrs.items()):
                raise InvalidParameterError(
                    "Invalid parameter: Attributes Reason: Topic already exists with"
                    " different attributes"
                )
            return arn  # idempotent by name
        await self.store.insert_topic(
            Topic(arn=arn, name=name, attributes=attrs, created_at=self.clock())
        )
        if tags:
            await self.tag_resource(arn, tags)
        return arn

    async def delete_topic(self, arn: str | None) -> None:
        value = self.required(arn, "topicArn")
        arns.parse(value, param="TopicArn")
        await self.store.delete_topic(value)  # idempotent, subscriptions too

    async def get_topic_attributes(self, arn: str | None) -> dict[str, str]:
        topic = await self.topic_or_404(arn, param="TopicArn")
        out = {
            "TopicArn": topic.arn,
            "Owner": self.account,
            "DisplayName": "",
            "Policy": _default_policy(topic.arn, self.account),
            "SubscriptionsPending": "0",
            "SubscriptionsDeleted": "0",
        }
        out.update(topic.attributes)
        return out

    async def set_topic_attributes(
        self, *, arn: str | None, name: str | None, value: str | None
    ) -> None:
        topic = await self.topic_or_404(arn, param="TopicArn")
        key = self.required(name, "attributeName")
        attrs = _checked({key: value or ""}, TOPIC_ATTRIBUTES)
        await self.store.update_topic(
            dataclasses.replace(topic, attributes={**topic.attributes, **attrs})
        )

    async def list_topics(self, next_token: str | None) -> Listing[Topic]:
        after = self.decode_token(next_token, "topics")
        page = await self.store.list_topics(after=after, limit=PAGE_SIZE)
        return Listing(page.items, self.next_token("topics", page.next_after))

    async def topic_or_404(self, arn: str | None, *, param: str) -> Topic:
        value = self.required(arn, param[0].lower() + param[1:])
        parsed = arns.parse(value, param=param)
        if parsed.region != self.arns.region:
            raise InvalidParameterError(f"Invalid parameter: {param}")
        topic = await self.store.get_topic(value)
        if topic is None:
            raise NotFoundApiError("Topic does not exist")
        return topic

    # -- subscriptions ---------------------------------------------------------
    async def subscribe(
        self,
        *,
        topic_arn: str | None,
        protocol: str | None,
        endpoint: str | None,
        attributes: Mapping[str, str] | None,
    ) -> str:
        topic = await self.topic_or_404(topic_arn, param="TopicArn")
        proto = self.required(protocol, "protocol")
        if proto not in SNS_PROTOCOLS:
            raise InvalidParameterError(
                f"Invalid parameter: Amazon SNS does not support this protocol string:"
                f" {proto}"
            )
        if proto != "application":
            raise InvalidParameterError(
                f"Invalid parameter: Protocol Reason: pushgw delivers only the"
                f" application protocol, not {proto}"
            )
        target = endpoint or ""
        if (
            not arns.is_endpoint_arn(target)
            or await self.store.get_endpoint(target) is None
        ):
            raise InvalidParameterError(
                f"Invalid parameter: Endpoint Reason: Endpoint does not exist for"
                f" endpoint arn{target}"
            )
        attrs = _checked(attributes or {}, SUBSCRIPTION_ATTRIBUTES)
        _check_filter_policy(attrs.get("FilterPolicy"))
        existing = await self.store.find_subscription(topic.arn, target)
        if existing is None:
            sub = Subscription(
                arn=self.arns.subscription(topic.arn),
                topic_arn=topic.arn,
                endpoint_arn=target,
                attributes=attrs,
                created_at=self.clock(),
            )
            try:
                return (await self.store.insert_subscription(sub)).arn
            except ConflictError:  # subscribed meanwhile by another request
                existing = await self.store.find_subscription(topic.arn, target)
                if existing is None:
                    raise
        if any(existing.attributes.get(k) != v for k, v in attrs.items()):
            raise InvalidParameterError(
                "Invalid parameter: Attributes Reason: Subscription already exists with"
                " different attributes"
            )
        return existing.arn

    async def unsubscribe(self, arn: str | None) -> None:
        value = _subscription_arn(self.required(arn, "subscriptionArn"))
        await self.store.delete_subscription(value)  # idempotent

    async def list_subscriptions(self, next_token: str | None) -> Listing[Subscription]:
        after = self.decode_token(next_token, "subs")
        page = await self.store.list_subscriptions(
            topic_arn=None, after=after, limit=PAGE_SIZE
        )
        return Listing(page.items, self.next_token("subs", page.next_after))

    async def list_subscriptions_by_topic(
        self, topic_arn: str | None, next_token: str | None
    ) -> Listing[Subscription]:
        topic = await self.topic_or_404(topic_arn, param="TopicArn")
        after = self.decode_token(next_token, "subs")
        page = await self.store.list_subscriptions(
            topic_arn=topic.arn, after=after, limit=PAGE_SIZE
        )
        return Listing(page.items, self.next_token("subs", page.next_after))

    async def get_subscription_attributes(self, arn: str | None) -> dict[str, str]:
        sub = await self._subscription_or_404(arn)
        out = {
            "SubscriptionArn": sub.arn,
            "TopicArn": sub.topic_arn,
            "Owner": self.account,
            "Protocol": sub.protocol,
            "Endpoint": sub.endpoint_arn,
            "ConfirmationWasAuthenticated": "true",
            "PendingConfirmation": "false",
            "RawMessageDelivery": "false",
            "SubscriptionPrincipal": f"arn:aws:iam::{self.account}:root",
        }
        out.update(sub.attributes)
        return out

    async def set_subscription_attributes(
        self, *, arn: str | None, name: str | None, value: str | None
    ) -> None:
        sub = await self._subscription_or_404(arn)
        key = self.required(name, "attributeName")
        attrs = _checked({key: value or ""}, SUBSCRIPTION_ATTRIBUTES)
        _check_filter_policy(attrs.get("FilterPolicy"))
        await self.store.update_subscription(
            dataclasses.replace(sub, attributes={**sub.attributes, **attrs})
        )

    async def _subscription_or_404(self, arn: str | None) -> Subscription:
        value = _subscription_arn(self.required(arn, "subscriptionArn"))
        sub = await self.store.get_subscription(value)
        if sub is None:
            raise NotFoundApiError("Subscription does not exist")
        return sub

    # -- tags (topics only, as in SNS) -----------------------------------------
    async def tag_resource(
        self, arn: str | None, tags: Mapping[str, str] | None
    ) -> None:
        value = await self._taggable(arn)
        if not tags:
            raise InvalidParameterError(
                "Invalid parameter: Tags Reason: cannot be empty"
            )
        for key, tag_value in tags.items():
            if not 1 <= len(key) <= 128 or len(tag_value) > 256:
                raise InvalidParameterError(
                    "Invalid parameter: Tags Reason: tag keys must be 1-128 characters"
                    " and values at most 256"
                )
        current = await self.store.get_tags(value)
        if len(current.keys() | tags.keys()) > MAX_TAGS:
            raise TagLimitExceededError()
        await self.store.set_tags(value, tags)

    async def untag_resource(self, arn: str | None, keys: Sequence[str] | None) -> None:
        value = await self._taggable(arn)
        await self.store.remove_tags(value, list(keys or []))

    async def list_tags_for_resource(self, arn: str | None) -> dict[str, str]:
        return await self.store.get_tags(await self._taggable(arn))

    async def _taggable(self, arn: str | None) -> str:
        value = self.required(arn, "resourceArn")
        arns.parse(value, param="ResourceArn")
        if await self.store.get_topic(value) is None:
            raise ResourceNotFoundError()
        return value


def _checked(attributes: Mapping[str, str], allowed: frozenset[str]) -> dict[str, str]:
    for key in attributes:
        if key not in allowed:
            raise InvalidParameterError(
                f"Invalid parameter: AttributeName Reason: Unknown attribute {key}"
            )
    return dict(attributes)


def _check_filter_policy(policy: str | None) -> None:
    if not policy:
        return
    from pushgw.delivery.filters import parse_filter_policy

    try:
        parse_filter_policy(policy)
    except ValueError as exc:
        raise InvalidParameterError(f"Invalid parameter: FilterPolicy: {exc}") from None


def _subscription_arn(value: str) -> str:
    parsed = arns.parse(value, param="SubscriptionArn")
    if ":" not in parsed.resource:
        raise InvalidParameterError("Invalid parameter: SubscriptionId")
    return value


def _default_policy(topic_arn: str, account: str) -> str:
    return json.dumps(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "SNS:GetTopicAttributes",
                        "SNS:SetTopicAttributes",
                        "SNS:AddPermission",
                        "SNS:RemovePermission",
                        "SNS:DeleteTopic",
                        "SNS:Subscribe",
                        "SNS:ListSubscriptionsByTopic",
                        "SNS:Publish",
                    ],
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
                }
            ],
        },
        separators=(",", ":"),
    )
