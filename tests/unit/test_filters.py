"""Subscription filter policies (pushgw/sns/filters.py, pushgw/sns/filter_values.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgw.model import Message, MessageAttribute
from pushgw.sns.filters import (
    MESSAGE_ATTRIBUTES,
    MESSAGE_BODY,
    ParsedBody,
    ScopeError,
    check_scope,
    matches,
    message_body,
    message_matches,
    parse_filter_policy,
    scope_of,
)


def s(value: str) -> MessageAttribute:
    return MessageAttribute("String", string_value=value)


def n(value: str) -> MessageAttribute:
    return MessageAttribute("Number", string_value=value)


def arr(values: list[Any]) -> MessageAttribute:
    return MessageAttribute("String.Array", string_value=json.dumps(values))


def check(policy: dict[str, Any], attributes: dict[str, MessageAttribute]) -> bool:
    return matches(parse_filter_policy(json.dumps(policy)), attributes)


def check_body(policy: dict[str, Any], body: Any) -> bool:
    text = body if isinstance(body, str) else json.dumps(body)
    compiled = parse_filter_policy(json.dumps(policy), scope=MESSAGE_BODY)
    return message_matches(compiled, {}, text)


def refusal(policy: Any, scope: str = MESSAGE_ATTRIBUTES) -> str:
    text = policy if isinstance(policy, str) else json.dumps(policy)
    with pytest.raises(ValueError) as info:
        parse_filter_policy(text, scope=scope)
    return str(info.value)


# -- MessageAttributes scope ---------------------------------------------------


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
        ({"c": [{"equals-ignore-case": "RED"}]}, {"c": s("reds")}, False),
        ({"c": [{"anything-but": "red"}]}, {"c": s("blue")}, True),
        ({"c": [{"anything-but": "red"}]}, {"c": s("red")}, False),
        ({"c": [{"anything-but": ["red", "blue"]}]}, {"c": s("blue")}, False),
        ({"c": [{"anything-but": ["red", "blue"]}]}, {"c": s("green")}, True),
        ({"c": [{"anything-but": {"prefix": "re"}}]}, {"c": s("red")}, False),
        ({"c": [{"anything-but": {"prefix": "re"}}]}, {"c": s("blue")}, True),
        ({"c": [{"anything-but": {"wildcard": "r*d"}}]}, {"c": s("red")}, False),
        ({"c": [{"anything-but": {"wildcard": "r*d"}}]}, {"c": s("rex")}, True),
        ({"c": [{"anything-but": "red"}]}, {}, False),
        ({"c": [{"anything-but": "red"}]}, {"x": s("1")}, False),
        ({"p": [{"anything-but": [100, 200]}]}, {"p": n("100.0")}, False),
        ({"p": [{"anything-but": [100, 200]}]}, {"p": n("150")}, True),
        ({"p": [100]}, {"p": n("100")}, True),
        ({"p": [100]}, {"p": n("100.0")}, True),
        ({"p": [100]}, {"p": n("1e2")}, True),
        ({"p": [100]}, {"p": s("100")}, False),
        ({"p": ["100"]}, {"p": n("100")}, False),
        ({"p": [0.3]}, {"p": n("0.30000000001")}, True),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("10")}, True),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("0")}, False),
        ({"p": [{"numeric": [">", 0, "<=", 10]}]}, {"p": n("10.5")}, False),
        ({"p": [{"numeric": [">=", 5]}]}, {"p": n("5")}, True),
        ({"p": [{"numeric": ["<", 5]}]}, {"p": n("5")}, False),
        ({"p": [{"numeric": ["=", 3.5]}]}, {"p": n("3.5")}, True),
        ({"p": [{"numeric": [">", 1]}]}, {"p": s("5")}, False),
        ({"p": [{"numeric": [">", 1]}]}, {"p": n("abc")}, False),
        ({"p": [{"numeric": [">", 1]}]}, {"p": arr([0, 2])}, True),
        ({"k": [{"exists": True}]}, {"k": s("x")}, True),
        ({"k": [{"exists": True}]}, {"k": n("0")}, True),
        ({"k": [{"exists": True}]}, {"o": s("x")}, False),
        ({"k": [{"exists": True}]}, {}, False),
        ({"k": [{"exists": False}]}, {"o": s("x")}, True),
        # AWS: "An empty set of attributes results in the filter not matching"
        ({"k": [{"exists": False}]}, {}, False),
        ({"k": [{"exists": False}]}, {"k": s("x")}, False),
        ({"k": [{"exists": False}, "x"]}, {"k": s("x")}, True),
        ({"k": [{"exists": False}, "x"]}, {"k": s("y")}, False),
        ({"tags": ["b"]}, {"tags": arr(["a", "b"])}, True),
        ({"tags": ["c"]}, {"tags": arr(["a", "b"])}, False),
        ({"tags": [{"prefix": "x"}]}, {"tags": arr(["a", "xy"])}, True),
        ({"tags": [3]}, {"tags": arr([1, 3])}, True),
        ({"tags": [None]}, {"tags": arr(["a", None])}, True),
        ({"tags": [None]}, {"o": s("x")}, False),
        ({"tags": [{"exists": True}]}, {"tags": arr([])}, False),
        ({"tags": [{"exists": False}]}, {"tags": arr([]), "o": s("x")}, True),
        ({"tags": [{"anything-but": ["a"]}]}, {"tags": arr(["a", "b"])}, True),
        ({"tags": [{"anything-but": ["a"]}]}, {"tags": arr(["a"])}, False),
        (
            {"tags": ["a"]},
            {"tags": MessageAttribute("String.Array", "not json")},
            False,
        ),
        ({"b": ["x"]}, {"b": MessageAttribute("Binary", binary_value=b"x")}, False),
        (
            {"b": [{"exists": True}]},
            {"b": MessageAttribute("Binary", binary_value=b"x")},
            False,
        ),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red"), "size": s("L")}, True),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red"), "size": s("M")}, False),
        ({"c": ["red"], "size": ["L"]}, {"c": s("red")}, False),
        ({"a.b": ["x"]}, {"a.b": s("x")}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": s("10.0.0.255")}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": s("10.0.1.0")}, False),
        ({"ip": [{"wildcard": "10.0.*"}]}, {"ip": s("10.0.7.1")}, True),
    ],
)
def test_matches(
    policy: dict[str, Any], attributes: dict[str, MessageAttribute], expected: bool
) -> None:
    """Each condition kind matches and fails as SNS's filter policies do."""
    assert expected == check(policy, attributes)


