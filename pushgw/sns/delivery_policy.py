"""
HTTP/S delivery policies: the topic and subscription `DeliveryPolicy` attributes,
the `EffectiveDeliveryPolicy` SNS reports for them, and the retry schedule the
delivery engine follows (HTTP_SUBSCRIPTIONS.md §4). Pure: no I/O, no clock.

What SNS does [doc: developer guide "Amazon SNS message delivery retries",
https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html]:

- Default HTTP/S policy: 3 retries, 20 s apart (`minDelayTarget` 20,
  `maxDelayTarget` 20, `numRetries` 3, the other phases 0, `linear`).
- Limits: `minDelayTarget` 1..`maxDelayTarget`, `maxDelayTarget`
  `minDelayTarget`..3600, `numRetries` 0..100, the phase counts 0 or more,
  `maxReceivesPerSecond` 1 or more; "the total policy retry time for an HTTP/S
  endpoint cannot be greater than 3,600 seconds".
- Four phases, in order: immediate (`numNoDelayRetries`, no delay), pre-backoff
  (`numMinDelayRetries` at `minDelayTarget`), backoff (`numRetries -
  numNoDelayRetries - numMinDelayRetries - numMaxDelayRetries` retries;
  `minDelayTarget` is the delay of its first retry, `maxDelayTarget` that of its
  last, `backoffFunction` shapes the ones between), post-backoff
  (`numMaxDelayRetries` at `maxDelayTarget`). The guide's worked example: 3
  linear retries from 20 s to 40 s wait 20, 30 and 40 s.
- A subscription's policy takes precedence over the topic's unless the topic
  sets `disableSubscriptionOverrides`.

What SNS returns [field: AWS responses recorded in LocalStack's
tests/aws/services/sns/test_sns.snapshot.json, `test_topic_delivery_policy_crud`
and `test_subscribe_external_http_endpoint_content_type`, 2024; public
get-topic-attributes output]:

- Topic `EffectiveDeliveryPolicy` with nothing set:
  `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,
  "numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,
  "numMinDelayRetries":0,"backoffFunction":"linear"},
  "disableSubscriptionOverrides":false,
  "defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`;
  a partial retry policy is filled in with the defaults.
- The stored topic `DeliveryPolicy` is re-serialised: `{"http":
  {"defaultRequestPolicy":{...}}}` reads back as `{"http":
  {"disableSubscriptionOverrides":false,"defaultRequestPolicy":{...}}}`, a retry
  policy keeps only the fields given, a null section is dropped.
- The stored subscription `DeliveryPolicy` always has the five keys
  `healthyRetryPolicy`, `sicklyRetryPolicy`, `throttlePolicy`, `requestPolicy`
  (null when not set) and `guaranteed`; a retry policy lists all seven fields,
  null when not given (terraform-provider-aws test fixtures).
- Subscription `EffectiveDeliveryPolicy`: the same five keys; each section the
  subscription leaves unset comes from the topic's effective policy (a topic
  `defaultRequestPolicy` shows up as the subscription's `requestPolicy`).
- Error texts: `healthyRetryPolicy.minDelayTarget must be greater than or equal to
  1`, `http.defaultHealthyRetryPolicy.numRetries must be less than or equal to
  100` (after `Invalid parameter: DeliveryPolicy: `, or `Invalid parameter:
  Attributes Reason: DeliveryPolicy: ` when the policy came in the `Attributes`
  of CreateTopic/Subscribe).
- The 3,600 s check is computed on a grid that stops one step short of
  `maxDelayTarget`: with `minDelayTarget` 1, 4 linear backoff retries (and one
  immediate retry) SNS accepts `maxDelayTarget` 2399 and refuses 2400
  (Crown-Commercial-Service/digitalmarketplace-aws commit 0b2f838, found by
  trial against SNS); only `sum(min + (max - min) * k // n for k in range(n))`
  (integer division) <= 3600 explains both. `_checked_total` reproduces that,
  so every linear policy SNS accepts is accepted here.

Our choices [SPEC], where nothing public says:

- The backoff curves. SNS publishes only a chart (backoff-graph.png, 10
  retries from 5 s to 260 s), no formulas. Here, with `s = n - 1` steps between
  the first backoff retry (index 0, `minDelayTarget`) and the last (index `s`,
  `maxDelayTarget`), the delay of index `i` is
  `linear`: `min + (max - min) * i / s` (equal steps; matches the 20/30/40 example),
  `arithmetic`: `min + (max - min) * i*(i+1) / (s*(s+1))` (the steps grow by a
  constant amount),
  `geometric`: `min * (max / min) ** (i / s)` (each delay a constant multiple of
  the previous one),
  `exponential`: `min + (max - min) * (2**i - 1) / (2**s - 1)` (the steps double).
  All four start at `min`, end at `max` and never decrease; linear is never
  below the others, and in the chart's example (5 s to 260 s over 10 retries)
  arithmetic, geometric and exponential follow in that order. A backoff phase of
  a single retry waits `minDelayTarget`. Delays are exact (no jitter; SNS adds jitter, the
  engine may too).
- The 3,600 s check applies the same curves on the grid above (for `linear`,
  SNS's own arithmetic), adding `numMinDelayRetries * minDelayTarget` and
  `numMaxDelayRetries * maxDelayTarget`. The schedule itself may then run past an
  hour by at most one backoff step; the engine does not cut it short.
- `minDelayTarget`, `maxDelayTarget` and `numRetries` are required in a retry
  policy (SNS refused policies without them in 2020 reports and in the 2012
  clone of its API, Comcast CMB; the guide's `{"numRetries":5}` example notwith-
  standing). Integers must be JSON integers; `backoffFunction` is lower case.
- `headerContentType`: one of the media types in `CONTENT_TYPES` (the list
  connectors publish from the SNS guide; SNS was recorded accepting `text/csv`
  and `application/json`), optionally followed by `; charset=UTF-8` (the form of
  the default). The value is sent as given.
- Keys SNS has but pushgw does not act on are accepted, validated and echoed:
  `sicklyRetryPolicy` / `defaultSicklyRetryPolicy`, `guaranteed`. Other keys are
  refused ("invalid JSON. Attribute X is unknown.", the wording SNS uses for
  RedrivePolicy). Section order in the topic form puts `defaultThrottlePolicy`
  between `disableSubscriptionOverrides` and `defaultRequestPolicy` (not seen in
  recorded output). A throttle or request section without its one field counts
  as not set.
- Missing fields of a subscription's retry policy are filled from the SNS
  defaults (as the topic's are), not from the topic's policy.
- Stored values that no longer parse (they were checked when set) count as not
  set.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pushgw import safejson

MAX_RETRIES: Final = 100
MAX_DELAY_TARGET: Final = 3600
MAX_POLICY_SECONDS: Final = 3600
BACKOFF_FUNCTIONS: Final = ("linear", "arithmetic", "geometric", "exponential")
DEFAULT_CONTENT_TYPE: Final = "text/plain; charset=UTF-8"
CONTENT_TYPES: Final = frozenset(
    {
        "application/atom+xml",
        "application/json",
        "application/octet-stream",
        "application/soap+xml",
        "application/x-www-form-urlencoded",
        "application/xhtml+xml",
        "application/xml",
        "text/css",
        "text/csv",
        "text/html",
        "text/plain",
        "text/xml",
    }
)
_CONTENT_TYPE = re.compile(
    r'\s*([a-z+/.-]+)\s*(?:;\s*charset\s*=\s*("?)utf-8\2\s*)?', re.IGNORECASE
)

# SNS's field order in every retry policy it returns.
_RETRY_FIELDS: Final = (
    "minDelayTarget",
    "maxDelayTarget",
    "numRetries",
    "numMaxDelayRetries",
    "numNoDelayRetries",
    "numMinDelayRetries",
    "backoffFunction",
)
_REQUIRED_FIELDS: Final = ("minDelayTarget", "maxDelayTarget", "numRetries")
_PHASE_FIELDS: Final = ("numNoDelayRetries", "numMinDelayRetries", "numMaxDelayRetries")
_TOPIC_KEYS: Final = (
    "defaultHealthyRetryPolicy",
    "defaultSicklyRetryPolicy",
    "disableSubscriptionOverrides",
    "defaultThrottlePolicy",
    "defaultRequestPolicy",
)
_SUBSCRIPTION_KEYS: Final = (
    "healthyRetryPolicy",
    "sicklyRetryPolicy",
    "throttlePolicy",
    "requestPolicy",
    "guaranteed",
)


@dataclass(frozen=True)
class RetryPolicy:
    """A complete retry policy and the schedule it defines (see the module doc)."""

    min_delay_target: int = 20
    max_delay_target: int = 20
    num_retries: int = 3
    num_no_delay_retries: int = 0
    num_min_delay_retries: int = 0
    num_max_delay_retries: int = 0
    backoff_function: str = "linear"

    @property
    def num_backoff_retries(self) -> int:
        """Retries in the backoff phase: `numRetries` less the other phases."""
        return (
            self.num_retries
            - self.num_no_delay_retries
            - self.num_min_delay_retries
            - self.num_max_delay_retries
        )

    def delay(self, retry: int) -> float | None:
        """
        Seconds to wait before retry number `retry` (1 = the first retry, after
        the initial attempt failed); None once the policy has no retry left.
        """
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, not {retry}")
        if retry > self.num_retries:
            return None
        index = retry - 1
        if index < self.num_no_delay_retries:
            return 0.0
        index -= self.num_no_delay_retries
        if index < self.num_min_delay_retries:
            return float(self.min_delay_target)
        index -= self.num_min_delay_retries
        backoff = self.num_backoff_retries
        if index < backoff:
            return _curve(
                self.backoff_function,
                self.min_delay_target,
                self.max_delay_target,
                index,
                backoff - 1,
            )
        return float(self.max_delay_target)

    def delays(self) -> tuple[float, ...]:
        """The delay before each retry, in order."""
        return tuple(
            d
            for d in (self.delay(r) for r in range(1, self.num_retries + 1))
            if d is not None
        )

    def to_json(self) -> dict[str, Any]:
        """The policy as SNS prints it in an `EffectiveDeliveryPolicy`."""
        return {
            "minDelayTarget": self.min_delay_target,
            "maxDelayTarget": self.max_delay_target,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay_retries,
            "numNoDelayRetries": self.num_no_delay_retries,
            "numMinDelayRetries": self.num_min_delay_retries,
            "backoffFunction": self.backoff_function,
        }


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@dataclass(frozen=True)
class RetrySpec:
    """A retry policy as set: the fields given, None for the others."""

    min_delay_target: int | None = None
    max_delay_target: int | None = None
    num_retries: int | None = None
    num_max_delay_retries: int | None = None
    num_no_delay_retries: int | None = None
    num_min_delay_retries: int | None = None
    backoff_function: str | None = None

    def fields(self) -> dict[str, Any]:
        """All seven fields in SNS's order, None where not given."""
        return dict(
            zip(
                _RETRY_FIELDS,
                (
                    self.min_delay_target,
                    self.max_delay_target,
                    self.num_retries,
                    self.num_max_delay_retries,
                    self.num_no_delay_retries,
                    self.num_min_delay_retries,
                    self.backoff_function,
                ),
                strict=True,
            )
        )

    def given(self) -> dict[str, Any]:
        """The fields given, in SNS's order."""
        return {k: v for k, v in self.fields().items() if v is not None}

    def policy(self) -> RetryPolicy:
        """The complete policy: SNS's defaults for the fields not given."""
        d = DEFAULT_RETRY_POLICY
        return RetryPolicy(
            min_delay_target=_or(self.min_delay_target, d.min_delay_target),
            max_delay_target=_or(self.max_delay_target, d.max_delay_target),
            num_retries=_or(self.num_retries, d.num_retries),
            num_no_delay_retries=_or(self.num_no_delay_retries, d.num_no_delay_retries),
            num_min_delay_retries=_or(
                self.num_min_delay_retries, d.num_min_delay_retries
            ),
            num_max_delay_retries=_or(
                self.num_max_delay_retries, d.num_max_delay_retries
            ),
            backoff_function=self.backoff_function or d.backoff_function,
        )


