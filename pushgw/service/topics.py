"""Topics, subscriptions (application, http, https) and tags (SNS_API §7)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence

from pushgw import arn as arns
from pushgw.errors import (
    AuthorizationError,
    ConflictError,
    InvalidParameterError,
    NotFoundApiError,
    ResourceNotFoundError,
    TagLimitExceededError,
    missing_attributes,
)
from pushgw.model import HTTP_PROTOCOLS, Subscription, Topic
from pushgw.service.base import PAGE_SIZE, ServiceBase
from pushgw.service.types import Listing
from pushgw.sns import confirmation, delivery_policy
from pushgw.sns.http_messages import (
    SUBSCRIPTION_CONFIRMATION,
    UNSUBSCRIBE_CONFIRMATION,
)

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
# What Subscribe answers for a subscription that waits for its confirmation
# (unless ReturnSubscriptionArn), and what lists show instead of its ARN.
PENDING_CONFIRMATION = "pending confirmation"
# Protocols SNS knows; pushgw delivers `application`, `http` and `https`.
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
DELIVERED_PROTOCOLS = frozenset({"application", *HTTP_PROTOCOLS})
MAX_TAGS = 50


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
        _check_topic_attributes(attrs, in_attributes=True)
        wanted = dict(tags or {})  # `Tags=[]` is no tags (boto3 sends `Tags=`)
        # Everything is checked before anything is written, so a refused request
        # leaves no topic behind.
        _check_tags(wanted)
        if len(wanted) > MAX_TAGS:
            raise TagLimitExceededError()
        arn = self.arns.topic(name)
        existing = await self.store.get_topic(arn)
        if existing is None:
            topic = Topic(arn=arn, name=name, attributes=attrs, created_at=self.clock())
            existing = await self._insert_topic(topic, wanted)
            if existing is None:
                return arn
        await self._check_same_topic(existing, attrs, wanted)
        return arn  # idempotent by name

    async def _insert_topic(
        self, topic: Topic, tags: Mapping[str, str]
    ) -> Topic | None:
        """Create `topic`: None, or the topic a concurrent CreateTopic created first."""
        try:
            # With its tags in one transaction: a concurrent CreateTopic never
            # sees the topic without them, and a crash never leaves it untagged.
            await self.store.insert_topic(topic, tags)
        except ConflictError:
            # The same name was created between our read and our insert: answer as
            # if that request had come first (idempotent, or "different ...").
            existing = await self.store.get_topic(topic.arn)
            if existing is None:  # and deleted again meanwhile
                raise
            return existing
        return None

    async def _check_same_topic(
        self, existing: Topic, attrs: Mapping[str, str], tags: Mapping[str, str]
    ) -> None:
        """
        CreateTopic of an existing name: every supplied attribute and tag must
        equal the stored one; what is not supplied is not compared (SNS_API §7;
        tags: a subset of the stored ones is fine [AWS-validated by LocalStack's
        test_create_duplicate_topic_check_idempotency / _with_more_tags]).
        """
        if any(existing.attributes.get(k) != v for k, v in attrs.items()):
            raise InvalidParameterError(
                "Invalid parameter: Attributes Reason: Topic already exists with"
                " different attributes"
            )
        if not tags:
            return
        stored = await self.store.get_tags(existing.arn)
        if any(stored.get(k) != v for k, v in tags.items()):
            raise InvalidParameterError(
                "Invalid parameter: Tags Reason: Topic already exists with different"
                " tags"
            )

    async def delete_topic(self, arn: str | None) -> None:
        value = self.required(arn, "topicArn")
        self.own_arn(value, param="TopicArn", action="DeleteTopic")
        await self.store.delete_topic(value)  # idempotent, subscriptions too

    async def get_topic_attributes(self, arn: str | None) -> dict[str, str]:
        topic = await self.topic_or_404(
            arn, param="TopicArn", action="GetTopicAttributes"
        )
        counts = await self.store.subscription_counts(topic.arn)
        out = {
            "TopicArn": topic.arn,
            "Owner": self.account,
            "DisplayName": "",
            "Policy": _default_policy(topic.arn, self.account),
            "SubscriptionsConfirmed": str(counts["confirmed"]),
            "SubscriptionsPending": str(counts["pending"]),
            "SubscriptionsDeleted": str(counts["deleted"]),
            "EffectiveDeliveryPolicy": delivery_policy.effective_topic_policy(
                topic.attributes.get("DeliveryPolicy")
            ),
        }
        out.update(topic.attributes)
        return out

    async def set_topic_attributes(
        self, *, arn: str | None, name: str | None, value: str | None
    ) -> None:
        topic = await self.topic_or_404(
            arn, param="TopicArn", action="SetTopicAttributes"
        )
        key = self.required(name, "attributeName")
        await self._update_topic(topic, {key: value or ""})

    async def set_topic_attribute_map(
        self, *, arn: str | None, attributes: Mapping[str, str] | None
    ) -> None:
        """
        Several attributes at once (the JSON API; SNS takes one per call): every
        one is checked before the single write, so a refusal changes nothing.
        """
        if not attributes:
            raise missing_attributes()
        topic = await self.topic_or_404(
            arn, param="TopicArn", action="SetTopicAttributes"
        )
        await self._update_topic(topic, attributes)

    async def _update_topic(self, topic: Topic, attributes: Mapping[str, str]) -> None:
        attrs = _checked(attributes, TOPIC_ATTRIBUTES)
        _check_topic_attributes(attrs)
        await self.store.update_topic(
            dataclasses.replace(topic, attributes=_merged(topic.attributes, attrs))
        )

    async def list_topics(self, next_token: str | None) -> Listing[Topic]:
        after = self.decode_token(next_token, "topics")
        page = await self.store.list_topics(after=after, limit=PAGE_SIZE)
        return Listing(page.items, self.next_token("topics", page.next_after))

    async def topic_or_404(
        self, arn: str | None, *, param: str, action: str = "Publish"
    ) -> Topic:
        """
        The topic `arn` names. `action` is the IAM action a foreign account's ARN
        is refused for; the default serves publish.py, whose Publish and
        PublishBatch are both authorised as SNS:Publish.
        """
        value = self.required(arn, param[0].lower() + param[1:])
        self.own_arn(value, param=param, action=action)
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
        return_subscription_arn: bool | None = None,
    ) -> str:
        topic = await self.topic_or_404(topic_arn, param="TopicArn", action="Subscribe")
        proto = self.required(protocol, "protocol")
        if proto not in SNS_PROTOCOLS:
            raise InvalidParameterError(
                f"Invalid parameter: Amazon SNS does not support this protocol string:"
                f" {proto}"
            )
        if proto not in DELIVERED_PROTOCOLS:
            raise InvalidParameterError(
                f"Invalid parameter: Protocol Reason: pushgw delivers the application,"
                f" http and https protocols, not {proto}"
            )
        target = endpoint or ""
        if proto in HTTP_PROTOCOLS:
            self._check_subscriber_url(proto, target)
        elif (
            not arns.is_endpoint_arn(target)
            or await self.store.get_endpoint(target) is None
        ):
            raise InvalidParameterError(
                f"Invalid parameter: Endpoint Reason: Endpoint does not exist for"
                f" endpoint arn{target}"
            )
        attrs = _checked(attributes or {}, SUBSCRIPTION_ATTRIBUTES)
        _check_subscription_attributes(attrs, {}, proto, in_attributes=True)
        existing = await self.store.find_subscription(topic.arn, target)
        if existing is None:
            sub = Subscription(
                arn=self.arns.subscription(topic.arn),
                topic_arn=topic.arn,
                endpoint_arn=target,
                protocol=proto,
                attributes=(
                    {**attrs, "ConfirmationWasAuthenticated": "false"}
                    if proto in HTTP_PROTOCOLS
                    else attrs
                ),
                created_at=self.clock(),
                confirm_token=(
                    confirmation.new_secret() if proto in HTTP_PROTOCOLS else None
                ),
            )
            try:
                existing = await self.store.insert_subscription(sub)
            except ConflictError:  # subscribed meanwhile by another request
                found = await self.store.find_subscription(topic.arn, target)
                if found is None:
                    raise
                existing = found
            else:
                attrs = {}  # just made with them
        if any(existing.attributes.get(k) != v for k, v in attrs.items()):
            raise InvalidParameterError(
                "Invalid parameter: Attributes Reason: Subscription already exists with"
                " different attributes"
            )
        if not existing.pending:
            return existing.arn
        # New or still pending: (re)send the SubscriptionConfirmation, as SNS
        # does for a repeated Subscribe of an unconfirmed URL.
        await self._send_control(existing, SUBSCRIPTION_CONFIRMATION)
        return existing.arn if return_subscription_arn else PENDING_CONFIRMATION

    def _check_subscriber_url(self, protocol: str, url: str) -> None:
        if not url.lower().startswith(f"{protocol}://"):
            raise InvalidParameterError(
                "Invalid parameter: Endpoint must match the specified protocol"
            )
        refused = self.url_check(url)
        if refused is not None:
            raise InvalidParameterError(
                f"Invalid parameter: Endpoint Reason: {refused}"
            )

    async def _send_control(self, sub: Subscription, kind: str) -> None:
        """Queue a SubscriptionConfirmation or UnsubscribeConfirmation for `sub`
        (whose confirm_token is the secret of the document's SubscribeURL)."""
        message, job = confirmation.control_job(sub, kind, now=self.clock())
        await self.store.enqueue(message, [job])
        self.on_enqueue(message)

    async def confirm_subscription(
        self,
        *,
        topic_arn: str | None,
        token: str | None,
        authenticate_on_unsubscribe: str | None,
        authenticated: bool = True,
    ) -> str:
        topic = await self.topic_or_404(
            topic_arn, param="TopicArn", action="ConfirmSubscription"
        )
        value = self.required(token, "token")
        parsed = confirmation.parse_token(value, topic.arn)
        if parsed is None:
            raise InvalidParameterError("Invalid parameter: Token")
        arn, secret = parsed
        # Only a signed request may forbid unsigned unsubscribes (SNS).
        protect = authenticated and (authenticate_on_unsubscribe or "").lower() in (
            "true",
            "1",
        )
        sub = await self.store.get_subscription(arn)
        if sub is not None and not sub.pending:
            return sub.arn  # confirmed already (the link followed twice)
        if sub is None:
            sub = await self.store.get_deleted_subscription(arn)
            restoring = True
        else:
            restoring = False
        if (
            sub is None
            or sub.confirm_token is None
            or not confirmation.same_secret(sub.confirm_token, secret)
            or (not restoring and confirmation.expired(sub, now=self.clock()))
        ):
            raise InvalidParameterError("Invalid parameter: Token")
        confirmed = dataclasses.replace(
            sub,
            confirm_token=None,
            attributes={
                **sub.attributes,
                "ConfirmationWasAuthenticated": "true" if protect else "false",
            },
        )
        if restoring:
            try:
                await self.store.restore_subscription(confirmed)
            except ConflictError:
                raise InvalidParameterError(
                    "Invalid parameter: Token Reason: the endpoint is subscribed again"
                ) from None
        else:
            await self.store.update_subscription(confirmed)
        return confirmed.arn

    async def unsubscribe(self, arn: str | None, *, authenticated: bool = True) -> None:
        value = self._subscription_arn(arn, action="Unsubscribe")
        sub = await self.store.get_subscription(value)
        if sub is None:
            return  # idempotent
        if not authenticated and sub.attributes.get("ConfirmationWasAuthenticated") != (
            "false"
        ):
            raise AuthorizationError(
                "Unsubscribe of this subscription requires an AWS signature"
                " (AuthenticateOnUnsubscribe)"
            )
        notify = sub.is_http and not sub.pending
        secret = confirmation.new_secret() if notify else None
        gone = await self.store.delete_subscription(
            value, now=self.clock(), restore_token=secret
        )
        if gone is not None and notify:
            kept = dataclasses.replace(gone, confirm_token=secret)
            await self._send_control(kept, UNSUBSCRIBE_CONFIRMATION)

    async def list_subscriptions(self, next_token: str | None) -> Listing[Subscription]:
        after = self.decode_token(next_token, "subs")
        page = await self.store.list_subscriptions(
            topic_arn=None, after=after, limit=PAGE_SIZE
        )
        return Listing(page.items, self.next_token("subs", page.next_after))

    async def list_subscriptions_by_topic(
        self, topic_arn: str | None, next_token: str | None
    ) -> Listing[Subscription]:
        topic = await self.topic_or_404(
            topic_arn, param="TopicArn", action="ListSubscriptionsByTopic"
        )
        after = self.decode_token(next_token, "subs")
        page = await self.store.list_subscriptions(
            topic_arn=topic.arn, after=after, limit=PAGE_SIZE
        )
        return Listing(page.items, self.next_token("subs", page.next_after))

    async def get_subscription_attributes(self, arn: str | None) -> dict[str, str]:
        sub = await self._subscription_or_404(arn, action="GetSubscriptionAttributes")
        out = {
            "SubscriptionArn": sub.arn,
            "TopicArn": sub.topic_arn,
            "Owner": self.account,
            "Protocol": sub.protocol,
            "Endpoint": sub.endpoint_arn,
            "ConfirmationWasAuthenticated": "true",
            "PendingConfirmation": "true" if sub.pending else "false",
            "RawMessageDelivery": "false",
            "SubscriptionPrincipal": self.arns.root,
        }
        out.update(sub.attributes)
        if sub.is_http:
            topic = await self.store.get_topic(sub.topic_arn)
            out["EffectiveDeliveryPolicy"] = (
                delivery_policy.effective_subscription_policy(
                    topic.attributes.get("DeliveryPolicy") if topic else None,
                    sub.attributes.get("DeliveryPolicy"),
                )
            )
        return out

    async def set_subscription_attributes(
        self, *, arn: str | None, name: str | None, value: str | None
    ) -> None:
        sub = await self._subscription_or_404(arn, action="SetSubscriptionAttributes")
        key = self.required(name, "attributeName")
        await self._update_subscription(sub, {key: value or ""})

    async def set_subscription_attribute_map(
        self, *, arn: str | None, attributes: Mapping[str, str] | None
    ) -> None:
        """Several attributes at once, all checked before the single write."""
        if not attributes:
            raise missing_attributes()
        sub = await self._subscription_or_404(arn, action="SetSubscriptionAttributes")
        await self._update_subscription(sub, attributes)

    async def _update_subscription(
        self, sub: Subscription, attributes: Mapping[str, str]
    ) -> None:
        attrs = _checked(attributes, SUBSCRIPTION_ATTRIBUTES)
        _check_subscription_attributes(attrs, sub.attributes, sub.protocol)
        await self.store.update_subscription(
            dataclasses.replace(sub, attributes=_merged(sub.attributes, attrs))
        )

    async def _subscription_or_404(
        self, arn: str | None, *, action: str
    ) -> Subscription:
        sub = await self.store.get_subscription(
            self._subscription_arn(arn, action=action)
        )
        if sub is None:
            raise NotFoundApiError("Subscription does not exist")
        return sub

    def _subscription_arn(self, arn: str | None, *, action: str) -> str:
        value = self.required(arn, "subscriptionArn")
        parsed = arns.parse(value, param="SubscriptionArn")
        # The id check comes first: AWS answers it for another account's ARN
        # (`arn:aws:sns:us-east-1:111111111111:random`, SNS_API §7).
        if ":" not in parsed.resource:
            raise InvalidParameterError("Invalid parameter: SubscriptionId")
        self.own_arn(value, param="SubscriptionArn", action=action)
        return value

    # -- tags (topics only, as in SNS) -----------------------------------------
    async def tag_resource(
        self, arn: str | None, tags: Mapping[str, str] | None
    ) -> None:
        value = await self._taggable(arn, action="TagResource")
        if not tags:
            raise InvalidParameterError(
                "Invalid parameter: Tags Reason: cannot be empty"
            )
        _check_tags(tags)
        current = await self.store.get_tags(value)
        if len(current.keys() | tags.keys()) > MAX_TAGS:
            raise TagLimitExceededError()
        await self.store.set_tags(value, tags)

    async def untag_resource(self, arn: str | None, keys: Sequence[str] | None) -> None:
        value = await self._taggable(arn, action="UntagResource")
        await self.store.remove_tags(value, list(keys or []))

    async def list_tags_for_resource(self, arn: str | None) -> dict[str, str]:
        return await self.store.get_tags(
            await self._taggable(arn, action="ListTagsForResource")
        )

    async def _taggable(self, arn: str | None, *, action: str) -> str:
        value = self.required(arn, "resourceArn")
        self.own_arn(value, param="ResourceArn", action=action)
        if await self.store.get_topic(value) is None:
            raise ResourceNotFoundError()
        return value


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidParameterError(
                "Invalid parameter: Tags Reason: tag keys must be 1-128 characters"
                " and values at most 256"
            )


def _checked(attributes: Mapping[str, str], allowed: frozenset[str]) -> dict[str, str]:
    for key in attributes:
        if key not in allowed:
            raise InvalidParameterError(
                f"Invalid parameter: AttributeName Reason: Unknown attribute {key}"
            )
    return dict(attributes)


def _check_topic_attributes(
    attrs: dict[str, str], *, in_attributes: bool = False
) -> None:
    """Check topic attributes being set; a DeliveryPolicy is stored in the form
    SNS stores (and returns). `in_attributes`: they came as CreateTopic's
    `Attributes`, whose errors SNS words differently."""
    version = attrs.get("SignatureVersion")
    if version is not None and version not in ("1", "2"):
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: SignatureVersion: Invalid value"
            f" [{version}]. Must be 1 or 2"
        )
    if attrs.get("DeliveryPolicy"):
        attrs["DeliveryPolicy"] = _delivery_policy(
            delivery_policy.normalize_topic_policy,
            attrs["DeliveryPolicy"],
            in_attributes=in_attributes,
        )


