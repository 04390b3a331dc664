"""Inputs and outputs of the service layer, shared by both API encodings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """One page of a List* action; `next_token` is opaque, None at the end."""

    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class MessageAttributeInput:
    """A message attribute as the client sent it (not yet validated)."""

    data_type: str | None
    string_value: str | None = None
    binary_value: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishInput:
    message: str | None
    topic_arn: str | None = None
    target_arn: str | None = None
    phone_number: str | None = None
    subject: str | None = None
    message_structure: str | None = None
    message_attributes: Mapping[str, MessageAttributeInput] = field(
        default_factory=dict
    )
    message_group_id: str | None = None
    message_deduplication_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchEntry:
    id: str | None
    message: str | None
    subject: str | None = None
    message_structure: str | None = None
    message_attributes: Mapping[str, MessageAttributeInput] = field(
        default_factory=dict
    )
    message_group_id: str | None = None
    message_deduplication_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchSuccess:
    id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class BatchFailure:
    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class BatchResult:
    successful: list[BatchSuccess]
    failed: list[BatchFailure]