@dataclass(frozen=True)
class TopicPolicy:
    """A parsed topic `DeliveryPolicy` (its `http` section)."""

    has_http: bool = False
    healthy_retry_policy: RetrySpec | None = None
    sickly_retry_policy: RetrySpec | None = None
    disable_subscription_overrides: bool = False
    max_receives_per_second: int | None = None
    header_content_type: str | None = None


@dataclass(frozen=True)
class SubscriptionPolicy:
    """A parsed subscription `DeliveryPolicy`."""

    healthy_retry_policy: RetrySpec | None = None
    sickly_retry_policy: RetrySpec | None = None
    max_receives_per_second: int | None = None
    header_content_type: str | None = None
    guaranteed: bool = False


@dataclass(frozen=True)
class HttpDeliveryPolicy:
    """What the delivery engine follows for one HTTP/S subscription."""

    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    max_receives_per_second: int | None = None
    content_type: str = DEFAULT_CONTENT_TYPE

    @property
    def max_attempts(self) -> int:
        """The initial attempt and every retry."""
        return 1 + self.retry.num_retries

    def retry_delay(self, attempt: int) -> float | None:
        """
        Seconds to wait before the next attempt after `attempt` failed attempts
        (1 after the initial attempt failed); None when retries are exhausted.
        """
        return self.retry.delay(attempt)


