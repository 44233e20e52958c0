"""The rules for single values the routes share: ids, names, flags, page tokens, event ids,
file paths and numbers in a range. Each returns the value as the gateway uses it, or raises
a RequestError that names the field and says what to send instead."""

from __future__ import annotations

import math
import re
from typing import Any

from ...errors import RequestError
from .strict_json import INT64_MAX

__all__ = [
    "MAX_PAGE",
    "event_seq",
    "file_path",
    "flag",
    "name",
    "number",
    "page_size",
    "page_token",
    "resource_id",
]

MAX_PAGE = 1000
# Our ids (int_…, env_…, upload_…) and custom agent ids all fit this; so do Google's.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)
_EVENT_ID = re.compile(r"ev_([0-9]{1,18})", re.ASCII)  # 18 digits always fit an int64
_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
# Linux limits: a path is at most PATH_MAX bytes, and each part of it NAME_MAX bytes.
PATH_MAX, NAME_MAX = 4096, 255


def resource_id(value: Any, field: str, what: str) -> str:
    """An interaction, agent, environment or upload id as it appears in a path or body."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    raise RequestError(
        f"{field}: {_shown(value)} is not {what} id (letters, digits, '-', '_' and '.', at "
        "most 128, as the gateway gave it)",
        field=field,
    )


def name(value: str, field: str, limit: int) -> str:
    """A session key or thread name: 1 to `limit` characters, none of them control ones."""
    if not value or len(value) > limit or _CONTROL.search(value):
        raise RequestError(
            f"{field}: {_shown(value)} must be 1 to {limit} printable characters", field=field
        )
    return value


def flag(value: str | None, field: str) -> bool:
    """A query flag: true/false (or 1/0); absent is false."""
    if value is None:
        return False
    parsed = _FLAGS.get(value.strip().lower())
    if parsed is None:
        raise RequestError(f"{field} must be true or false, not {_shown(value)}", field=field)
    return parsed


def page_size(value: str | None, field: str = "page_size") -> int:
    """A page size: a positive number; more than MAX_PAGE gives MAX_PAGE, as Google's do."""
    if value is None or value == "":
        return 50
    if not _DIGITS.fullmatch(value.strip()):
        raise RequestError(
            f"{field} must be a whole number from 1 to {MAX_PAGE}, not {_shown(value)}",
            field=field,
        )
    return min(max(1, int(value)), MAX_PAGE)


def page_token(
    value: str | None, field: str = "page_token", answer: str = "next_page_token"
) -> int:
    """The offset a next page token of this gateway carries (absent or empty: the start);
    `answer` is the name the previous page gave it under."""
    if value is None or value.strip() == "":
        return 0
    if not _DIGITS.fullmatch(value.strip()) or int(value) > 2**31:
        raise RequestError(
            f"{field} {_shown(value)} is not one this gateway gave; pass the "
            f"{answer} of the previous page, or none for the first",
            field=field,
        )
    return int(value)


def event_seq(value: str | None) -> int:
    """The sequence number of a `last_event_id` (`ev_12` -> 12); absent is 0."""
    if not value:
        return 0
    match = _EVENT_ID.fullmatch(value)
    if match is None:
        raise RequestError(
            f"last_event_id {_shown(value)} is not an event id of this gateway (they look like "
            "'ev_12'); pass the event_id of the last event you received",
            field="last_event_id",
        )
    return int(match[1])


def file_path(value: Any, field: str) -> str:
    """A path in an environment, as sent: text, within Linux's path and name lengths. (The
    environment checks that it stays inside its root.)"""
    if not isinstance(value, str):
        raise RequestError(f"{field} must be a string path, e.g. 'workspace/data.csv'", field=field)
    if _CONTROL.search(value):
        raise RequestError(f"{field}: a file path cannot hold control characters", field=field)
    if len(value.encode()) > PATH_MAX:
        raise RequestError(f"{field}: a file path is at most {PATH_MAX} bytes", field=field)
    longest = max((len(part.encode()) for part in value.split("/")), default=0)
    if longest > NAME_MAX:
        raise RequestError(
            f"{field}: a file or folder name is at most {NAME_MAX} bytes (one here is "
            f"{longest}); use a shorter name",
            field=field,
        )
    return value


def number(value: Any, field: str, low: float, high: float, *, whole: bool = False) -> float:
    """A finite number from `low` to `high`, given as a JSON number or (int64 style) as a
    string; `whole` asks for an integer."""
    parsed: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        parsed = value
    elif isinstance(value, str) and len(value) <= 32:
        try:
            parsed = int(value) if whole else float(value)
        except ValueError:
            parsed = None
    if whole and isinstance(parsed, float):
        parsed = int(parsed) if parsed.is_integer() else None
    if parsed is None or not math.isfinite(parsed) or not low <= parsed <= high:
        kind = "a whole number" if whole else "a number"
        raise RequestError(
            f"{field} must be {kind} from {_bound(low)} to {_bound(high)}, not {_shown(value)}",
            field=field,
        )
    return parsed


def _bound(limit: float) -> str:
    return "2^63-1" if limit == INT64_MAX else f"{limit:g}"


def _shown(value: Any) -> str:
    """A value quoted for a message, cut short: it may be long, or not text at all."""
    text = repr(value)
    return text if len(text) <= 64 else text[:60] + "...'"
