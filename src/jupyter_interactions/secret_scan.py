"""What a secret looks like: the one scanner that cassettes, cells and saved notebooks use.

Both sides import it (the gateway before it writes a cassette, the kernel before a cell runs,
`jupyter-interactions check` on a saved notebook). A finding names what was found and where,
never the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Shapes of credentials that should never be written down, by what they are.
_SHAPES: tuple[tuple[str, str], ...] = (
    ("a Google API key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("a Google OAuth token", r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("an OpenAI-style API key", r"\bsk-[A-Za-z0-9_\-]{20,}"),
    ("a GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,}"),
    ("an AWS access key id", r"\bAKIA[0-9A-Z]{16}\b"),
    ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    ("an ephemeral auth token", r"\bauth_tokens/[0-9a-f]{64}\b"),
)
_TEXT_SHAPES = tuple((what, re.compile(pattern)) for what, pattern in _SHAPES)
_BYTE_SHAPES = tuple((what, re.compile(pattern.encode())) for what, pattern in _SHAPES)
# A key typed into a cell: `GEMINI_API_KEY = "..."`, `os.environ["GOOGLE_API_KEY"] = "..."`,
# `%env GEMINI_API_KEY=...` (a value read from elsewhere, e.g. os.environ[...], is fine).
_KEY_NAMES = r"(?:GEMINI|GOOGLE)_API_KEY"
_TYPED_KEY = re.compile(
    rf"""{_KEY_NAMES}["']?\]?\s*=\s*["'][^"'\s]{{8,}}|%env\s+{_KEY_NAMES}\s*[= ]\s*\S{{8,}}"""
)
# Known secrets shorter than this are not looked for: they would match ordinary text.
MIN_KNOWN_LENGTH = 6


@dataclass(frozen=True)
class Finding:
    """One secret found: what it is (e.g. "a Google API key") and where (e.g. "cell 3")."""

    what: str
    where: str

    def __str__(self) -> str:
        return f"{self.what} in {self.where}"


def find_in_text(text: str, known: Mapping[str, str] | None = None) -> str | None:
    """What secret `text` holds, if any: a known value (named by its key in `known`, e.g.
    "the gateway's Gemini key") or a credential's shape."""
    for name, value in (known or {}).items():
        if len(value) >= MIN_KNOWN_LENGTH and value in text:
            return name
    for what, pattern in _TEXT_SHAPES:
        if pattern.search(text):
            return what
    return None


def find_in_bytes(data: bytes, known: Mapping[str, str] | None = None) -> str | None:
    """`find_in_text` for a file's bytes, whatever their encoding."""
    for name, value in (known or {}).items():
        if len(value) >= MIN_KNOWN_LENGTH and value.encode() in data:
            return name
    for what, pattern in _BYTE_SHAPES:
        if pattern.search(data):
            return what
    return None


def typed_key(source: str) -> bool:
    """True if a cell's source sets a Gemini key to a literal value."""
    return _TYPED_KEY.search(source) is not None


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (keys too), with a path to it like `events[3].delta.text`."""
    if isinstance(value, str):
        yield where or "value", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}" if where else str(key), str(key)
            yield from strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")


def find_in_value(value: Any, known: Mapping[str, str] | None = None) -> Finding | None:
    """The first secret in any string of a JSON value, with where it is."""
    for where, text in strings(value):
        found = find_in_text(text, known)
        if found:
            return Finding(found, where)
    return None


def first(findings: Iterable[Finding | None]) -> Finding | None:
    return next((f for f in findings if f is not None), None)
