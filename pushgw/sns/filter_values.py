"""
The value side of an SNS filter policy: one key's array of conditions, checked
and compiled once into a `ValueTest` that answers "does this leaf value match?"
without re-reading the policy (pushgw/sns/filters.py builds the rest).

Leaf values are what JSON gives: `str`, `int`, `float`, `bool` and `None`
(a message attribute's value is turned into the same, filters.py). Types are
compared by identity (`type(v) is bool`), never by `==`: Python's `True == 1`
would let a policy's `true` match the number 1 and `1` match `true`, which SNS
does not do.

Error texts are AWS's where AWS's answer is on record (LocalStack's snapshot
tests, recorded against AWS:
https://github.com/localstack/localstack/blob/main/tests/aws/services/sns/test_sns_filter_policy.snapshot.json),
without the Jackson `at [Source: …]` position AWS appends. Texts marked
"inferred" are ours, written in the same style.
"""

from __future__ import annotations

import ipaddress
import json
import operator
from collections.abc import Callable, Mapping
from typing import Any

# AWS: numbers match "with five digits of accuracy after the decimal point"
# (subscription-filter-policy-constraints.html); Event Ruler, the matcher SNS's
# policy language comes from, keeps six. Both sides are rounded to six places,
# so 100 matches 100.0 and 0.1 + 0.2 matches 0.3.
NUMBER_DIGITS = 6
# Wildcard limits (AWS, July 2025 release of `wildcard`; see filters.py).
MAX_WILDCARDS_PER_PATTERN = 3
ONE_WILDCARD_POINTS = 1  # a pattern with a single `*`
MANY_WILDCARD_POINTS = 3  # per `*`, in a pattern with two or three

NUMERIC_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
ANYTHING_BUT_PATTERNS = ("prefix", "wildcard")

StringTest = Callable[[str], bool]
NumberTest = Callable[[float], bool]
ScalarTest = Callable[[Any], bool]


def number(value: Any) -> float | None:
    """A JSON number as SNS compares it (rounded), or None for anything else."""
    if type(value) is not int and type(value) is not float:
        return None  # bool is an int subclass: `type(...) is` keeps it out
    try:
        return round(float(value), NUMBER_DIGITS)
    except OverflowError:  # an integer literal beyond float range
        return None


class ValueTest:
    """
    The conditions of one policy key, ORed, compiled for matching many values.

    `absent_ok` says whether the key is satisfied by the absence of any value
    (`{"exists": false}`); `__call__` says whether one present leaf value matches.
    `count` (the number of conditions) and the wildcard points feed the policy's
    complexity limits.
    """

    __slots__ = (
        "absent_ok",
        "count",
        "exists",
        "literals",
        "number_tests",
        "numbers",
        "scalar_tests",
        "string_tests",
        "strings",
        "wildcard_patterns",
        "wildcard_points",
    )

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[float] = set()
        self.literals: list[bool | None] = []  # `true`, `false`, `null`
        self.string_tests: list[StringTest] = []
        self.number_tests: list[NumberTest] = []
        self.scalar_tests: list[ScalarTest] = []
        self.exists = False  # {"exists": true}
        self.absent_ok = False  # {"exists": false}
        self.count = 0
        self.wildcard_patterns = 0
        self.wildcard_points = 0

    def __call__(self, value: Any) -> bool:
        kind = type(value)
        if kind is str:
            if value in self.strings or any(t(value) for t in self.string_tests):
                return True
            if self.exists and value != "":
                return True
        elif kind is bool or value is None:
            if any(value is literal for literal in self.literals):
                return True
            if value is None:
                return False  # exists and anything-but want a value
            if self.exists:
                return True
        else:
            rounded = number(value)
            if rounded is None:
                return False
            if rounded in self.numbers or any(t(rounded) for t in self.number_tests):
                return True
            if self.exists:
                return True
        return any(t(value) for t in self.scalar_tests)


def compile_values(values: list[Any]) -> ValueTest:
    """
    Check and compile the array of conditions of one policy key.

    Raises:
        ValueError: a condition SNS refuses, with AWS's text where known.
    """
    if not values:
        raise ValueError("Empty arrays are not allowed")
    test = ValueTest()
    test.count = len(values)
    for condition in values:
        _add(test, condition)
    return test


