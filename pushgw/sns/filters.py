"""
SNS subscription filter policies: parsed and checked once, against the scope
they will be used with (`FilterPolicyScope`), then matched against messages
with no further parsing.

AWS's rules, from the SNS Developer Guide (https://docs.aws.amazon.com/sns/latest/dg/):
- Keys are ANDed, the values of a key are ORed; `"$or": [{…}, {…}]` ORs whole
  sub-policies, at the top or inside a nested object (and-or-logic.html). As in
  Event Ruler (github.com/aws/event-ruler, README "$or"), `$or` is the
  operator only when its value is an array of two or more objects whose keys
  are not operator names; otherwise it is an ordinary key.
- MessageAttributes scope: no nesting ("Filter policy scope MessageAttributes
  does not support nested filter policy"); String, String.Array and Number
  attributes are compared, Binary ones never. "exists": false "only matches if
  at least one attribute is present. An empty set of attributes results in the
  filter not matching" (attribute-key-matching.html).
- MessageBody scope: the body must be a JSON object; nested policy objects
  descend into nested body objects, a body array matches if an element does,
  and keys are joined with dots on both sides, so `{"a.b": …}` and
  `{"a": {"b": …}}` are the same key (recorded against AWS by LocalStack,
  test_filter_policy_on_message_body_dot_attribute). Fields matched inside
  objects of different elements of one array never combine (Event Ruler's
  array consistency).
- `exists` works on leaves only; "exists": true needs a non-null, non-empty
  value (attribute-key-matching.html).
- Limits (subscription-filter-policy-constraints.html): at most 5 keys, where
  only keys holding an array count, not the objects above them (counted per
  expanded `$or` branch: inferred, the docs do not say); at most 150
  combinations, the product over the arrays of (values × nesting depth), with
  `$or` expanded and its branches summed (the docs' `3 x 4 x 2 x 3 = 72`
  example, and LocalStack's AWS-recorded `$or` cases: 152 and 160 refused, 150
  accepted); at most 256 KB. Wildcards (July 2025): at most 3 `*` a pattern, and
  a total complexity of 100, each key scoring (points of its patterns) × (its
  number of patterns), a single `*` 1 point, otherwise 3 points a `*` (from a
  third-party lab tested on AWS, not AWS's docs:
  https://chaosreload.github.io/aws-hands-on-lab/serverless/sns-message-filtering-operators).

Matching runs once per distinct policy and message, not once per subscriber:
the fan-out chunk caches the verdict (pushgw/delivery/chunk.py), and a message
body is parsed once per chunk (`ParsedBody`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgw import payload, safejson
from pushgw.model import Message, MessageAttribute
from pushgw.sns.filter_values import ValueTest, compile_values

MESSAGE_ATTRIBUTES = "MessageAttributes"
MESSAGE_BODY = "MessageBody"
SCOPES = (MESSAGE_ATTRIBUTES, MESSAGE_BODY)
DEFAULT_SCOPE = MESSAGE_ATTRIBUTES

MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_POLICY_BYTES = 256 * 1024
MAX_WILDCARD_COMPLEXITY = 100
# Without the limits (policies stored before they were enforced), `$or` still
# may not expand past this many branches: the expansion is exponential.
MAX_BRANCHES_UNCHECKED = 10_000

TOO_COMPLEX = "Filter policy is too complex"
NESTED = "Filter policy scope MessageAttributes does not support nested filter policy"
OR = "$or"
# Event Ruler's RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP: an object using one of
# these as a key is a match expression, so an array of them is not an `$or`.
RESERVED_KEYS = frozenset(
    {
        "equals",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
    }
)


class ScopeError(ValueError):
    """A policy its scope cannot carry. AWS words it without `FilterPolicy:`."""


def check_scope(value: str) -> str:
    """`value` if it is a FilterPolicyScope, else ValueError with AWS's text."""
    if value not in SCOPES:
        raise ValueError(
            f"Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
        )
    return value