DEFAULT_HTTP_POLICY: Final = HttpDeliveryPolicy()


# --- parsing and validation -------------------------------------------------


def parse_topic_policy(text: str) -> TopicPolicy:
    """
    Parse and check a topic `DeliveryPolicy`. ValueError's text follows SNS's
    (e.g. `http.defaultHealthyRetryPolicy.numRetries must be less than or equal
    to 100`); the caller prefixes `Invalid parameter: DeliveryPolicy: `.
    """
    data = _object(_load(text), "")
    _known(data, ("http",), "")
    http = _section(data.get("http"), "http")
    if http is None:
        return TopicPolicy(has_http="http" in data)
    _known(http, _TOPIC_KEYS, "http.")
    return TopicPolicy(
        has_http=True,
        healthy_retry_policy=_retry(
            http.get("defaultHealthyRetryPolicy"), "http.defaultHealthyRetryPolicy"
        ),
        sickly_retry_policy=_retry(
            http.get("defaultSicklyRetryPolicy"), "http.defaultSicklyRetryPolicy"
        ),
        disable_subscription_overrides=_bool(
            http.get("disableSubscriptionOverrides"),
            "http.disableSubscriptionOverrides",
        ),
        max_receives_per_second=_throttle(
            http.get("defaultThrottlePolicy"), "http.defaultThrottlePolicy"
        ),
        header_content_type=_request(
            http.get("defaultRequestPolicy"), "http.defaultRequestPolicy"
        ),
    )


