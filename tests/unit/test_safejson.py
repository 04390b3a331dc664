"""The guarded JSON parser for client input (pushgw/safejson.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pushgw import safejson
from pushgw.safejson import MAX_DEPTH, JsonInputError

TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def reason(text: str | bytes, **kwargs: Any) -> str:
    with pytest.raises(JsonInputError) as info:
        safejson.loads(text, **kwargs)
    return info.value.reason


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{",
        "[1,]",
        "{'a': 1}",
        '{"a" 1}',
        "[1] [2]",
        "NaN",
        "[Infinity]",
        '{"a": -Infinity}',
        "1" * 5_000,  # past Python's int digit limit: a ValueError of another kind
        "\ufeff[]",
    ],
)
def test_malformed_json_is_refused(text: str) -> None:
    """Malformed (and Python-only) JSON raises JsonInputError "not valid JSON"."""
    assert "not valid JSON" == reason(text)


@pytest.mark.parametrize(
    "raw", [b"\xff", b'"\xff"', b"[\xc3\x28]", b'{"a": "\xed\xa0\x80"}', b"\x80[]"]
)
def test_invalid_utf8_bytes_are_refused(raw: bytes) -> None:
    """Bytes that are not valid UTF-8 are malformed JSON, not a UnicodeDecodeError."""
    assert "not valid JSON" == reason(raw)


def test_valid_documents_parse() -> None:
    """Scalars, objects, arrays and bytes parse as json.loads would; last key wins."""
    assert 1 == safejson.loads("1")
    assert {"a": [1, 2.5, None, True]} == safejson.loads('{"a": [1, 2.5, null, true]}')
    assert {"a": "é"} == safejson.loads('{"a": "é"}'.encode())
    assert {"a": 2} == safejson.loads('{"a": 1, "a": 2}')


@pytest.mark.parametrize("nest", [arrays, objects])
def test_depth_at_the_limit_passes_and_one_more_is_refused(nest: Any) -> None:
    """MAX_DEPTH levels parse; MAX_DEPTH + 1 is refused, naming the limit."""
    assert safejson.loads(nest(MAX_DEPTH)) is not None

    assert TOO_DEEP == reason(nest(MAX_DEPTH + 1))


@pytest.mark.parametrize("nest", [arrays, objects])
def test_custom_max_depth(nest: Any) -> None:
    """`max_depth` moves the limit; bytes are held to it too."""
    assert safejson.loads(nest(3), max_depth=3) is not None

    assert "nested deeper than 3 levels" == reason(nest(4), max_depth=3)
    assert "nested deeper than 3 levels" == reason(nest(4).encode(), max_depth=3)


@pytest.mark.parametrize("depth", [900, 100_000])
@pytest.mark.parametrize("nest", [arrays, objects])
def test_very_deep_input_is_refused_without_recursion_error(
    nest: Any, depth: int
) -> None:
    """Deeper than the limit (walked) or than Python's stack (RecursionError) alike."""
    assert TOO_DEEP == reason(nest(depth))


def test_mixed_nesting_counts_the_deepest_branch() -> None:
    """Depth is the deepest path, whatever the shape of the other branches."""
    wide = "[" + ",".join(["[]"] * 1_000) + "]"
    deep = f'{{"wide": {wide}, "deep": {arrays(MAX_DEPTH)}}}'

    assert 1_000 == len(safejson.loads(wide))
    assert TOO_DEEP == reason(deep)


def test_the_common_case_does_not_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few brackets in the text: the tree walk is skipped; many: it runs."""
    walks: list[int] = []
    real = safejson._depth_exceeds

    def counting(data: Any, max_depth: int) -> bool:
        walks.append(max_depth)
        return real(data, max_depth)

    monkeypatch.setattr(safejson, "_depth_exceeds", counting)
    few = '{"aps": {"alert": {"title": "t", "body": "b"}}, "ids": [1, 2]}'
    brackets_in_strings = '{"text": "' + "[{" * 1_000 + '"}'

    safejson.loads(few)
    assert [] == walks
    assert {"text": "[{" * 1_000} == safejson.loads(brackets_in_strings)
    assert [MAX_DEPTH] == walks


def test_error_is_a_value_error() -> None:
    """Callers that catch ValueError keep working."""
    assert issubclass(JsonInputError, ValueError)
    assert "not valid JSON" == str(JsonInputError("not valid JSON"))


def test_random_input_never_raises_anything_else() -> None:
    """Random bytes and mutations of a valid document: only JsonInputError, ever."""
    rng = random.Random(20_240_601)
    seed = b'{"default": "d", "APNS": "{\\"aps\\": {}}", "a": [1, 2.5e3, null]}'
    samples = [rng.randbytes(rng.randint(0, 40)) for _ in range(500)]
    for _ in range(500):
        mutated = bytearray(seed)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    for sample in samples:
        for text in (sample, sample.decode("latin-1")):
            try:
                safejson.loads(text)
            except JsonInputError:
                pass
