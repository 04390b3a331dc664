"""
The one table of operations against botocore's SNS model and the Service: every
member, kind, required-ness and output is the model's, and every call binds.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape as ModelShape

from pushgw.api.operations import OPERATIONS, TABLE
from pushgw.api.shapes import (
    Binding,
    Field,
    Kind,
    Operation,
    Param,
    Where,
    camel_case,
    keywords,
    snake_case,
)
from pushgw.service import Service

MODEL = botocore.session.get_session().get_service_model("sns")
# Model members pushgw does not take or give, and why.
NOT_TAKEN = {
    ("CreateTopic", "DataProtectionPolicy"),  # not supported: ignored as before
}
NOT_GIVEN = {
    "SequenceNumber",  # FIFO topics only; pushgw has none
}
IDS = [op.name for op in TABLE]


def model_kind(shape: ModelShape) -> Kind:
    if shape.type_name == "map":
        value = shape.value
        return Kind.MAP if value.type_name == "string" else Kind.MESSAGE_ATTRIBUTES
    if shape.type_name == "list":
        member = shape.member
        if member.type_name == "string":
            return Kind.STRINGS
        return Kind.TAGS if member.name == "Tag" else Kind.LIST
    return Kind.BOOLEAN if shape.type_name == "boolean" else Kind.STRING


def check_params(action: str, params: tuple[Param, ...], shape: ModelShape) -> None:
    members = shape.members
    required = set(shape.required_members)
    expected = {
        name: (model_kind(s), name in required)
        for name, s in members.items()
        if (action, name) not in NOT_TAKEN
    }
    assert expected == {p.name: (p.kind, p.required) for p in params if p.sns}
    for param in params:
        if param.members is not None:
            item = members[param.name].member
            check_params(action, param.members.params, item)


def check_fields(fields: tuple[Field, ...], shape: ModelShape) -> None:
    members = shape.members
    expected = {n: model_kind(s) for n, s in members.items() if n not in NOT_GIVEN}
    assert expected == {f.name: f.kind for f in fields if f.sns}
    for field in fields:
        if field.item is not None:
            check_fields(field.item.fields, members[field.name].member)


@pytest.mark.parametrize("op", TABLE, ids=IDS)
def test_members_are_the_models(op: Operation) -> None:
    """The SNS members, kinds and required-ness are botocore's, in and out."""
    model = MODEL.operation_model(op.name)

    check_params(op.name, op.params, model.input_shape)
    if op.output is None:
        assert model.output_shape is None
    else:
        check_fields(op.output, model.output_shape)


def binds(target: Callable[..., Any], params: tuple[Param, ...], *self: Any) -> None:
    """`target` takes exactly the keywords the binding would pass."""
    values: dict[str, Any] = {p.name: [] if p.members else None for p in params}
    inspect.signature(target).bind(*self, **keywords(params, values))
    for param in params:
        if param.members is not None:
            binds(param.members.build, param.members.params)


@pytest.mark.parametrize("binding", list(Binding))
@pytest.mark.parametrize("op", TABLE, ids=IDS)
def test_calls_bind_to_the_service(op: Operation, binding: Binding) -> None:
    """Each binding's keywords fit the Service method (or the input it packs)."""
    params = op.params_for(binding)
    method = getattr(Service, op.method_for(binding))
    if op.packs is None:
        binds(method, params, None)
    else:
        binds(op.packs, params)
        inspect.signature(method).bind(None, None)


@pytest.mark.parametrize("op", TABLE, ids=IDS)
def test_json_binding_is_consistent(op: Operation) -> None:
    """Path placeholders are the PATH members; 204 exactly when nothing is returned."""
    params = op.params_for(Binding.JSON)
    placeholders = set(re.findall(r"\{(\w+)\}", op.http.path))
    json_fields = [f for f in op.output or ()]

    assert {p.json_key for p in params if p.json is Where.PATH} == placeholders
    assert (204 == op.http.status) == (not json_fields)
    assert op.http.method in ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_table_is_keyed_by_action() -> None:
    """Each action is in the table once."""
    assert len(TABLE) == len(OPERATIONS)


@pytest.mark.parametrize(
    ("name", "snake", "camel"),
    [
        (
            "PlatformApplicationArn",
            "platform_application_arn",
            "platformApplicationArn",
        ),
        (
            "MessageDeduplicationId",
            "message_deduplication_id",
            "messageDeduplicationId",
        ),
        ("Id", "id", "id"),
    ],
)
def test_name_cases(name: str, snake: str, camel: str) -> None:
    """Member names become Service keywords and JSON names by rule."""
    assert (snake, camel) == (snake_case(name), camel_case(name))