def _add(test: ValueTest, condition: Any) -> None:
    if type(condition) is str:
        test.strings.add(condition)
    elif type(condition) is bool or condition is None:
        test.literals.append(condition)
    elif type(condition) is int or type(condition) is float:
        rounded = number(condition)
        if rounded is not None:
            test.numbers.add(rounded)
    elif isinstance(condition, dict):
        _add_operator(test, condition)
    else:
        raise ValueError("Match value must be String, number, true, false, or null")


def _add_operator(test: ValueTest, condition: dict[str, Any]) -> None:
    if len(condition) != 1:
        raise ValueError("Only one key allowed in match expression")
    ((op, arg),) = condition.items()
    if op in STRING_OPERATORS:
        test.string_tests.append(_string_operator(test, op, arg))
    elif op == "exists":
        if type(arg) is not bool:
            raise ValueError("exists match pattern must be either true or false.")
        if arg:
            test.exists = True
        else:
            test.absent_ok = True
    elif op == "numeric":
        test.number_tests.append(numeric_range(arg))
    elif op == "cidr":
        test.string_tests.append(cidr(arg))
    elif op == "anything-but":
        _add_anything_but(test, arg)
    else:
        raise ValueError(f"Unrecognized match type {op}")


def _string(op: str, arg: Any) -> str:
    if type(arg) is not str:
        raise ValueError(f"{op} match pattern must be a string")
    return arg


def _string_operator(test: ValueTest, op: str, arg: Any) -> StringTest:
    pattern = _string(op, arg)
    if op == "prefix":
        return lambda value: value.startswith(pattern)
    if op == "suffix":
        return lambda value: value.endswith(pattern)
    if op == "equals-ignore-case":
        folded = pattern.lower()
        return lambda value: value.lower() == folded
    return _wildcard(test, pattern)


def _add_anything_but(test: ValueTest, arg: Any) -> None:
    """
    `anything-but`: a value or a list of values (all strings or all numbers, as
    in Event Ruler), or `{"prefix": …}` / `{"wildcard": …}`. AWS refused
    `{"suffix": …}` inside it ("Unsupported anything-but pattern: suffix",
    recorded 2024-05) and its July 2025 release added only `wildcard`.
    """
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise ValueError("Only one key allowed in match expression")
        ((op, inner),) = arg.items()
        if op not in ANYTHING_BUT_PATTERNS:
            raise ValueError(f"Unsupported anything-but pattern: {op}")
        matches = _string_operator(test, op, inner)
        test.string_tests.append(lambda value: not matches(value))
        return
    excluded = arg if isinstance(arg, list) else [arg]
    all_strings = all(type(v) is str for v in excluded)
    all_numbers = all(type(v) is int or type(v) is float for v in excluded)
    if not excluded or not (all_strings or all_numbers):
        # inferred text: Event Ruler refuses empty and mixed lists, null, true
        # and false inside anything-but
        raise ValueError(
            "anything-but match pattern must be a string, a number,"
            " or a list of strings or of numbers"
        )
    strings = set(excluded) if all_strings else set()
    test.scalar_tests.append(_none_of(strings, {number(v) for v in excluded}))


def _none_of(strings: set[str], numbers: set[float | None]) -> ScalarTest:
    """
    A present string or number that is none of the listed values; null, true
    and false are not values anything-but speaks about.
    """

    def test(value: Any) -> bool:
        if type(value) is str:
            return value not in strings
        rounded = number(value)
        return rounded is not None and rounded not in numbers

    return test


