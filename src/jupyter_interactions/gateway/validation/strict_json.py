"""Request bodies as strict JSON: UTF-8, nesting bounded before the parser can recurse,
finite numbers, integers an int64 holds, and no lone surrogates.

Python's `json` accepts `NaN`, `Infinity` and `1e999` (which becomes infinity), decodes
bytes with `surrogatepass`, and recurses once per level of nesting; each of those once
reached model code or the store. Here they are 400s that name the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from ...errors import RequestError

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_DEPTH", "field_name", "loads", "walk"]

# Google's service decodes JSON into protocol buffers, whose nesting limit is 100.
MAX_DEPTH = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused:
    """What the parser returns for a number that JSON cannot carry; found and named after."""

    def __init__(self, token: str, why: str) -> None:
        self.token = token
        self.why = why


def loads(raw: bytes) -> Any:
    """The JSON value of a request body, or a RequestError that says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the request body is not UTF-8 (byte {exc.start} is not); send JSON encoded as UTF-8"
        ) from None
    depth = nesting(text)
    if depth > MAX_DEPTH:
        raise RequestError(
            f"the request body nests {depth} levels deep; at most {MAX_DEPTH} are accepted"
        )
    refused: list[_Refused] = []
    try:
        value = json.loads(
            text,
            parse_constant=lambda token: _refuse(refused, token, "is not a JSON number"),
            parse_float=lambda token: _float(refused, token),
            parse_int=lambda token: _int(refused, token),
        )
    except ValueError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None
    if refused:
        path, bad = next((p, v) for p, v in walk(value) if isinstance(v, _Refused))
        raise RequestError(
            f"{field_name(path)}: {bad.token[:40]} {bad.why}; send a finite number "
            f"from {INT64_MIN} to {INT64_MAX} for integers",
            field=field_name(path),
        )
    if _SURROGATE_ESCAPE.search(text):
        for path, item in walk(value):
            if isinstance(item, str) and _LONE_SURROGATE.search(item):
                raise RequestError(
                    f"{field_name(path)} holds a lone UTF-16 surrogate (an unpaired \\ud800-"
                    "\\udfff escape), which is not text; send valid Unicode",
                    field=field_name(path),
                )
    return value


def nesting(text: str) -> int:
    """How deep arrays and objects nest in `text`, found without recursion and in linear
    time: escapes out, strings out, then a running sum over the brackets left. Exact for
    valid JSON, and never less than the depth the parser reaches before an error. When
    there are too few brackets to pass MAX_DEPTH, their count (a bound) is enough."""
    opened = text.count("[") + text.count("{")
    if opened <= MAX_DEPTH:
        return opened
    outside = _STRING.sub("", _ESCAPE.sub("", text))
    brackets = _NOT_BRACKET.sub("", outside)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _refuse(refused: list[_Refused], token: str, why: str) -> _Refused:
    marker = _Refused(token, why)
    refused.append(marker)
    return marker


def _float(refused: list[_Refused], token: str) -> float | _Refused:
    value = float(token)
    return value if math.isfinite(value) else _refuse(refused, token, "is out of range")


def _int(refused: list[_Refused], token: str) -> int | _Refused:
    # Bounded by length first: int() of a huge digit string is itself a ValueError.
    if len(token) > 20:
        return _refuse(refused, token, "is out of range")
    value = int(token)
    return value if INT64_MIN <= value <= INT64_MAX else _refuse(refused, token, "is out of range")


def walk(value: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, item) for `value` and everything inside it, keys included, without recursion."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            for key, child in item.items():
                yield (*path, key), key
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))


def field_name(path: tuple[Any, ...]) -> str:
    """A field path as a user writes it: input[0].content."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "the request body"
