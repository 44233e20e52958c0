"""Wire facts both sides share: interaction statuses, the rule for a thread's head, a step
result's text, timestamps, the HTTP statuses the google-genai SDK retries, JSON as strict as
the wire's, and the cell header and cassette folder of record and replay.

The kernel side and the gateway import these; neither keeps a copy. The gateway owns the
head rule (it stores the head), and the kernel follows the same rule for its local view, so
a refresh from the server never moves a head back.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

# An interaction in one of these has ended; nothing follows its interaction.completed event.
TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete", "budget_exceeded"})
# Waiting for the client (function results); the thread may go on from it.
PAUSED = frozenset({"requires_action"})
# Nothing more comes on its own: it ended, or it waits for the client. A job's wait, its
# stream and its elapsed time end here.
SETTLED = TERMINAL | PAUSED
# Stopped by a limit, not failed: what came is kept, with why it stopped, and the thread
# continues from it ("go on" is a natural next turn).
STOPPED_EARLY = {
    "incomplete": "stopped early: an output or step limit was reached; ask it to go on",
    "budget_exceeded": "stopped: the token budget was used up; raise it to go further",
}
# A turn that ended with one of these (and no error) becomes its thread's head.
ANSWERED = frozenset({"completed", *PAUSED, *STOPPED_EARLY})


def moves_head(status: str | None, has_error: bool = False) -> bool:
    """True if a turn that ended with `status` becomes its thread's new head."""
    return status in ANSWERED and not has_error


def total_tokens(usage: dict[str, Any] | None) -> int:
    """An interaction's tokens in all, from its `usage` (the total, else input + output)."""
    usage = usage or {}
    return int(
        usage.get("total_tokens")
        or (usage.get("total_input_tokens") or 0) + (usage.get("total_output_tokens") or 0)
    )


def result_text(result: Any, blocks_text: Callable[[list[Any]], str]) -> str:
    """The text of a step's `result` (a function's or code's output) as the wire carries it:
    a string as it is, a list of content blocks through `blocks_text` (each side reads blocks
    its own way: the gateway's text-only model is told what media it cannot see, a display
    joins the texts), any other JSON value dumped with sorted keys."""
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        return blocks_text(result)
    return json.dumps(result, sort_keys=True)


def timestamp(epoch: float) -> str:
    """`epoch` as the wire writes times (`created`, `updated`, `expire_time`): UTC, to the
    second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def now() -> str:
    """The present as the wire writes times."""
    return timestamp(time.time())


# google-genai retries these statuses, and every 5xx, for ~30 s before it raises (3.6.1:
# `_gaos` resources retry ["408", "409", "429", "5XX"]; the file transfers' classic client
# retries 408, 429, 500, 502, 503, 504). A permanent failure must answer something else.
SDK_RETRIED = frozenset({408, 409, 429})


def sdk_retries(status: int) -> bool:
    """True if the SDK would silently retry an answer with this HTTP status."""
    return status in SDK_RETRIED or status >= 500


def strict_loads(text: str | bytes) -> Any:
    """json.loads for JSON written by someone else (a model's tool-call arguments): NaN,
    Infinity and numbers that overflow to infinity are not JSON, and would make every
    answer that carries them unreadable. Raises ValueError for them, as for any bad JSON."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not a JSON value")

    def finite(token: str) -> float:
        value = float(token)
        return value if math.isfinite(value) else refuse(token)

    return json.loads(text, parse_constant=refuse, parse_float=finite)


# The cell a request came from, as the kernel side sends it to the gateway beside the session
# and thread headers: "<execution count> <cell id>" (the id when the front end gives one).
# Recordings keep it, and a replay that finds no match names it.
CELL_HEADER = "x-interactions-cell"

# Where a notebook's recorded interactions live: `analysis.ipynb` -> `analysis.interactions/`
# beside it (the kernel names it, the gateway writes and reads it).
CASSETTE_SUFFIX = ".interactions"


def notebook_cassette(notebook: str) -> str:
    """The cassette folder of a notebook path (`/work/a.ipynb` -> `/work/a.interactions`)."""
    path = PurePath(notebook)
    return str(path.with_name(path.stem + CASSETTE_SUFFIX))