@pytest.mark.parametrize(
    ("policy", "attribute", "expected"),
    [
        ([True], arr([True]), True),
        ([True], arr([1]), False),
        ([True], n("1"), False),
        ([True], s("true"), False),
        ([False], arr([0]), False),
        ([False], n("0"), False),
        ([False], arr([False]), True),
        ([1], arr([True]), False),
        ([0], arr([False]), False),
        ([1], arr([1.0]), True),
        ([{"numeric": [">=", 1]}], arr([True]), False),
        ([{"anything-but": [1]}], arr([True]), False),
        ([{"anything-but": [0]}], arr([False]), False),
        ([{"exists": True}], arr([False]), True),
    ],
)
def test_booleans_are_not_numbers(
    policy: list[Any], attribute: MessageAttribute, expected: bool
) -> None:
    """`true` matches only true and `1` only numbers: Python's True == 1 is not SNS's."""
    assert expected == check({"k": policy}, {"k": attribute})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"a": True}, True),
        ({"a": 1}, False),
        ({"a": 1.0}, False),
        ({"a": "true"}, False),
        ({"a": [0, True]}, True),
    ],
)
def test_body_booleans_are_not_numbers(body: dict[str, Any], expected: bool) -> None:
    """In a message body too, `true` matches JSON true only, never 1."""
    assert expected == check_body({"a": [True]}, body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"a": 1}, True), ({"a": True}, False), ({"a": False}, False), ({"a": 0}, False)],
)
def test_body_numbers_are_not_booleans(body: dict[str, Any], expected: bool) -> None:
    """A policy's `1` does not match a body's `true`."""
    assert expected == check_body({"a": [1]}, body)


def test_parse_returns_policy() -> None:
    """A valid policy keeps its document and its scope."""
    document = {"a": ["x", {"prefix": "y"}], "b": [{"numeric": [">", 1]}]}

    policy = parse_filter_policy(json.dumps(document))

    assert document == policy.document
    assert MESSAGE_ATTRIBUTES == policy.scope


# -- $or -------------------------------------------------------------------------

