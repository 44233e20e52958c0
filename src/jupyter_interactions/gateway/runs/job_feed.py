"""Each session's background jobs as a stream of changes: `GET /v1/sessions/{key}/events`.

The engine hands the feed each background job it starts. The feed hears every batch of the
job's events as it is shown to followers (`Run.watchers`) and publishes the job's row when
the row changes: a new job or a new status at once, progress (steps, tokens) at most once a
`PROGRESS_SECONDS` per job. A follower first gets the session's jobs as they are now
(`session.jobs`), then each change (`job.updated`); it waits on a future, nobody polls.

Event ids are `se_<epoch>_<n>`, numbered per session within one gateway process; the random
epoch tells a resume after a gateway restart from one within this process. A resume within
the last `KEEP` changes replays what was missed; any other starts again from `session.jobs`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ...protocol import total_tokens
from ..state.store import Store
from .run import Run

KEEP = 256  # changes kept per session, for resume
# se_<epoch: 8 hex digits>_<n>; 18 digits always fit an int64
EVENT_ID = re.compile(r"se_([0-9a-f]{8})_([0-9]{1,18})", re.ASCII)
PROGRESS_SECONDS = 1.0


class JobRow(TypedDict):
    """One background job as a notebook's job board shows it."""

    id: str
    status: str | None
    thread: str | None
    model: str | None
    agent: str | None
    created: str | None
    updated: str | None
    steps: int
    tokens: int
    environment_id: str | None


def job_row(
    resource: dict[str, Any], thread: str | None, steps: int, usage: dict[str, Any] | None
) -> JobRow:
    return {
        "id": resource["id"],
        "status": resource.get("status"),
        "thread": thread,
        "model": resource.get("model"),
        "agent": resource.get("agent"),
        "created": resource.get("created"),
        "updated": resource.get("updated"),
        "steps": steps,
        "tokens": total_tokens(usage),
        "environment_id": resource.get("environment_id"),
    }


def _live_row(run: Run) -> JobRow:
    return job_row(run.resource, run.row.get("thread"), len(run.emitter.steps), run.emitter.usage)


def _frame(event: dict[str, Any]) -> str:
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['event_type']}\nid: {event['event_id']}\ndata: {data}\n\n"


@dataclass
class _Session:
    seq: int = 0
    log: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=KEEP))
    changed: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.changed is not None and not self.changed.done():
            self.changed.set_result(None)
        self.changed = None


class JobFeed:
    def __init__(self, store: Store, runs: dict[str, Run]) -> None:
        self.epoch = secrets.token_hex(4)
        self._store = store
        self._runs = runs  # the engine's running interactions, by id
        self._sessions: dict[str, _Session] = {}
        self._shown: dict[str, JobRow] = {}  # the last row published of each running job
        self._later: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    # -- publishing ----------------------------------------------------------------------------

    def watch(self, run: Run, session: str) -> None:
        """Publish `run`'s row (a background job of `session`) whenever it changes."""
        run.watchers.append(lambda shown: self._changed(session, shown))

    def _changed(self, key: str, run: Run) -> None:
        row, before = _live_row(run), self._shown.get(run.id)
        if row == before:
            return
        if before is None or row["status"] != before["status"] or run.ended:
            self._publish(key, run, row)
        elif run.id not in self._later:  # progress: one row a PROGRESS_SECONDS at most
            loop = asyncio.get_running_loop()
            self._later[run.id] = loop.call_later(PROGRESS_SECONDS, self._progress, key, run)

    def _progress(self, key: str, run: Run) -> None:
        self._later.pop(run.id, None)
        row = _live_row(run)
        if row != self._shown.get(run.id):
            self._publish(key, run, row)

    def _publish(self, key: str, run: Run, row: JobRow) -> None:
        timer = self._later.pop(run.id, None)
        if timer is not None:
            timer.cancel()
        if run.ended:
            self._shown.pop(run.id, None)
        else:
            self._shown[run.id] = row
        session = self._sessions.setdefault(key, _Session())
        session.seq += 1
        event = {"event_type": "job.updated", "event_id": self._event_id(session.seq), "job": row}
        session.log.append((session.seq, _frame(event)))
        session.wake()

    def close(self) -> None:
        """End every follower's stream (the gateway stops)."""
        self._closed = True
        for timer in self._later.values():
            timer.cancel()
        for session in self._sessions.values():
            session.wake()

    # -- following -----------------------------------------------------------------------------

    def _event_id(self, seq: int) -> str:
        return f"se_{self.epoch}_{seq}"

    def _resumes_at(self, session: _Session, last_event_id: str | None) -> int | None:
        """The seq to replay after, if `last_event_id` is one of this process still kept."""
        match = EVENT_ID.fullmatch(last_event_id or "")
        if match is None or match[1] != self.epoch or int(match[2]) > session.seq:
            return None
        seq = int(match[2])
        oldest = session.log[0][0] if session.log else session.seq + 1
        return seq if seq >= oldest - 1 else None

    async def rows(self, key: str) -> list[JobRow]:
        """The session's jobs as they are now: running ones from memory, the rest stored."""
        rows: list[JobRow] = []
        for job in (await self._store.session(key))["jobs"]:
            run = self._runs.get(job["id"])
            if run is not None:
                rows.append(_live_row(run))
            else:
                rows.append(job_row(job, job["thread"], job["steps"], job.get("usage")))
        return rows

    async def follow(self, key: str, last_event_id: str | None) -> AsyncIterator[list[str]]:
        """SSE frames: `session.jobs` unless resuming, then each change, until the gateway
        stops (or the client goes)."""
        session = self._sessions.setdefault(key, _Session())
        position = self._resumes_at(session, last_event_id)
        if position is None:
            position = session.seq  # the snapshot holds everything up to here
            jobs = await self.rows(key)
            event = {"event_type": "session.jobs", "event_id": self._event_id(position)}
            yield [_frame({**event, "jobs": jobs})]
        while True:
            missed = [frame for seq, frame in session.log if seq > position]
            if missed:
                position = session.seq
                yield missed
                continue
            if self._closed:
                return
            if session.changed is None:
                session.changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(session.changed)
