"""
SNS subscription filter policies on message attributes (FilterPolicyScope
`MessageAttributes`, the default). Keys are ANDed, the values of a key are ORed.

Supported conditions: exact strings and numbers, `prefix`, `suffix`,
`equals-ignore-case`, `anything-but` (value, list or `{"prefix": ...}`),
`numeric` ranges and `exists`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from pushgw import safejson
from pushgw.model import MessageAttribute

Policy = dict[str, list[Any]]
NUMERIC_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def parse_filter_policy(text: str) -> Policy:
    """Parse and check a policy; ValueError names the problem."""
    try:
        data = safejson.loads(text)
    except safejson.JsonInputError:
        # Malformed and too deep alike: the client sees one reason (Subscribe).
        raise ValueError("failed to parse JSON") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("must be a non-empty JSON object")
    policy: Policy = {}
    for key, values in data.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"the value of {key} must be a non-empty array")
        for condition in values:
            _check_condition(key, condition)
        policy[key] = values
    return policy


def _check_condition(key: str, condition: Any) -> None:
    if isinstance(condition, (str, int, float)) or condition is None:
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise ValueError(f"unsupported condition for {key}")
    ((op, arg),) = condition.items()
    if op in ("prefix", "suffix", "equals-ignore-case") and isinstance(arg, str):
        return
    if op == "exists" and isinstance(arg, bool):
        return
    if op == "anything-but" and _valid_anything_but(arg):
        return
    if op == "numeric" and isinstance(arg, list) and len(arg) in (2, 4):
        for symbol, number in zip(arg[::2], arg[1::2], strict=True):
            if symbol not in NUMERIC_OPS or not isinstance(number, (int, float)):
                raise ValueError(f"bad numeric condition for {key}")
        return
    raise ValueError(f"unsupported operator {op!r} for {key}")


def _valid_anything_but(arg: Any) -> bool:
    """A value, a non-empty list of values, or {"prefix": "..."}."""
    if isinstance(arg, dict):
        return list(arg) == ["prefix"] and isinstance(arg["prefix"], str)
    if isinstance(arg, list):
        return bool(arg) and all(_is_scalar(v) for v in arg)
    return _is_scalar(arg)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def matches(policy: Policy, attributes: Mapping[str, MessageAttribute]) -> bool:
    """True when every key of the policy has a matching condition."""
    return all(
        any(_match(condition, attributes.get(key)) for condition in conditions)
        for key, conditions in policy.items()
    )


def _values(attribute: MessageAttribute) -> list[Any]:
    if attribute.data_type.startswith("String.Array"):
        try:
            # Checked at Publish; guarded again because this runs per subscriber.
            loaded = safejson.loads(attribute.string_value or "")
        except safejson.JsonInputError:
            return []
        return loaded if isinstance(loaded, list) else []
    if attribute.data_type.startswith("Number"):
        try:
            return [float(attribute.string_value or "")]
        except ValueError:
            return []
    return [attribute.string_value]


def _match(condition: Any, attribute: MessageAttribute | None) -> bool:
    if isinstance(condition, dict) and "exists" in condition:
        return (attribute is not None) == bool(condition["exists"])
    if attribute is None or attribute.data_type.startswith("Binary"):
        return False
    return any(_match_value(condition, v) for v in _values(attribute))


def _match_value(condition: Any, value: Any) -> bool:
    if isinstance(condition, bool) or condition is None:
        return bool(value == condition)
    if isinstance(condition, (int, float)):
        return isinstance(value, (int, float)) and math.isclose(value, condition)
    if isinstance(condition, str):
        return isinstance(value, str) and value == condition
    ((op, arg),) = condition.items()
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == arg.lower()
    if op == "anything-but":
        if isinstance(arg, dict) and "prefix" in arg:
            return isinstance(value, str) and not value.startswith(arg["prefix"])
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_value(e, value) for e in excluded)
    if op == "numeric" and isinstance(value, (int, float)):
        pairs = zip(arg[::2], arg[1::2], strict=True)
        return all(NUMERIC_OPS[symbol](value, number) for symbol, number in pairs)
    return False