def parse_subscription_policy(text: str) -> SubscriptionPolicy:
    """Parse and check a subscription `DeliveryPolicy`; ValueError as for topics."""
    data = _object(_load(text), "")
    _known(data, _SUBSCRIPTION_KEYS, "")
    return SubscriptionPolicy(
        healthy_retry_policy=_retry(
            data.get("healthyRetryPolicy"), "healthyRetryPolicy"
        ),
        sickly_retry_policy=_retry(data.get("sicklyRetryPolicy"), "sicklyRetryPolicy"),
        max_receives_per_second=_throttle(data.get("throttlePolicy"), "throttlePolicy"),
        header_content_type=_request(data.get("requestPolicy"), "requestPolicy"),
        guaranteed=_bool(data.get("guaranteed"), "guaranteed"),
    )


def normalize_topic_policy(text: str) -> str:
    """Check a topic `DeliveryPolicy` and return it as SNS stores and returns it."""
    return _dumps(_topic_stored(parse_topic_policy(text)))


def normalize_subscription_policy(text: str) -> str:
    """Check a subscription `DeliveryPolicy`; return it as SNS stores and returns it."""
    policy = parse_subscription_policy(text)
    return _dumps(
        {
            "healthyRetryPolicy": _spec_fields(policy.healthy_retry_policy),
            "sicklyRetryPolicy": _spec_fields(policy.sickly_retry_policy),
            "throttlePolicy": _throttle_json(policy.max_receives_per_second),
            "requestPolicy": _request_json(policy.header_content_type),
            "guaranteed": policy.guaranteed,
        }
    )