OR_POLICY = {"a": ["x"], "$or": [{"b": ["1"]}, {"c": ["2"], "d": ["3"]}]}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"a": s("x"), "b": s("1")}, True),
        ({"a": s("x"), "c": s("2"), "d": s("3")}, True),
        ({"a": s("x"), "c": s("2")}, False),
        ({"a": s("x")}, False),
        ({"b": s("1"), "c": s("2"), "d": s("3")}, False),
    ],
)
def test_or_in_attributes(
    attributes: dict[str, MessageAttribute], expected: bool
) -> None:
    """`$or` ORs whole sub-policies, each ANDed with the keys beside it."""
    assert expected == check(OR_POLICY, attributes)


def test_nested_or_in_attributes() -> None:
    """An `$or` inside an `$or` branch expands too (Event Ruler's nested example)."""
    policy = {
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization"]},
            {"namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1]}]},
        ],
    }
    base = {"source": s("aws.cloudwatch"), "namespace": s("AWS/EC2")}

    assert check(policy, {**base, "spaceId": n("1")})
    assert check(policy, {**base, "metricId": n("1234")})
    assert not check(policy, base)


@pytest.mark.parametrize(
    ("policy", "attributes", "expected"),
    [
        # one object: not an $or, so "$or" is a key and its value a bad condition
        ({"$or": [{"prefix": "a"}, {"suffix": "z"}]}, {"$or": s("abc")}, True),
        ({"$or": [{"prefix": "a"}, {"suffix": "z"}]}, {"$or": s("xyz")}, True),
        ({"$or": [{"prefix": "a"}, {"suffix": "z"}]}, {"$or": s("b")}, False),
        ({"$or": ["x", "y"]}, {"$or": s("y")}, True),
    ],
)
def test_or_that_is_not_an_or_is_a_key(
    policy: dict[str, Any], attributes: dict[str, MessageAttribute], expected: bool
) -> None:
    """`$or` over match expressions or plain values is an ordinary key (Event Ruler)."""
    assert expected == check(policy, attributes)


def test_or_of_one_object_is_refused() -> None:
    """An `$or` array with one object is a key whose value is not a match expression."""
    assert "Unrecognized match type b" == refusal({"$or": [{"b": ["x"]}]})


# AWS's own example, recorded by LocalStack (test_filter_policy_on_message_body_or_attribute)
BODY_OR = {
    "$or": [
        {"metricName": ["CPUUtilization", "ReadLatency"]},
        {"namespace": ["AWS/EC2", "AWS/ES"]},
    ],
    "detail": {
        "scope": ["Service"],
        "$or": [
            {"source": ["aws.cloudwatch"]},
            {"type": ["CloudWatch Alarm State Change"]},
        ],
    },
}
ALARM = "CloudWatch Alarm State Change"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"metricName": "CPUUtilization", "detail": {"scope": "x", "type": ALARM}},
            False,
        ),
        ({"metricName": "CPUUtilization", "detail": {"scope": "Service"}}, False),
        ({"metricName": "CPUUtilization", "detail": {"type": ALARM}}, False),
        ({"metricName": "CPUUtilization", "scope": "Service"}, False),
        (
            {"metricName": "AWS/EC2", "detail": {"scope": "Service", "type": ALARM}},
            False,
        ),
        (
            {
                "metricName": "CPUUtilization",
                "detail": {"scope": "Service", "type": ALARM},
            },
            True,
        ),
        (
            {
                "namespace": "AWS/EC2",
                "detail": {"scope": "Service", "source": "aws.cloudwatch"},
            },
            True,
        ),
        (
            {"namespace": "AWS/ES", "detail.scope": "Service", "detail.type": ALARM},
            True,
        ),
    ],
)
def test_or_in_body(body: dict[str, Any], expected: bool) -> None:
    """Parallel `$or`s at the top and inside a nested object, as AWS matches them."""
    assert expected == check_body(BODY_OR, body)


# -- wildcard --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", ".example.com", True),
        ("a*", "a", True),
        ("*", "", True),
        ("*", "anything", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("a*bc*bc", "abcbc", True),
        ("a*bc*bc", "abc", False),
        ("*/src/*.js", "x/src/y.js", True),
        ("*/src/*.js", "x/src/y.ts", False),
        ("exact", "exact", True),
        ("exact", "exactly", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a\\\\*", "a\\zzz", True),
        ("ab*ba", "aba", False),
    ],
)
def test_wildcard(pattern: str, value: str, expected: bool) -> None:
    """`*` matches any run of characters; `\\*` and `\\\\` are literal."""
    assert expected == check({"k": [{"wildcard": pattern}]}, {"k": s(value)})