def scope_of(attributes: Mapping[str, str]) -> str:
    """
    A subscription's scope. An unknown stored value (accepted before scopes were
    checked) reads as the default, which is how such subscriptions were matched.
    """
    value = attributes.get("FilterPolicyScope", DEFAULT_SCOPE)
    return value if value in SCOPES else DEFAULT_SCOPE


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One key holding an array: its path (split on dots for the body)."""

    path: tuple[str, ...]
    test: ValueTest
    depth: int


_Branch = tuple[_Leaf, ...]


class _Node:
    """A step of a body branch's key tree; `leaves` end here, as (bit, test)."""

    __slots__ = ("children", "leaves")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.leaves: list[tuple[int, ValueTest]] = []


@dataclass(frozen=True, slots=True)
class _BodyBranch:
    root: _Node
    full: int  # one bit per leaf
    absent_ok: int  # leaves satisfied when nothing is at their path


@dataclass(frozen=True, slots=True)
class Policy:
    """
    A checked, compiled filter policy for one scope: a disjunction of branches
    (`$or` expanded), each a conjunction of keys.
    """

    scope: str
    document: dict[str, Any]
    branches: tuple[_Branch, ...]
    body_branches: tuple[_BodyBranch, ...]


def parse_filter_policy(
    text: str, *, scope: str = DEFAULT_SCOPE, check_limits: bool = True
) -> Policy:
    """
    Parse, check and compile a FilterPolicy for `scope`.

    Args:
        text: the policy JSON.
        scope: MessageAttributes or MessageBody.
        check_limits: False skips the size, key, combination and wildcard
            limits: delivery uses it for policies stored before they applied.

    Raises:
        ScopeError: a nested policy for MessageAttributes.
        ValueError: anything else SNS refuses, with AWS's text where known.
    """
    check_scope(scope)
    if check_limits and len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise ValueError("Filter policy can not be larger than 256 KB")  # inferred
    try:
        document = safejson.loads(text)
    except safejson.JsonInputError:
        # Malformed and too deep alike: the client sees one reason (Subscribe).
        raise ValueError("failed to parse JSON") from None
    if not isinstance(document, dict) or not document:
        raise ValueError("must be a non-empty JSON object")
    limit = MAX_COMBINATIONS if check_limits else MAX_BRANCHES_UNCHECKED
    branches = tuple(_Compiler(scope, limit).object(document, (), 1))
    if check_limits:
        _check_limits(branches)
    return Policy(
        scope=scope,
        document=document,
        branches=branches,
        body_branches=tuple(_body_branch(b) for b in branches)
        if scope == MESSAGE_BODY
        else (),
    )


class _Compiler:
    """Walks a policy document into its `$or`-expanded branches."""

    def __init__(self, scope: str, max_branches: int) -> None:
        self.scope = scope
        # Every branch holds at least one key, so each adds at least one
        # combination: more branches than the combination limit is too complex,
        # and stopping there keeps the expansion from growing exponentially.
        self.max_branches = max_branches

    def object(
        self, document: dict[str, Any], prefix: tuple[str, ...], depth: int
    ) -> list[_Branch]:
        if not document:
            raise ValueError("Empty objects are not allowed")  # inferred
        branches: list[_Branch] = [()]
        for key, value in document.items():
            options = self._options(key, value, prefix, depth)
            branches = [b + o for b in branches for o in options]
            if len(branches) > self.max_branches:
                raise ValueError(TOO_COMPLEX)
        if depth > 1 and self.scope == MESSAGE_ATTRIBUTES:
            # After the walk: AWS reports what is wrong inside first (recorded:
            # {"key": {"suffix": "value"}} gets '"suffix" must be …').
            raise ScopeError(NESTED)
        return branches

    def _options(
        self, key: str, value: Any, prefix: tuple[str, ...], depth: int
    ) -> list[_Branch]:
        if key == OR and _is_or(value):
            return [b for element in value for b in self.object(element, prefix, depth)]
        if isinstance(value, dict):
            return self.object(value, prefix + self._steps(key), depth + 1)
        if isinstance(value, list):
            leaf = _Leaf(prefix + self._steps(key), compile_values(value), depth)
            return [(leaf,)]
        raise ValueError(f'"{key}" must be an object or an array')

    def _steps(self, key: str) -> tuple[str, ...]:
        # Attribute names are taken whole; body keys are dot-joined paths.
        return tuple(key.split(".")) if self.scope == MESSAGE_BODY else (key,)