# --- effective policies -----------------------------------------------------


@dataclass(frozen=True)
class _Effective:
    retry: RetryPolicy
    sickly: RetryPolicy | None
    max_receives_per_second: int | None
    content_type: str
    guaranteed: bool


def effective_topic_policy(topic_attr: str | None) -> str:
    """The topic's `EffectiveDeliveryPolicy` (GetTopicAttributes), as SNS prints it."""
    topic = _load_stored(parse_topic_policy, topic_attr) or TopicPolicy()
    http: dict[str, Any] = {
        "defaultHealthyRetryPolicy": _spec_policy(topic.healthy_retry_policy).to_json()
    }
    if topic.sickly_retry_policy is not None:
        http["defaultSicklyRetryPolicy"] = topic.sickly_retry_policy.policy().to_json()
    http["disableSubscriptionOverrides"] = topic.disable_subscription_overrides
    if topic.max_receives_per_second is not None:
        http["defaultThrottlePolicy"] = _throttle_json(topic.max_receives_per_second)
    http["defaultRequestPolicy"] = _request_json(
        topic.header_content_type or DEFAULT_CONTENT_TYPE
    )
    return _dumps({"http": http})


def effective_subscription_policy(topic_attr: str | None, sub_attr: str | None) -> str:
    """A subscription's `EffectiveDeliveryPolicy` (GetSubscriptionAttributes)."""
    eff = _effective(topic_attr, sub_attr)
    return _dumps(
        {
            "healthyRetryPolicy": eff.retry.to_json(),
            "sicklyRetryPolicy": None if eff.sickly is None else eff.sickly.to_json(),
            "throttlePolicy": _throttle_json(eff.max_receives_per_second),
            "requestPolicy": _request_json(eff.content_type),
            "guaranteed": eff.guaranteed,
        }
    )


def resolve(topic_attr: str | None, sub_attr: str | None) -> HttpDeliveryPolicy:
    """
    The policy one HTTP/S subscription is delivered under, from the stored topic
    and subscription `DeliveryPolicy` values (None or "" when not set).
    """
    eff = _effective(topic_attr, sub_attr)
    return HttpDeliveryPolicy(
        retry=eff.retry,
        max_receives_per_second=eff.max_receives_per_second,
        content_type=eff.content_type,
    )


def _effective(topic_attr: str | None, sub_attr: str | None) -> _Effective:
    topic = _load_stored(parse_topic_policy, topic_attr) or TopicPolicy()
    sub = _load_stored(parse_subscription_policy, sub_attr) or SubscriptionPolicy()
    # With overrides disabled the topic's sections win; `guaranteed` is the
    # subscription's own flag either way.
    own = SubscriptionPolicy() if topic.disable_subscription_overrides else sub
    healthy = _first(own.healthy_retry_policy, topic.healthy_retry_policy)
    sickly = _first(own.sickly_retry_policy, topic.sickly_retry_policy)
    return _Effective(
        retry=_spec_policy(healthy),
        sickly=None if sickly is None else sickly.policy(),
        max_receives_per_second=_first(
            own.max_receives_per_second, topic.max_receives_per_second
        ),
        content_type=_first(own.header_content_type, topic.header_content_type)
        or DEFAULT_CONTENT_TYPE,
        guaranteed=sub.guaranteed,
    )