def test_wildcard_is_linear_on_long_values() -> None:
    """A three-star pattern on a 256 KB value answers at once (no backtracking)."""
    value = "a" * 262_144

    assert not check({"k": [{"wildcard": "*a*a*b"}]}, {"k": s(value)})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a**b", "Consecutive wildcard characters at pos 1"),
        ("a\\b", "Invalid escape character at pos 1"),
        ("ab\\", "Invalid escape character at pos 2"),
        ("*a*b*c*", "Wildcard pattern can not have more than 3 wildcard characters"),
    ],
)
def test_bad_wildcards_are_refused(pattern: str, message: str) -> None:
    """Event Ruler's wildcard syntax errors, and SNS's three-star limit."""
    assert message == refusal({"k": [{"wildcard": pattern}]})


# -- cidr ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "value", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.0", True),
        ("10.0.0.0/24", "10.0.0.255", True),
        ("10.0.0.0/24", "10.0.1.0", False),
        ("10.0.0.7/24", "10.0.0.1", True),
        ("0.0.0.0/0", "203.0.113.9", True),
        ("10.0.0.0/24", "not an ip", False),
        ("10.0.0.0/24", "2001:db8::1", False),
        ("2001:db8:1234:1a00::/64", "2001:0db8:1234:1a00:0000:0000:0000:0000", True),
        ("2001:db8:1234:1a00::/64", "2001:db8:1234:1a01::", False),
        ("2001:db8:1234:1a00::/64", "10.0.0.1", False),
    ],
)
def test_cidr(network: str, value: str, expected: bool) -> None:
    """`cidr` matches IPv4 and IPv6 addresses inside the network, nothing else."""
    assert expected == check({"ip": [{"cidr": network}]}, {"ip": s(value)})


def test_cidr_in_body() -> None:
    """AWS's recorded body case: a nested IPv4 and an expanded IPv6 address match."""
    policy = {
        "detail": {
            "$or": [
                {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]},
                {"sourceIPAddressV6": [{"cidr": "2001:db8:1234:1a00::/64"}]},
            ]
        }
    }

    assert check_body(policy, {"detail": {"sourceIPAddress": "10.0.0.255"}})
    assert not check_body(policy, {"detail": {"sourceIPAddress": "10.0.1.255"}})
    assert check_body(
        policy,
        {"detail": {"sourceIPAddressV6": "2001:0db8:1234:1a00:0000:0000:0000:0000"}},
    )


