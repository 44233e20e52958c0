"""A background job's card: its status, the server's times, and its transcript, folded when long.

The times are the server's (`created`, `updated` of the interaction), never how long this
kernel has been following it: a card saved while the job ran says when it started and as of
when it was drawn, which stays true after the kernel is gone. Long transcripts fold into a
`<details>` block (Markdown) and a cut text/plain that gives the size of the rest.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..protocol import SETTLED
from .bundle import provenance
from .transcript import Transcript

FOLD_CHARS = 2000  # Markdown longer than this (or FOLD_LINES lines) folds into <details>
FOLD_LINES = 30
PLAIN_CHARS = 1000  # text/plain keeps this much of a long transcript


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time from the wire (`2026-06-01T12:00:00Z`), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run_seconds(transcript: Transcript, now: datetime | None = None) -> float | None:
    """Seconds on the server: from creation to the last update once ended, else to now."""
    created = parse_time(transcript.created)
    if created is None:
        return None
    ended = parse_time(transcript.updated) if _ended(transcript) else None
    end = ended or now or datetime.now(timezone.utc)
    return max(0.0, (end - created).total_seconds())


def job_card(
    transcript: Transcript, *, job_id: str, thread: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """What a job's view shows, running or ended. Why it ended stays outside the fold."""
    blocks = [_header(transcript, job_id, thread, now)]
    body = transcript.markdown(note=False)
    if body:
        blocks.append(_fold_markdown(body, len(transcript.plain(note=False))))
    note = transcript.note()
    if note:
        blocks.append(note[0])
    return {"text/markdown": "\n\n".join(blocks), "text/plain": _summary(transcript, thread)}


def job_final(
    transcript: Transcript, *, job_id: str, thread: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ended job's lasting display, with provenance."""
    lines = [_summary(transcript, thread)]
    body = transcript.plain(note=False)
    if body:
        lines.append(_fold_plain(body))
    note = transcript.note()
    if note:
        lines.append(note[1])
    data = {"text/markdown": job_card(transcript, job_id=job_id, thread=thread)["text/markdown"]}
    data["text/plain"] = "\n".join(lines)
    return data, provenance(transcript, thread=thread, interaction_ids=[job_id])


def _ended(transcript: Transcript) -> bool:
    return transcript.status in SETTLED


def _summary(transcript: Transcript, thread: str | None) -> str:
    who = transcript.agent or transcript.model or "?"
    return f"Job {who} in thread {thread!r}: {transcript.status or 'queued'}"


def _header(transcript: Transcript, job_id: str, thread: str | None, now: datetime | None) -> str:
    who = transcript.agent or transcript.model
    steps = f"{transcript.steps} step" + ("" if transcript.steps == 1 else "s")
    parts = [f"**Job** `{job_id}`", f"{who}", f"thread `{thread}`"]
    parts += [f"**{transcript.status or 'queued'}**", steps]
    created = parse_time(transcript.created)
    if created is not None:
        parts.append(f"started {created:%Y-%m-%d %H:%M:%S} UTC")
    seconds = run_seconds(transcript, now)
    if _ended(transcript) and seconds is not None:
        parts.append(f"took {_duration(seconds)}")
    elif not _ended(transcript):
        # A snapshot: a saved card of a running job says when it was drawn.
        parts.append(f"as of {now or datetime.now(timezone.utc):%H:%M:%S} UTC")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _fold_markdown(body: str, characters: int) -> str:
    if len(body) <= FOLD_CHARS and body.count("\n") < FOLD_LINES:
        return body
    summary = f"<summary>Transcript ({characters:,} characters): show</summary>"
    # Blank lines around the body: Markdown inside an HTML block is parsed only so.
    return f"<details>{summary}\n\n{body}\n\n</details>"


def _fold_plain(text: str) -> str:
    if len(text) <= PLAIN_CHARS:
        return text
    cut = text.rfind("\n", 0, PLAIN_CHARS)
    if cut < PLAIN_CHARS // 2:
        cut = PLAIN_CHARS
    return f"{text[:cut]}\n… ({len(text) - cut:,} more characters)"