# --- the backoff curves -----------------------------------------------------


def _curve(function: str, low: int, high: int, index: int, steps: int) -> float:
    """
    Delay at `index` (0..steps) of a backoff curve from `low` (index 0) to
    `high` (index `steps`); `low` throughout when there is no step.
    """
    if steps <= 0 or low == high:
        return float(low)
    if index >= steps:
        return float(high)
    if function == "geometric":
        return float(low * (high / low) ** (index / steps))
    num, den = _fraction(function, index, steps)
    return low + (high - low) * num / den


def _curve_floor(function: str, low: int, high: int, index: int, steps: int) -> int:
    """`_curve` rounded down, in integers where the curve is rational (as SNS)."""
    if steps <= 0 or low == high:
        return low
    if function == "geometric":
        return math.floor(_curve(function, low, high, index, steps))
    num, den = _fraction(function, index, steps)
    return low + (high - low) * num // den


def _fraction(function: str, index: int, steps: int) -> tuple[int, int]:
    """How far along (numerator, denominator) index `index` of `steps` is."""
    if function == "arithmetic":
        return index * (index + 1), steps * (steps + 1)
    if function == "exponential":
        return 2**index - 1, 2**steps - 1
    return index, steps  # linear


def _checked_total(policy: RetryPolicy) -> int:
    """The policy's length in seconds as SNS's 3,600 s check counts it."""
    n = policy.num_backoff_retries
    low, high = policy.min_delay_target, policy.max_delay_target
    backoff = sum(
        _curve_floor(policy.backoff_function, low, high, k, n) for k in range(n)
    )
    return (
        policy.num_min_delay_retries * low
        + backoff
        + policy.num_max_delay_retries * high
    )


# --- helpers ----------------------------------------------------------------


def _load(text: str) -> Any:
    try:
        return safejson.loads(text)
    except safejson.JsonInputError:
        raise ValueError("failed to parse JSON") from None


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path or 'the policy'} must be a JSON object")
    return value


def _section(value: Any, path: str) -> dict[str, Any] | None:
    """A nested object, or None for null / absent."""
    return None if value is None else _object(value, path)