# -- refusals, with AWS's texts ------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        # recorded against AWS (LocalStack's snapshot), without Jackson's position
        (
            {"key": [["value"]]},
            "Match value must be String, number, true, false, or null",
        ),
        ({"key": [{"wrong-operator": True}]}, "Unrecognized match type wrong-operator"),
        (
            {"key": [{"suffix": "value", "prefix": "value2"}]},
            "Only one key allowed in match expression",
        ),
        ({"key": []}, "Empty arrays are not allowed"),
        ({"key": [{"suffix": 100}]}, "suffix match pattern must be a string"),
        ({"key": [{"suffix": None}]}, "suffix match pattern must be a string"),
        ({"key": [{"suffix": []}]}, "suffix match pattern must be a string"),
        ({"key": {"suffix": "value"}}, '"suffix" must be an object or an array'),
        ({"key": "value"}, '"key" must be an object or an array'),
        ({"key": [{"cidr": ["bad-filter"]}]}, "prefix match pattern must be a string"),
        ({"key": [{"cidr": "bad-filter"}]}, "Malformed CIDR, one '/' required"),
        ({"key": [{"cidr": "bad-filter/64"}]}, "Nonstandard IP address: bad-filter"),
        (
            {"key": [{"cidr": "bad-/64filter"}]},
            "Malformed CIDR, mask bits must be an integer",
        ),
        ({"key": [{"cidr": "xx.11.xx/8"}]}, "Nonstandard IP address: xx.11.xx"),
        (
            {"key": [{"cidr": "xxxx:db8:1234:1a00::/64"}]},
            "Nonstandard IP address: xxxx:db8:1234:1a00::",
        ),
        ({"key": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
        (
            {"key": [{"numeric": ["operator"]}]},
            "Unrecognized numeric range operator: operator",
        ),
        ({"key": [{"numeric": [1, "<="]}]}, "Invalid member in numeric match: 1"),
        ({"key": [{"numeric": ["=", "000"]}]}, "Value of equals must be numeric"),
        ({"key": [{"numeric": [">="]}]}, "Value of >= must be numeric"),
        (
            {"key": [{"numeric": ["<", 100, ">", 10]}]},
            "Too many elements in numeric expression",
        ),
        ({"key": [{"numeric": [">=", 1, ">", 2]}]}, "Bad numeric range operator: >"),
        ({"key": [{"numeric": [">", 3, "<", 1]}]}, "Bottom must be less than top"),
        ({"key": [{"numeric": [">", 20, "<="]}]}, "Value of <= must be numeric"),
        ({"key": [{"numeric": [">", 20, 30]}]}, "Bad value in numeric range: 30"),
        ({"key": [{"numeric": [">", 20, "test"]}]}, "Bad numeric range operator: test"),
        ({"key": [{"numeric": [">", "20", "<", "30"]}]}, "Value of > must be numeric"),
        ({"key": [{"numeric": [">", 20, "<", "30"]}]}, "Value of < must be numeric"),
        (
            {"key": [{"numeric": [">", 20, "<", 30, "<", 50]}]},
            "Too many terms in numeric range expression",
        ),
        ({"key": [{"numeric": ["=", True]}]}, "Value of equals must be numeric"),
        (
            {"key": [{"exists": None}]},
            "exists match pattern must be either true or false.",
        ),
        (
            {"key": [{"exists": "no"}]},
            "exists match pattern must be either true or false.",
        ),
        (
            {"key": [{"anything-but": {"wrong-operator": None}}]},
            "Unsupported anything-but pattern: wrong-operator",
        ),
        (
            {"key": [{"anything-but": {"suffix": "test"}}]},
            "Unsupported anything-but pattern: suffix",
        ),
        (
            {"key": [{"anything-but": {"exists": False}}]},
            "Unsupported anything-but pattern: exists",
        ),
        (
            {"key": [{"anything-but": {"prefix": False}}]},
            "prefix match pattern must be a string",
        ),
        (
            {"key": [{"anything-but": {"wildcard": 1}}]},
            "wildcard match pattern must be a string",
        ),
        ({"key": [{"wildcard": 5}]}, "wildcard match pattern must be a string"),
    ],
)
def test_refusals_carry_aws_texts(policy: dict[str, Any], message: str) -> None:
    """Each malformed condition is refused with the text AWS answers it with."""
    assert message == refusal(policy)


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
        json.dumps({"a": [{"wildcard": "x**"}]}),
        json.dumps({"a": [{}]}),
        json.dumps({"a": [{"anything-but": []}]}),
        json.dumps({"a": [{"anything-but": ["x", 1]}]}),
        json.dumps({"a": [{"anything-but": [None]}]}),
        json.dumps({"a": [{"anything-but": True}]}),
        json.dumps({"a": [{"cidr": "10.0.0.0/33"}]}),
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


# -- limits ----------------------------------------------------------------------

KEYS = "Filter policy can not have more than 5 keys"
COMPLEX = "Filter policy is too complex"


def keys(count: int) -> dict[str, list[str]]:
    return {f"key{i}": [f"value{i}"] for i in range(count)}


def values(count: int) -> list[str]:
    return [f"value{i}" for i in range(count)]


