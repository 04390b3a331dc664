"""Publish and PublishBatch (SNS_API §6), validated in SNS's order (§6.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pushgw import arn as arns
from pushgw import payload, safejson
from pushgw.errors import (
    ApiError,
    BatchError,
    EndpointDisabledError,
    InvalidParameterError,
    PlatformAppDisabledError,
)
from pushgw.model import PAYLOAD_LIMITS, Message, MessageAttribute, Platform
from pushgw.service.message_attributes import validate_attributes
from pushgw.service.topics import TopicsMixin
from pushgw.service.types import (
    BatchEntry,
    BatchFailure,
    BatchResult,
    BatchSuccess,
    PublishInput,
)
from pushgw.store.base import EndpointTarget, NewJob

MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_ENTRIES = 10
BATCH_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Platform keys whose value SNS parses as a JSON object when it accepts the publish
# (SNS_API §6.3); WNS and MPNS values are XML or raw text and pass through as is.
JSON_PLATFORMS = frozenset(Platform) - {Platform.WNS, Platform.MPNS}


@dataclass(frozen=True, slots=True)
class _Target:
    kind: Literal["topic", "endpoint"]
    arn: str
    platform: Platform | None = None


class PublishMixin(TopicsMixin):
    async def publish(self, req: PublishInput) -> str:
        message = await self._validated_message(req)
        target = await self._resolve_target(req)
        if target.kind == "endpoint":
            await self._enqueue_endpoint(message, target.arn)
        else:
            self._check_structure(message, target)
            await self._enqueue(message, target)
        return message.id

    async def publish_batch(
        self, *, topic_arn: str | None, entries: Sequence[BatchEntry]
    ) -> BatchResult:
        topic = await self.topic_or_404(topic_arn, param="TopicArn")
        _check_batch(entries)
        successful: list[BatchSuccess] = []
        failed: list[BatchFailure] = []
        for entry in entries:
            entry_id = entry.id or ""
            req = PublishInput(
                message=entry.message,
                topic_arn=topic.arn,
                subject=entry.subject,
                message_structure=entry.message_structure,
                message_attributes=entry.message_attributes,
            )
            try:
                message = await self._validated_message(req)
                target = _Target("topic", topic.arn)
                self._check_structure(message, target)
                await self._enqueue(message, target)
            except ApiError as exc:
                failed.append(
                    BatchFailure(entry_id, exc.code, exc.message, exc.sender_fault)
                )
            else:
                successful.append(BatchSuccess(entry_id, message.id))
        return BatchResult(successful, failed)

    # -- validation steps ------------------------------------------------------
    async def _validated_message(self, req: PublishInput) -> Message:
        if req.subject is not None and (
            req.subject == ""
            or len(req.subject) >= 100
            or CONTROL_CHARS.search(req.subject)
        ):
            raise InvalidParameterError("Invalid parameter: Subject")
        if not req.message:
            raise InvalidParameterError("Invalid parameter: Empty message")
        attributes = validate_attributes(req.message_attributes)
        if message_size(req.message, attributes) > MAX_MESSAGE_BYTES:
            raise InvalidParameterError("Invalid parameter: Message too long")
        structure = req.message_structure
        if structure not in (None, "json"):
            raise InvalidParameterError(
                "Invalid parameter: MessageStructure Reason: must be json"
            )
        if req.message_group_id is not None or req.message_deduplication_id is not None:
            raise InvalidParameterError(
                "Invalid parameter: The request includes MessageGroupId parameter that"
                " is not valid for this topic type"
            )
        return Message(
            id=arns.new_id(),
            body=req.message,
            structure="json" if structure == "json" else None,
            subject=req.subject,
            attributes=attributes,
            topic_arn=req.topic_arn,
            target_arn=req.target_arn,
            created_at=self.clock(),
        )

    async def _resolve_target(self, req: PublishInput) -> _Target:
        given = [v for v in (req.topic_arn, req.target_arn, req.phone_number) if v]
        if not given:
            raise InvalidParameterError(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required"
                " parameter"
            )
        if len(given) > 1:
            raise InvalidParameterError(
                "Invalid parameter: TopicArn or TargetArn Reason: Only one of TopicArn,"
                " TargetArn or PhoneNumber may be specified"
            )
        if req.phone_number:
            raise InvalidParameterError(
                "Invalid parameter: PhoneNumber Reason: pushgw does not send SMS"
            )
        if req.topic_arn:
            topic = await self.topic_or_404(req.topic_arn, param="TopicArn")
            return _Target("topic", topic.arn)
        target = req.target_arn or ""
        parsed = arns.parse(target, param="TargetArn")
        if not parsed.resource.startswith("endpoint/"):
            topic = await self.topic_or_404(target, param="TargetArn")
            return _Target("topic", topic.arn)
        # Checked by _enqueue_endpoint, in the transaction that stores it.
        return _Target("endpoint", target)

    async def _enqueue_endpoint(self, message: Message, arn: str) -> None:
        """
        Check the endpoint and its app, then the payload for its platform, and
        store the message, in one store transaction (the checks in SNS's order,
        as `_resolve_target` then `_check_structure`). The local dispatcher,
        if it has room, gets the job leased and runs it from memory.
        """

        def check(found: EndpointTarget | None) -> None:
            platform = _endpoint_platform(found)
            self._check_structure(message, _Target("endpoint", arn, platform))

        delivery = self.delivery
        claim = delivery.reserve() if delivery is not None else None
        try:
            enqueued = await self.store.enqueue_endpoint(
                message, arn, check=check, claim=claim
            )
        except BaseException:
            # Refused or failed: nothing stored. (Cancelled after the commit,
            # at shutdown: the dispatcher's stop releases the lease.)
            if delivery is not None and claim is not None:
                delivery.unreserve()
            raise
        if delivery is not None and claim is not None:
            delivery.run_claimed(message, enqueued)
        else:
            self.on_enqueue(message)

    def _check_structure(self, message: Message, target: _Target) -> None:
        if message.structure != "json":
            if target.platform is not None:
                _check_platform_size(message.body, target.platform)
            return
        data = payload.parse_structure(message.body)
        if data is None:
            raise InvalidParameterError(
                "Invalid parameter: Message Structure - JSON message body failed to parse"
            )
        if target.platform is None:
            if not isinstance(data.get("default"), str):
                raise InvalidParameterError(
                    "Invalid parameter: Message Structure - No default entry in JSON"
                    " message body"
                )
            _check_topic_payloads(data)
            return
        selected = payload.select(message, target.platform)
        if selected is None:
            raise InvalidParameterError(
                f"Invalid parameter: JSON must contain an entry for 'default' or"
                f" '{target.platform.value}'."
            )
        body, native = selected
        if native and target.platform in JSON_PLATFORMS:
            _check_native_json(body, target.platform)
        _check_platform_size(body, target.platform)

    async def _enqueue(self, message: Message, target: _Target) -> None:
        if target.kind == "topic":
            job = NewJob(kind="topic", topic_arn=target.arn)
        else:
            job = NewJob(kind="endpoint", endpoint_arn=target.arn)
        await self.store.enqueue(message, [job])
        self.on_enqueue(message)


def _endpoint_platform(found: EndpointTarget | None) -> Platform:
    """The platform to publish to, or why a publish to this endpoint is refused."""
    if found is None or found.platform is None:
        raise InvalidParameterError(
            "Invalid parameter: TargetArn Reason: No endpoint found for the target arn"
            " specified"
        )
    if not found.app_enabled:
        raise PlatformAppDisabledError("Platform application is disabled")
    if not found.endpoint.enabled:
        raise EndpointDisabledError("Endpoint is disabled")
    return found.platform


def message_size(body: str, attributes: dict[str, MessageAttribute]) -> int:
    """Bytes counted against the 256 KiB limit: body plus every attribute."""
    return len(body.encode()) + sum(a.size(n) for n, a in attributes.items())


def _check_topic_payloads(data: Mapping[str, Any]) -> None:
    """A topic may reach any platform: every payload present must be usable."""
    for key, value in data.items():
        if key in JSON_PLATFORMS and isinstance(value, str):
            _check_native_json(value, Platform(key))


def _check_native_json(body: str, platform: Platform) -> None:
    """
    Refuse a platform payload that is not a JSON object now, as SNS does, rather
    than accept it and fail in the background; the depth limit also keeps the
    adapters' own `json.loads` of it from running out of stack.
    """
    try:
        ok = isinstance(safejson.loads(body), dict)
    except safejson.JsonInputError:
        ok = False
    if not ok:
        # The "Invalid parameter: Message Reason: Invalid notification for protocol
        # {PLATFORM}: ..." form is SNS's, seen for its per-protocol size refusal
        # ("...: Notification is too long", matched by wireapp/wire-server
        # services/gundeck/src/Gundeck/Aws.hs); the "Notification is malformed"
        # reason for a payload that is not a JSON object is [SPEC]: no capture of
        # SNS's own text was found.
        raise InvalidParameterError(
            "Invalid parameter: Message Reason: Invalid notification for protocol"
            f" {platform.value}: Notification is malformed"
        )


def _check_platform_size(body: str, platform: Platform) -> None:
    if len(body.encode()) > PAYLOAD_LIMITS[platform]:
        raise InvalidParameterError(
            f"Invalid parameter: Message Reason: Message too long for {platform.value}"
        )


def _check_batch(entries: Sequence[BatchEntry]) -> None:
    if not entries:
        raise BatchError(
            "The batch request doesn't contain any entries.", code="EmptyBatchRequest"
        )
    if len(entries) > MAX_BATCH_ENTRIES:
        raise BatchError(
            "The batch request contains more entries than permissible.",
            code="TooManyEntriesInBatchRequest",
        )
    ids = [e.id or "" for e in entries]
    if len(set(ids)) != len(ids):
        raise BatchError(
            "Two or more batch entries in the request have the same Id.",
            code="BatchEntryIdsNotDistinct",
        )
    for entry_id in ids:
        if len(entry_id) > 80:
            raise BatchError(
                f"The Id of a batch entry in the batch request is too long: {entry_id}",
                code="InvalidBatchEntryId",
            )
        if not BATCH_ID.match(entry_id):
            raise BatchError(
                "The Id of a batch entry in the batch request contains an"
                f" impermissible character: {entry_id}",
                code="InvalidBatchEntryId",
            )
    total = sum(
        message_size(e.message or "", {})
        + sum(
            len(n.encode())
            + len((a.data_type or "").encode())
            + len(a.binary_value or (a.string_value or "").encode())
            for n, a in e.message_attributes.items()
        )
        for e in entries
    )
    if total > MAX_MESSAGE_BYTES:
        raise BatchError(
            "The length of all the messages put together is more than the limit.",
            code="BatchRequestTooLong",
        )