def _delivery_policy(
    normalize: Callable[[str], str], text: str, *, in_attributes: bool
) -> str:
    try:
        return normalize(text)
    except ValueError as exc:
        where = (
            "Attributes Reason: DeliveryPolicy" if in_attributes else "DeliveryPolicy"
        )
        raise InvalidParameterError(f"Invalid parameter: {where}: {exc}") from None


def _merged(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """Attributes after a Set*Attributes: an empty DeliveryPolicy removes it."""
    merged = {**current, **changes}
    if merged.get("DeliveryPolicy") == "":
        del merged["DeliveryPolicy"]
    return merged


def _check_subscription_attributes(
    attrs: dict[str, str],
    current: Mapping[str, str],
    protocol: str,
    *,
    in_attributes: bool = False,
) -> None:
    """The attributes being set, checked against what the subscription will
    hold afterwards (a new FilterPolicyScope re-checks the stored policy); a
    DeliveryPolicy is stored in the form SNS stores."""
    _check_filter_policy(attrs, current=current)
    raw = attrs.get("RawMessageDelivery")
    if raw is not None and raw.lower() not in ("true", "false"):
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value"
            f" [{raw}]. Must be true or false."
        )
    if attrs.get("DeliveryPolicy"):
        if protocol not in HTTP_PROTOCOLS:
            raise InvalidParameterError(
                "Invalid parameter: DeliveryPolicy: only http and https subscriptions"
                " have a delivery policy"
            )
        attrs["DeliveryPolicy"] = _delivery_policy(
            delivery_policy.normalize_subscription_policy,
            attrs["DeliveryPolicy"],
            in_attributes=in_attributes,
        )


def _check_filter_policy(
    changes: Mapping[str, str], *, current: Mapping[str, str]
) -> None:
    """
    Check FilterPolicyScope and FilterPolicy as they will be after `changes`:
    a policy is checked against the scope it will be matched in, whether the
    policy, the scope or both change (a nested policy cannot move to the
    MessageAttributes scope).
    """
    from pushgw.sns import filters

    if "FilterPolicyScope" in changes:
        try:
            filters.check_scope(changes["FilterPolicyScope"])
        except ValueError as exc:
            raise InvalidParameterError(
                f"Invalid parameter: FilterPolicyScope: {exc}"
            ) from None
    if "FilterPolicy" not in changes and "FilterPolicyScope" not in changes:
        return
    after = {**current, **changes}
    policy = after.get("FilterPolicy")
    if not policy:
        return  # no policy, or "" to remove it
    try:
        filters.parse_filter_policy(policy, scope=filters.scope_of(after))
    except filters.ScopeError as exc:  # AWS words this one without "FilterPolicy:"
        raise InvalidParameterError(f"Invalid parameter: {exc}") from None
    except ValueError as exc:
        raise InvalidParameterError(f"Invalid parameter: FilterPolicy: {exc}") from None


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
