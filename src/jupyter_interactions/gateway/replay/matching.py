"""Which recording answers a request: its canonical form, its key, and the diff a request
with no match is refused with.

A request and a recording match when their keys are equal. The key hashes:
- the thread position: model or agent and input of each earlier turn of its chain;
- the request itself: model or agent, input (as steps), and every option that changes the
  answer (tools, system instruction, generation settings, agent config, response format,
  environment contents, ... : anything not listed in NOT_MATCHED, so a new option of the
  protocol is matched rather than ignored).
Ids (the interaction's, the previous one's, an environment's), timestamps and transport
flags are not matched. Environment variables and header transforms are secrets: their names
are matched, their values are never kept.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..runs.history import input_steps
from .cassette import Entry

NOT_MATCHED = frozenset(
    {
        "stream",
        "background",
        "store",
        "previous_interaction_id",
        "labels",
        "service_tier",
        "webhook_config",
    }
)
EXTERNAL = "@external"  # an environment id no interaction of this session produced
_DIFF_LINES = 40
_LINE_CHARS = 160


@dataclass(frozen=True)
class Request:
    """A request as matched: canonical form, the earlier turns of its thread, and its key."""

    canonical: dict[str, Any]
    thread: tuple[dict[str, Any], ...]
    key: str

    @property
    def turn(self) -> int:
        return len(self.thread) + 1

    @property
    def thread_digest(self) -> str:
        return _digest(list(self.thread))

    def position(self) -> dict[str, Any]:
        """The thread position as a cassette entry keeps it."""
        return {"digest": self.thread_digest, "turn": self.turn}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _who(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in ("model", "agent") if fields.get(k)}


def environment_shape(value: Any, aliases: Mapping[str, str]) -> Any:
    """An environment as matched and kept: ids as the alias of the turn that made them,
    variables by name only, header transforms without their values."""
    if isinstance(value, str):
        env_id = value.removeprefix("environments/")
        if env_id in aliases:
            return "@" + aliases[env_id]
        return value if value.isalpha() else EXTERNAL  # a keyword ("remote") stays
    if not isinstance(value, dict):
        return value
    shaped = dict(value)
    if shaped.get("environment_id"):
        shaped["environment_id"] = environment_shape(str(shaped["environment_id"]), aliases)
    if isinstance(shaped.get("env"), dict):
        shaped["env"] = dict.fromkeys(sorted(shaped["env"]), "***")
    network = shaped.get("network")
    if isinstance(network, dict) and isinstance(network.get("allowlist"), list):
        shaped["network"] = {
            **network,
            "allowlist": [_no_transform(e) for e in network["allowlist"]],
        }
    return shaped


def _no_transform(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("transform"), dict):
        return {**entry, "transform": dict.fromkeys(entry["transform"], "***")}
    return entry


def canonical(body: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a create body that decide its answer, in one normal form."""
    shaped: dict[str, Any] = {}
    for key, value in body.items():
        if key in NOT_MATCHED or value is None:
            continue
        if key == "input":
            value = input_steps(value)
        elif key == "environment":
            value = environment_shape(value, aliases)
        shaped[key] = value
    return shaped


def earlier_turn(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored turn of the chain as the thread position counts it: who, and the input."""
    return {**_who(row["resource"]), "input": input_steps(row.get("input"))}


def request_of(
    body: Mapping[str, Any], chain: Iterable[Mapping[str, Any]], aliases: Mapping[str, str]
) -> Request:
    """The request to match, from its body and its chain (oldest first, as the store gives)."""
    shaped = canonical(body, aliases)
    thread = tuple(earlier_turn(row) for row in chain)
    return Request(shaped, thread, _digest({"request": shaped, "thread": list(thread)}))


# -- the error for a request with no match ---------------------------------------------------


def cell_label(header: str | None) -> str | None:
    """'3 5b2f1c2a-...' (the cell header) as 'cell [3] (id 5b2f1c2a)'."""
    if not header:
        return None
    number, _, cell_id = header.strip().partition(" ")
    label = f"cell [{number}]" if number.isdigit() else f"cell {number!r}"
    return f"{label} (id {cell_id.strip()[:8]})" if cell_id.strip() else label


def _lines(value: Any) -> list[str]:
    text = json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False)
    return [
        line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 3] + "..."
        for line in text.splitlines()
    ]


def _likeness(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def no_match_message(
    request: Request,
    entries: Iterable[Entry],
    *,
    cell: str | None,
    cassette: str,
    resolve: Callable[[Any], Any],
) -> str:
    """Which cell asked, that nothing recorded matches, the nearest recording and a diff."""
    who = cell_label(cell) or "this request (from no known cell)"
    recorded = list(entries)
    head = f"{who}: no recorded interaction in {cassette} matches it, and replay never calls Google"
    advice = (
        "Undo the change, or record again: %interactions record, then re-run the notebook "
        "(with a key for Google's models)."
    )
    if not recorded:
        return f"{head}. The cassette is empty. {advice}"
    same_thread = [e for e in recorded if e.data["thread"]["digest"] == request.thread_digest]
    same_turn = [e for e in recorded if e.data["thread"]["turn"] == request.turn]
    mine = _lines(request.canonical)
    nearest = max(
        same_thread or same_turn or recorded,
        key=lambda e: _likeness(_lines(resolve(e.data["request"])), mine),
    )
    theirs = _lines(resolve(nearest.data["request"]))
    where = nearest.data.get("cell") or "no known cell"
    diff = list(
        difflib.unified_diff(
            theirs,
            mine,
            f"recorded (interaction {nearest.number:04d}, from {where})",
            "this request",
            lineterm="",
            n=1,
        )
    )
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"... ({len(diff) - _DIFF_LINES} more lines)"]
    if diff:
        parts = [f"{head}. The nearest recording differs:", *diff]
    else:
        parts = [f"{head}. Interaction {nearest.number:04d} (from {where}) asks the same."]
    if not same_thread:
        parts.append(
            f"It is turn {request.turn} of a thread whose earlier turns the recording does not "
            "have: an earlier cell of this thread changed, or ran in another order."
        )
    parts.append(advice)
    return "\n".join(parts)