def _is_or(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(e, dict) and not (e.keys() & RESERVED_KEYS) for e in value)
    )


def _check_limits(branches: tuple[_Branch, ...]) -> None:
    if any(len({leaf.path for leaf in branch}) > MAX_KEYS for branch in branches):
        raise ValueError(f"Filter policy can not have more than {MAX_KEYS} keys")
    combinations = 0
    for branch in branches:
        product = 1
        for leaf in branch:
            product *= leaf.test.count * leaf.depth
        combinations += product
    if combinations > MAX_COMBINATIONS:
        raise ValueError(TOO_COMPLEX)
    # Each key of the document once, however many branches repeat it.
    tests = {id(leaf.test): leaf.test for branch in branches for leaf in branch}
    if (
        sum(t.wildcard_points * t.wildcard_patterns for t in tests.values())
        > MAX_WILDCARD_COMPLEXITY
    ):
        raise ValueError(TOO_COMPLEX)


def _body_branch(branch: _Branch) -> _BodyBranch:
    root = _Node()
    absent_ok = 0
    for index, leaf in enumerate(branch):
        node = root
        for step in leaf.path:
            node = node.children.setdefault(step, _Node())
        bit = 1 << index
        node.leaves.append((bit, leaf.test))
        if leaf.test.absent_ok:
            absent_ok |= bit
    return _BodyBranch(root, (1 << len(branch)) - 1, absent_ok)


# -- matching ------------------------------------------------------------------


class ParsedBody:
    """
    A message body as MessageBody policies see it, parsed at most once however
    many subscriptions of a fan-out look at it. `value` is the JSON object, or
    None when the body is not one (which no MessageBody policy matches).
    """

    __slots__ = ("_parsed", "_text", "_value")

    def __init__(self, text: str | None) -> None:
        self._text = text
        self._parsed = False
        self._value: dict[str, Any] | None = None

    @property
    def value(self) -> dict[str, Any] | None:
        if not self._parsed:
            self._parsed = True
            if self._text is not None:
                try:
                    loaded = safejson.loads(self._text)
                except safejson.JsonInputError:
                    loaded = None
                self._value = loaded if isinstance(loaded, dict) else None
        return self._value


def message_body(message: Message) -> ParsedBody:
    """
    The body MessageBody filtering reads. For MessageStructure=json, AWS does
    not document which text it filters; LocalStack filters the text each
    protocol is sent, which for `application` subscriptions is the `default`
    key, so that is the one used here (not the platform-specific key, which
    would make the verdict depend on the endpoint's platform).
    """
    if message.structure != "json":
        return ParsedBody(message.body)
    structure = payload.parse_structure(message.body)
    default = structure.get("default") if structure is not None else None
    return ParsedBody(default if isinstance(default, str) else None)


def message_matches(
    policy: Policy,
    attributes: Mapping[str, MessageAttribute],
    body: ParsedBody | str,
) -> bool:
    """
    Whether a message passes `policy`, in the policy's own scope.

    Args:
        policy: from `parse_filter_policy`.
        attributes: the message attributes (MessageAttributes scope).
        body: the body text, or a `ParsedBody` shared by a fan-out so the body
            is parsed once (MessageBody scope).
    """
    if policy.scope == MESSAGE_ATTRIBUTES:
        return matches(policy, attributes)
    parsed = body if isinstance(body, ParsedBody) else ParsedBody(body)
    document = parsed.value
    if document is None:
        return False
    return any(_body_branch_matches(b, document) for b in policy.body_branches)


def matches(policy: Policy, attributes: Mapping[str, MessageAttribute]) -> bool:
    """MessageAttributes matching: some branch has every key satisfied."""
    if not attributes:
        return False  # AWS: no attributes, no match, even for "exists": false
    values: dict[str, list[Any]] = {}
    for branch in policy.branches:
        for leaf in branch:
            name = leaf.path[0]
            if name not in values:
                values[name] = _attribute_values(attributes.get(name))
            present = values[name]
            if not (any(map(leaf.test, present)) if present else leaf.test.absent_ok):
                break
        else:
            return True
    return False