def numeric_range(arg: Any) -> NumberTest:
    """
    `["op", n]` or `[">"|">=", low, "<"|"<=", high]`, with AWS's error texts
    for every malformed shape (recorded, see the module docstring).
    """
    if not isinstance(arg, list) or not arg:
        raise ValueError("Invalid member in numeric match: ]")
    first = arg[0]
    if type(first) is not str:
        raise ValueError(f"Invalid member in numeric match: {_show(first)}")
    if first not in NUMERIC_OPS:
        raise ValueError(f"Unrecognized numeric range operator: {first}")
    low = _operand(first, arg[1] if len(arg) > 1 else None)
    if len(arg) == 2:
        compare, bound = NUMERIC_OPS[first], low
        return lambda value: compare(value, bound)
    if first not in (">", ">="):
        raise ValueError("Too many elements in numeric expression")
    second = arg[2]
    if type(second) is not str:
        raise ValueError(f"Bad value in numeric range: {_show(second)}")
    if second not in ("<", "<="):
        raise ValueError(f"Bad numeric range operator: {second}")
    high = _operand(second, arg[3] if len(arg) > 3 else None)
    if high <= low:
        raise ValueError("Bottom must be less than top")
    if len(arg) > 4:
        raise ValueError("Too many terms in numeric range expression")
    above, below = NUMERIC_OPS[first], NUMERIC_OPS[second]
    return lambda value: above(value, low) and below(value, high)


def _operand(op: str, value: Any) -> float:
    rounded = number(value)
    if rounded is None:
        raise ValueError(f"Value of {'equals' if op == '=' else op} must be numeric")
    return rounded


def _show(value: Any) -> str:
    return value if type(value) is str else json.dumps(value)


def cidr(arg: Any) -> StringTest:
    """`{"cidr": "10.0.0.0/24"}` (IPv4 or IPv6) against string values."""
    # AWS answers a non-string cidr with the prefix text (recorded).
    text = _string("prefix", arg)
    if text.count("/") != 1:
        raise ValueError("Malformed CIDR, one '/' required")
    address, bits = text.split("/")
    if not bits.isascii() or not bits.isdigit():
        raise ValueError("Malformed CIDR, mask bits must be an integer")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"Nonstandard IP address: {address}") from None
    if int(bits) > ip.max_prefixlen:
        # inferred text
        raise ValueError(
            f"Malformed CIDR, mask bits must be between 0 and {ip.max_prefixlen}"
        )
    # strict=False: host bits below the mask are dropped, as Event Ruler builds
    # the range from the address and the mask (inferred for SNS).
    network = ipaddress.ip_network(f"{address}/{int(bits)}", strict=False)

    def inside(value: str) -> bool:
        try:
            return ipaddress.ip_address(value) in network  # other family: False
        except ValueError:
            return False

    return inside


def _wildcard(test: ValueTest, pattern: str) -> StringTest:
    """
    Event Ruler's wildcard syntax: `*` matches any run of characters (none
    included), `\\*` is a literal star, `\\\\` a literal backslash, any other
    escape and two consecutive stars are refused (Ruler's texts). SNS allows at
    most three stars per pattern and scores them for its complexity limit.
    """
    parts: list[str] = []
    literal: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern) or pattern[index + 1] not in "*\\":
                raise ValueError(f"Invalid escape character at pos {index}")
            literal.append(pattern[index + 1])
            index += 2
            continue
        if char == "*":
            if index + 1 < len(pattern) and pattern[index + 1] == "*":
                raise ValueError(f"Consecutive wildcard characters at pos {index}")
            parts.append("".join(literal))
            literal = []
        else:
            literal.append(char)
        index += 1
    parts.append("".join(literal))
    stars = len(parts) - 1
    if stars > MAX_WILDCARDS_PER_PATTERN:
        # inferred text
        raise ValueError(
            f"Wildcard pattern can not have more than {MAX_WILDCARDS_PER_PATTERN}"
            " wildcard characters"
        )
    test.wildcard_patterns += 1
    test.wildcard_points += (
        0
        if stars == 0
        else ONE_WILDCARD_POINTS
        if stars == 1
        else MANY_WILDCARD_POINTS * stars
    )
    return lambda value: glob(parts, value)


def glob(parts: list[str], value: str) -> bool:
    """
    `value` matches literals `parts` joined by stars. Linear: the first part is
    a prefix, the last a suffix, and each middle part is found leftmost after
    the previous one (leftmost is always safe for `*`-only patterns). No regex,
    so a 256 KB attribute cannot make a pattern backtrack.
    """
    if len(parts) == 1:
        return value == parts[0]
    first, last = parts[0], parts[-1]
    end = len(value) - len(last)
    if end < len(first) or not value.startswith(first) or not value.endswith(last):
        return False
    position = len(first)
    for middle in parts[1:-1]:
        found = value.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return True