@pytest.mark.parametrize(
    ("policy", "scope", "message"),
    [
        (keys(6), MESSAGE_ATTRIBUTES, KEYS),
        (keys(6), MESSAGE_BODY, KEYS),
        # nested: only keys holding arrays count, so 4 top-level keys can be 6
        (
            {
                "a": {"b": ["1"], "c": ["1"]},
                "d": {"e": {"f": ["1"]}, "g": ["1"]},
                "h": ["1"],
                "i": ["1"],
            },
            MESSAGE_BODY,
            KEYS,
        ),
        ({"key": values(151)}, MESSAGE_ATTRIBUTES, COMPLEX),
        ({"key1": values(100), "key2": values(51)}, MESSAGE_ATTRIBUTES, COMPLEX),
        # AWS-recorded: (4 * 6) + (4 * 4 * 4) + (4 * 4 * 4) = 152
        (
            {
                "source": values(4),
                "$or": [
                    {"metricName": values(6)},
                    {
                        "metricType": values(4),
                        "$or": [{"metricId": [1, 2, 3, 4]}, {"spaceId": [1, 2, 3, 4]}],
                    },
                ],
            },
            MESSAGE_ATTRIBUTES,
            COMPLEX,
        ),
        # AWS-recorded: nested keys weigh values × depth,
        # (3 * 4 * 2) + (3 * 4 * 6) + (2 * 4 * 2) + (2 * 4 * 6) = 160
        (
            {
                "$or": [{"metricName": values(3)}, {"namespace": values(2)}],
                "detail": {
                    "scope": values(2),
                    "$or": [{"source": values(1)}, {"type": values(3)}],
                },
            },
            MESSAGE_BODY,
            COMPLEX,
        ),
        # AWS-recorded: 3 x 4 x 2 x 3 x 1 x 3 = 216
        (
            {
                "key_a": {"key_b": {"key_c": values(4)}},
                "key_d": {"key_e": values(3)},
                "key_f": values(3),
            },
            MESSAGE_BODY,
            COMPLEX,
        ),
        # 2**8 branches: refused while expanding, not after
        (
            {f"k{i}": {"$or": [{"a": ["1"]}, {"b": ["2"]}]} for i in range(8)},
            MESSAGE_BODY,
            COMPLEX,
        ),
        # wildcard complexity: 5 patterns of 3 stars = (5 * 9) * 5 > 100
        (
            {"k": [{"wildcard": f"{i}*a*b*"} for i in range(5)]},
            MESSAGE_ATTRIBUTES,
            COMPLEX,
        ),
    ],
)
def test_limits_are_refused(policy: dict[str, Any], scope: str, message: str) -> None:
    """More than 5 keys or 150 combinations (with `$or`, nesting, wildcards) is refused."""
    assert message == refusal(policy, scope)


@pytest.mark.parametrize(
    ("policy", "scope"),
    [
        (keys(5), MESSAGE_ATTRIBUTES),
        ({"key": values(150)}, MESSAGE_ATTRIBUTES),
        ({"key1": values(10), "key2": values(15)}, MESSAGE_ATTRIBUTES),
        # AWS-recorded: (3 * 6) + (3 * 4 * 4) + (3 * 4 * 7) = 150 is accepted
        (
            {
                "source": values(3),
                "$or": [
                    {"metricName": values(6)},
                    {
                        "metricType": values(4),
                        "$or": [
                            {"metricId": [1, 2, 3, 4]},
                            {"spaceId": list(range(7))},
                        ],
                    },
                ],
            },
            MESSAGE_ATTRIBUTES,
        ),
        # the docs' example: 3 x 4 x 2 x 3 = 72
        (
            {"key_a": {"key_b": {"key_c": values(4)}}, "key_d": {"key_e": values(3)}},
            MESSAGE_BODY,
        ),
        # five leaf keys under three top-level ones
        (
            {"a": {"b": ["1"], "c": ["1"]}, "d": {"e": ["1"], "f": ["1"]}, "g": ["1"]},
            MESSAGE_BODY,
        ),
        # keys are counted per `$or` branch (inferred): 3 and 3
        (
            {"$or": [keys(3), {f"other{i}": ["x"] for i in range(3)}]},
            MESSAGE_ATTRIBUTES,
        ),
        ({"k": [{"wildcard": "a*b*c*"}, {"wildcard": "x*"}]}, MESSAGE_ATTRIBUTES),
    ],
)
def test_limits_are_accepted_up_to_the_bound(
    policy: dict[str, Any], scope: str
) -> None:
    """Policies at the limits parse."""
    assert parse_filter_policy(json.dumps(policy), scope=scope).branches


def test_policy_size_limit() -> None:
    """A policy over 256 KB is refused when set, still read when already stored."""
    text = json.dumps({"k": ["x" * 262_144]})

    with pytest.raises(ValueError, match="256 KB"):
        parse_filter_policy(text)
    assert parse_filter_policy(text, check_limits=False).branches


def test_stored_policies_are_read_without_limits() -> None:
    """Delivery reads a policy stored before the limits with `check_limits=False`."""
    policy = parse_filter_policy(json.dumps(keys(6)), check_limits=False)

    assert matches(policy, {f"key{i}": s(f"value{i}") for i in range(6)})