def _known(data: dict[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in keys:
            raise ValueError(f"invalid JSON. Attribute {prefix}{key} is unknown.")


def _bool(value: Any, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{path} must be a boolean")
    return value


def _int(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path} must be an integer")
    return value


def _retry(value: Any, path: str) -> RetrySpec | None:
    data = _section(value, path)
    if data is None:
        return None
    _known(data, _RETRY_FIELDS, f"{path}.")
    ints = {f: _int(data.get(f), f"{path}.{f}") for f in _RETRY_FIELDS[:-1]}
    function = data.get("backoffFunction")
    if function is not None and function not in BACKOFF_FUNCTIONS:
        raise ValueError(
            f"{path}.backoffFunction must be one of {', '.join(BACKOFF_FUNCTIONS)}"
        )
    for field in _REQUIRED_FIELDS:
        if ints[field] is None:
            raise ValueError(f"{path}.{field} must be specified")
    spec = RetrySpec(
        min_delay_target=ints["minDelayTarget"],
        max_delay_target=ints["maxDelayTarget"],
        num_retries=ints["numRetries"],
        num_max_delay_retries=ints["numMaxDelayRetries"],
        num_no_delay_retries=ints["numNoDelayRetries"],
        num_min_delay_retries=ints["numMinDelayRetries"],
        backoff_function=function,
    )
    _check_limits(spec.policy(), path)
    return spec


def _check_limits(p: RetryPolicy, path: str) -> None:
    if p.min_delay_target < 1:
        raise ValueError(f"{path}.minDelayTarget must be greater than or equal to 1")
    if p.max_delay_target > MAX_DELAY_TARGET:
        raise ValueError(
            f"{path}.maxDelayTarget must be less than or equal to {MAX_DELAY_TARGET}"
        )
    if p.max_delay_target < p.min_delay_target:
        raise ValueError(
            f"{path}.maxDelayTarget must be greater than or equal to minDelayTarget"
        )
    if p.num_retries < 0:
        raise ValueError(f"{path}.numRetries must be greater than or equal to 0")
    if p.num_retries > MAX_RETRIES:
        raise ValueError(
            f"{path}.numRetries must be less than or equal to {MAX_RETRIES}"
        )
    counts = {
        "numNoDelayRetries": p.num_no_delay_retries,
        "numMinDelayRetries": p.num_min_delay_retries,
        "numMaxDelayRetries": p.num_max_delay_retries,
    }
    for field in _PHASE_FIELDS:
        if counts[field] < 0:
            raise ValueError(f"{path}.{field} must be greater than or equal to 0")
    if p.num_backoff_retries < 0:
        raise ValueError(
            f"{path}.numRetries must be greater than or equal to total of"
            " numMinDelayRetries, numNoDelayRetries and numMaxDelayRetries"
        )
    if _checked_total(p) > MAX_POLICY_SECONDS:
        raise ValueError(
            f"{path}: total retry period must be less than or equal to"
            f" {MAX_POLICY_SECONDS} seconds"
        )


def _throttle(value: Any, path: str) -> int | None:
    data = _section(value, path)
    if data is None:
        return None
    _known(data, ("maxReceivesPerSecond",), f"{path}.")
    rate = _int(data.get("maxReceivesPerSecond"), f"{path}.maxReceivesPerSecond")
    if rate is not None and rate < 1:
        raise ValueError(
            f"{path}.maxReceivesPerSecond must be greater than or equal to 1"
        )
    return rate


def _request(value: Any, path: str) -> str | None:
    data = _section(value, path)
    if data is None:
        return None
    _known(data, ("headerContentType",), f"{path}.")
    content_type = data.get("headerContentType")
    if content_type is None:
        return None
    if not isinstance(content_type, str):
        raise ValueError(f"{path}.headerContentType must be a string")
    match = _CONTENT_TYPE.fullmatch(content_type)
    if match is None or match.group(1).lower() not in CONTENT_TYPES:
        raise ValueError(f"{path}.headerContentType must be a supported content type")
    return content_type


_T = TypeVar("_T")


def _load_stored(parse: Callable[[str], _T], text: str | None) -> _T | None:
    """A stored value parsed, or None when unset or (unexpectedly) invalid."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def _topic_stored(topic: TopicPolicy) -> dict[str, Any]:
    if not topic.has_http:
        return {}
    http: dict[str, Any] = {}
    if topic.healthy_retry_policy is not None:
        http["defaultHealthyRetryPolicy"] = topic.healthy_retry_policy.given()
    if topic.sickly_retry_policy is not None:
        http["defaultSicklyRetryPolicy"] = topic.sickly_retry_policy.given()
    http["disableSubscriptionOverrides"] = topic.disable_subscription_overrides
    if topic.max_receives_per_second is not None:
        http["defaultThrottlePolicy"] = _throttle_json(topic.max_receives_per_second)
    if topic.header_content_type is not None:
        http["defaultRequestPolicy"] = _request_json(topic.header_content_type)
    return {"http": http}


def _spec_policy(spec: RetrySpec | None) -> RetryPolicy:
    return DEFAULT_RETRY_POLICY if spec is None else spec.policy()


def _spec_fields(spec: RetrySpec | None) -> dict[str, Any] | None:
    return None if spec is None else spec.fields()


def _throttle_json(rate: int | None) -> dict[str, Any] | None:
    return None if rate is None else {"maxReceivesPerSecond": rate}


def _request_json(content_type: str | None) -> dict[str, Any] | None:
    return None if content_type is None else {"headerContentType": content_type}


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _first(own: _T | None, inherited: _T | None) -> _T | None:
    """The subscription's section if it set one, else the topic's."""
    return inherited if own is None else own


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))
