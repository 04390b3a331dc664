"""Subscription filter policies on message attributes (pushgw/delivery/filters.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgw.model import MessageAttribute
from pushgw.sns.filters import matches, parse_filter_policy


def s(value: str) -> MessageAttribute:
    return MessageAttribute("String", string_value=value)


def n(value: str) -> MessageAttribute:
    return MessageAttribute("Number", string_value=value)


def arr(values: list[Any]) -> MessageAttribute:
    return MessageAttribute("String.Array", string_value=json.dumps(values))


def check(policy: dict[str, Any], attributes: dict[str, MessageAttribute]) -> bool:
    return matches(parse_filter_policy(json.dumps(policy)), attributes)


@pytest.mark.parametrize(
    ("policy", "attributes", "expected"),
    [
        ({"color": ["red"]}, {"color": s("red")}, True),
        ({"color": ["red"]}, {"color": s("Red")}, False),
        ({"color": ["red", "blue"]}, {"color": s("blue")}, True),
        ({"color": ["red"]}, {}, False),
        ({"color": [{"prefix": "re"}]}, {"color": s("red")}, True),
        ({"color": [{"prefix": "re"}]}, {"color": s("ore")}, False),
        ({"file": [{"suffix": ".png"}]}, {"file": s("a.png")}, True),
        ({"file": [{"suffix": ".png"}]}, {"file": s("a.png.gz")}, False),
        ({"c": [{"equals-ignore-case": "RED"}]}, {"c": s("red")}, True),
        ({"c": [{"anything-but": "red"}]}, {"c": s("blue")}, True),
        ({"c": [{"anything-but": "red"}]}, {"c": s("red")}, False),
        ({"c": [{"anything-but": ["red", "blue"]}]}, {"c": s("blue")}, False),
        ({"c": [{"anything-but": ["red", "blue"]}]}, {"c": s("green")}, True),
        ({"c": [{"anything-but": {"prefix": "re"}}]}, {"c": s("red")}, False),
        ({"c": [{"anything-but": {"prefix": "re"}}]}, {"c": s("blue")}, True),
        ({"c": [{"anything-but": "red"}]}, {}, False),
        ({"p": [100]}, {"p": n("100")}, True),
        ({"p": [100]}, {"p": n("100.0")}, True),
        ({"p": [100]}, {"p": s("100")}, False),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("10")}, True),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("0")}, False),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("10.5")}, False),
        ({"p": [{"numeric": [">=", 5]}]}, {"p": n("5")}, True),
        ({"p": [{"numeric": ["<", 5]}]}, {"p": n("5")}, False),
        ({"p": [{"numeric": ["=", 3.5]}]}, {"p": n("3.5")}, True),
        ({"p": [{"numeric": [">", 1]}]}, {"p": s("5")}, False),
        ({"p": [{"numeric": [">", 1]}]}, {"p": n("abc")}, False),
        ({"k": [{"exists": True}]}, {"k": s("x")}, True),
        ({"k": [{"exists": True}]}, {}, False),
        ({"k": [{"exists": False}]}, {}, True),
        ({"k": [{"exists": False}]}, {"k": s("x")}, False),
        ({"tags": ["b"]}, {"tags": arr(["a", "b"])}, True),
        ({"tags": ["c"]}, {"tags": arr(["a", "b"])}, False),
        ({"tags": [{"prefix": "x"}]}, {"tags": arr(["a", "xy"])}, True),
        ({"tags": [3]}, {"tags": arr([1, 3])}, True),
        (
            {"tags": ["a"]},
            {"tags": MessageAttribute("String.Array", "not json")},
            False,
        ),
        ({"b": ["x"]}, {"b": MessageAttribute("Binary", binary_value=b"x")}, False),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red"), "size": s("L")}, True),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red"), "size": s("M")}, False),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red")}, False),
    ],
)
def test_matches(
    policy: dict[str, Any], attributes: dict[str, MessageAttribute], expected: bool
) -> None:
    """Each condition kind matches and fails as SNS's filter policies do."""
    assert expected == check(policy, attributes)


def test_parse_returns_policy() -> None:
    """A valid policy parses to its key → conditions mapping."""
    text = json.dumps({"a": ["x", {"prefix": "y"}], "b": [{"numeric": [">", 1]}]})
    expected = {"a": ["x", {"prefix": "y"}], "b": [{"numeric": [">", 1]}]}
    assert expected == parse_filter_policy(text)


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        "{}",
        '"a"',
        json.dumps({"a": "x"}),
        json.dumps({"a": []}),
        json.dumps({"a": [["x"]]}),
        json.dumps({"a": [{"prefix": 1}]}),
        json.dumps({"a": [{"prefix": "x", "suffix": "y"}]}),
        json.dumps({"a": [{"exists": "yes"}]}),
        json.dumps({"a": [{"numeric": [">"]}]}),
        json.dumps({"a": [{"numeric": ["~", 1]}]}),
        json.dumps({"a": [{"numeric": [">", "1"]}]}),
        json.dumps({"a": [{"numeric": [">", 1, "<"]}]}),
        json.dumps({"a": [{"wildcard": "x*"}]}),
    ],
)
def test_invalid_policies_raise(text: str) -> None:
    """Malformed JSON, empty policies and unknown or ill-typed operators are refused."""
    with pytest.raises(ValueError, match=r"."):
        parse_filter_policy(text)


@pytest.mark.parametrize(
    "condition",
    [{"anything-but": {}}, {"anything-but": {"prefix": 5}}],
)
def test_invalid_anything_but_is_refused(condition: dict[str, Any]) -> None:
    """An `anything-but` with a malformed argument is refused at parse time."""
    with pytest.raises(ValueError, match=r"."):
        parse_filter_policy(json.dumps({"a": [condition]}))