# -- scopes ----------------------------------------------------------------------


def test_nested_policy_needs_the_body_scope() -> None:
    """A nested policy is refused for MessageAttributes with AWS's text, accepted for MessageBody."""
    policy = {"object": {"key": ["value"]}}

    with pytest.raises(ScopeError) as info:
        parse_filter_policy(json.dumps(policy))

    expected = (
        "Filter policy scope MessageAttributes does not support nested filter policy"
    )
    assert expected == str(info.value)
    assert parse_filter_policy(json.dumps(policy), scope=MESSAGE_BODY).branches


@pytest.mark.parametrize("value", ["RandomValue", "", "messagebody", "MessageBody "])
def test_invalid_scope_is_refused(value: str) -> None:
    """Only MessageAttributes and MessageBody are scopes; AWS's text names the value."""
    with pytest.raises(ValueError) as info:
        check_scope(value)

    expected = (
        f"Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
    )
    assert expected == str(info.value)
    with pytest.raises(ValueError, match="Invalid value"):
        parse_filter_policy('{"a": ["b"]}', scope=value)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, MESSAGE_ATTRIBUTES),
        ({"FilterPolicyScope": "MessageBody"}, MESSAGE_BODY),
        ({"FilterPolicyScope": "MessageAttributes"}, MESSAGE_ATTRIBUTES),
        ({"FilterPolicyScope": "stored-before-checks"}, MESSAGE_ATTRIBUTES),
    ],
)
def test_scope_of_a_subscription(attributes: dict[str, str], expected: str) -> None:
    """The scope defaults to MessageAttributes, and so reads an unknown stored value."""
    assert expected == scope_of(attributes)


def test_message_matches_uses_the_policy_scope() -> None:
    """The same document filters attributes or the body, per its scope."""
    text = '{"kind": ["a"]}'
    attributes = {"kind": s("a")}

    assert message_matches(parse_filter_policy(text), attributes, '{"kind": "b"}')
    assert not message_matches(
        parse_filter_policy(text, scope=MESSAGE_BODY), attributes, '{"kind": "b"}'
    )


# -- MessageBody scope -------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "body", "expected"),
    [
        ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a": {"b": "y"}}, False),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
        ({"a": {"b": ["x"]}}, {"b": "x"}, False),
        (
            {"a": {"b": {"c": [{"prefix": "v"}]}}},
            {"a": {"b": {"c": "value"}}, "z": 1},
            True,
        ),
        # dots join keys on both sides (AWS-recorded)
        ({"a.b": ["x"]}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a.b": "x"}, True),
        ({"a": {"b.c": ["x"]}}, {"a.b": {"c": "x"}}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a": {"b.c": "x"}}, True),
        # arrays: any element
        ({"tags": ["b"]}, {"tags": ["a", "b"]}, True),
        ({"tags": ["c"]}, {"tags": ["a", "b"]}, False),
        ({"tags": ["c"]}, {"tags": []}, False),
        ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True),
        ({"a": {"b": ["x"]}}, {"a": [[{"b": "x"}]]}, True),
        ({"a": {"b": ["x"]}}, {"a": {"b": ["y", "x"]}}, True),
        # scalars of one array combine, objects in different elements do not
        ({"t": ["a"], "$or": [{"t": ["b"]}, {"u": ["c"]}]}, {"t": ["a", "b"]}, True),
        ({"r": {"k": ["a"], "n": ["1"]}}, {"r": [{"k": "a", "n": "1"}]}, True),
        ({"r": {"k": ["a"], "n": ["1"]}}, {"r": [{"k": "a"}, {"n": "1"}]}, False),
        (
            {"r": {"k": ["a"]}, "s": ["1"]},
            {"r": [{"k": "b"}, {"k": "a"}], "s": "1"},
            True,
        ),
        # values and types
        ({"n": [5]}, {"n": 5.0}, True),
        ({"n": [5]}, {"n": "5"}, False),
        ({"n": ["5"]}, {"n": 5}, False),
        ({"n": [{"numeric": [">", 1]}]}, {"n": 2}, True),
        ({"n": [{"numeric": [">", 1]}]}, {"n": "2"}, False),
        ({"n": [{"numeric": [">", 1]}]}, {"n": 10**400}, False),
        ({"n": [None]}, {"n": None}, True),
        ({"n": [None]}, {}, False),
        ({"n": [""]}, {"n": ""}, True),
        ({"s": [{"anything-but": "x"}]}, {"s": None}, False),
        ({"s": [{"anything-but": "x"}]}, {"s": "y"}, True),
        ({"s": [{"equals-ignore-case": "ÉTÉ"}]}, {"s": "été"}, True),
        # exists: leaves only; true needs a non-null, non-empty value
        ({"s": [{"exists": True}]}, {"s": "v"}, True),
        ({"s": [{"exists": True}]}, {"s": 0}, True),
        ({"s": [{"exists": True}]}, {"s": False}, True),
        ({"s": [{"exists": True}]}, {"s": None}, False),
        ({"s": [{"exists": True}]}, {"s": ""}, False),
        ({"s": [{"exists": True}]}, {"s": {"t": 1}}, False),
        ({"s": [{"exists": True}]}, {"s": []}, False),
        ({"s": [{"exists": True}]}, {}, False),
        ({"s": [{"exists": False}]}, {}, True),
        ({"s": [{"exists": False}]}, {"t": 1}, True),
        ({"s": [{"exists": False}]}, {"s": {"t": 1}}, True),
        ({"s": [{"exists": False}]}, {"s": []}, True),
        ({"s": [{"exists": False}]}, {"s": "v"}, False),
        ({"a": {"s": [{"exists": False}]}, "b": ["1"]}, {"b": "1"}, True),
    ],
)
def test_body_matching(
    policy: dict[str, Any], body: dict[str, Any], expected: bool
) -> None:
    """Nested policies descend into the body; arrays match by element."""
    assert expected == check_body(policy, body)