def _attribute_values(attribute: MessageAttribute | None) -> list[Any]:
    """
    An attribute's leaf values, as JSON would give them; [] for none (absent,
    Binary, or an unreadable value).
    """
    if attribute is None or attribute.data_type.startswith("Binary"):
        return []
    text = attribute.string_value or ""
    if attribute.data_type.startswith("String.Array"):
        try:
            # Checked at Publish; guarded again as a stored message is re-read.
            loaded = safejson.loads(text)
        except safejson.JsonInputError:
            return []
        if not isinstance(loaded, list):
            return []
        return [v for v in loaded if not isinstance(v, (list, dict))]
    if attribute.data_type.startswith("Number"):
        try:
            return [float(text)]
        except ValueError:
            return []
    return [text]


def _body_branch_matches(branch: _BodyBranch, document: dict[str, Any]) -> bool:
    walk = _Walk()
    found = walk.value(branch.root, document)
    missing = branch.absent_ok & ~walk.present
    family = (found,) if isinstance(found, int) else found
    return any((keys | missing) == branch.full for keys in family)


# What a walk finds below a node: the bit set of keys matched there, or, when
# array elements give alternatives, the family of sets that can match together.
# A plain int is the common case, kept apart so a body without arrays of
# objects allocates no sets.
_Found = int | set[int]


class _Walk:
    """
    One walk of a body against a branch's key tree. Objects join what their
    members found; elements of an array are alternatives, so keys matched
    inside different elements never combine (Event Ruler's array consistency),
    while plain values of one array all count at once. `present` records every
    key that has any leaf value, for `"exists": false`.
    """

    __slots__ = ("present",)

    def __init__(self) -> None:
        self.present = 0

    def value(self, node: _Node, value: Any) -> _Found:
        if isinstance(value, dict):
            return self._object(node, value)
        if isinstance(value, list):
            return self._array(node, value)
        return self.leaf(node, value)

    def _object(self, node: _Node, members: dict[str, Any]) -> _Found:
        keys = 0
        family: set[int] | None = None
        children = node.children
        for key, member in members.items():
            child = children.get(key)
            if child is None and "." in key:
                child = _descend(node, key)  # "a.b" is the same key as a → b
            if child is None:
                continue
            if isinstance(member, (dict, list)):
                found = self.value(child, member)
            elif child.leaves:
                found = self.leaf(child, member)
            else:
                continue  # a plain value where the policy wants an object
            if isinstance(found, int):
                keys |= found
            else:
                family = found if family is None else _join(family, found)
        return keys if family is None else _add(family, keys)

    def _array(self, node: _Node, elements: list[Any]) -> _Found:
        keys = 0
        alternatives: set[int] = set()
        for element in elements:
            if isinstance(element, (dict, list)):
                found = self.value(node, element)
                if isinstance(found, int):
                    alternatives.add(found)
                else:
                    alternatives |= found
            else:
                keys |= self.leaf(node, element)
        return _add(alternatives, keys) if alternatives else keys

    def leaf(self, node: _Node, value: Any) -> int:
        found = 0
        for bit, test in node.leaves:
            self.present |= bit
            if test(value):
                found |= bit
        return found


def _descend(node: _Node, key: str) -> _Node | None:
    current: _Node | None = node
    for step in key.split("."):
        current = current.children.get(step) if current is not None else None
    return current


def _add(family: set[int], keys: int) -> _Found:
    """`keys` joined to every member; a family of one collapses to its set."""
    if len(family) == 1:
        return next(iter(family)) | keys
    return _prune({member | keys for member in family})


def _join(left: set[int], right: set[int]) -> set[int]:
    return _prune({a | b for a in left for b in right})


def _prune(family: set[int]) -> set[int]:
    if len(family) > 8:
        # Keep only the largest sets: a subset of another can never do better.
        family = {m for m in family if not any(m != n and m & n == m for n in family)}
    return family