RECORDS = {
    "Records": {
        "s3": {"object": {"key": [{"prefix": "auto-"}]}},
        "eventName": [{"prefix": "ObjectCreated:"}],
    }
}


def record(key: str, event: str) -> dict[str, Any]:
    return {"eventName": event, "s3": {"object": {"key": key, "size": 17}}}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([record("auto-1.xml", "ObjectCreated:Put")], True),
        ([record("auto-1.xml", "ObjectRemoved:Delete")], False),
        ([record("home-1.xml", "ObjectCreated:Put")], False),
        (
            [
                record("home-1.xml", "ObjectCreated:Put"),
                record("auto-2.xml", "ObjectCreated:Put"),
            ],
            True,
        ),
        # the matching key and event are in different records: no match
        (
            [
                record("auto-1.xml", "ObjectRemoved:Delete"),
                record("home-1.xml", "ObjectCreated:Put"),
            ],
            False,
        ),
    ],
)
def test_body_array_of_objects(records: list[dict[str, Any]], expected: bool) -> None:
    """AWS's S3-event example: one record must satisfy every key under Records."""
    assert expected == check_body(RECORDS, {"Records": records})


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", '"text"', "null", "", "{", "[[" * 100]
)
def test_body_that_is_not_an_object_matches_nothing(body: str) -> None:
    """Filter policies on the body assume a JSON object; anything else matches nothing."""
    assert not check_body({"s": [{"exists": False}]}, body)


def test_parsed_body_is_parsed_once() -> None:
    """A ParsedBody shared by a fan-out parses on first use and keeps the result."""
    body = ParsedBody('{"kind": "a"}')
    policy = parse_filter_policy('{"kind": ["a"]}', scope=MESSAGE_BODY)

    first = body.value

    assert message_matches(policy, {}, body)
    assert first is body.value


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Message(id="1", body='{"kind": "a"}'), True),
        (Message(id="1", body='{"kind": "b"}'), False),
        (
            Message(
                id="1",
                body=json.dumps({"default": '{"kind": "a"}', "GCM": "{}"}),
                structure="json",
            ),
            True,
        ),
        (
            Message(
                id="1",
                body=json.dumps({"default": '{"kind": "b"}', "GCM": '{"kind": "a"}'}),
                structure="json",
            ),
            False,
        ),
        (
            Message(
                id="1", body=json.dumps({"GCM": '{"kind": "a"}'}), structure="json"
            ),
            False,
        ),
    ],
)
def test_message_body_reads_the_default_of_a_json_structure(
    message: Message, expected: bool
) -> None:
    """MessageStructure=json messages are filtered on their `default` text."""
    policy = parse_filter_policy('{"kind": ["a"]}', scope=MESSAGE_BODY)

    assert expected == message_matches(policy, {}, message_body(message))
