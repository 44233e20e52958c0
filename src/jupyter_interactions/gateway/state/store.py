"""The gateway's durable state: SQLite (WAL) holding interactions, their event logs,
session threads and jobs, agents and environments.

All SQLite work runs on one dedicated thread that owns the connection, so the event loop
never blocks and writes are ordered. Writes are queued and committed in batches: every
write submitted during one loop tick (and while a previous batch is committing) goes into
a single transaction. That is what makes thousands of events per second cheap while each
event is still on disk before anyone is told about it.

No SQLite object ever leaves that thread: a write or read hands back plain values only.
A cursor of `executemany` keeps the connection's cached statement; freed on the event
loop's thread, it resets that statement while this thread runs the next `executemany` with
it, which then fails with "bad parameter or other API misuse" (issue 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from ...errors import GatewayError

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.store")

SCHEMA_VERSION = 1
DB_NAME = "gateway.sqlite3"
RUNNING = ("queued", "in_progress")
RESTARTED_ERROR = {
    "code": "gateway_restarted",
    "message": "the gateway stopped while this interaction was running; start it again",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS interactions (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    previous_id TEXT,
    upstream_id TEXT,
    session TEXT,
    thread TEXT,
    resource TEXT NOT NULL,
    input TEXT
);
CREATE TABLE IF NOT EXISTS events (
    interaction_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (interaction_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS threads (
    session TEXT NOT NULL,
    name TEXT NOT NULL,
    head TEXT,
    model TEXT,
    agent TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL,
    PRIMARY KEY (session, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    thread TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_session ON jobs (session, created);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    resource TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS environments (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    resource TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS environment_variables (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    resource TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_tokens (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    resource TEXT NOT NULL
);
"""

Write = Callable[[sqlite3.Connection], Any]
T = TypeVar("T")
# What a write or read may hand back to the event loop: nothing that holds SQLite state.
_SQLITE_OBJECTS = (sqlite3.Cursor, sqlite3.Connection)
# Plain JSON resources by id. environment_variables are never served: they may be secrets;
# auth_tokens are keyed by the SHA-256 of the token (auth_tokens.py), never the token.
RESOURCE_TABLES = ("agents", "environments", "environment_variables", "auth_tokens")


class ChainLink(TypedDict):
    """One stored interaction of a conversation: what continuing from it needs."""

    id: str
    resource: dict[str, Any]  # the interaction as the wire shows it
    input: Any  # the request's input, as sent
    previous_id: str | None
    upstream_id: str | None  # its id on Google's service, when it ran there


class InteractionRow(ChainLink):
    """A stored interaction, with the kernel session and thread that made it."""

    session: str | None
    thread: str | None


class Store:
    """Async facade over one SQLite database; every method is safe to await from the loop."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> list[str]:
        """Open (creating if needed) and recover; returns ids marked failed by recovery."""
        self._loop = asyncio.get_running_loop()
        return await self._call(self._open)

    def _open(self) -> list[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Conversations and sandbox variables are in here: readable by this user only
        # (SQLite gives the -wal and -shm files the database's permissions).
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer jupyter-interactions (schema {row[0]}); "
                "upgrade, or point --data-dir elsewhere"
            )
        self._conn = conn
        return self._recover(conn)

    def _recover(self, conn: sqlite3.Connection) -> list[str]:
        """Interactions left running by a gateway that died end failed, with a terminal event
        so that a client attached to their stream ends cleanly."""
        rows = conn.execute(
            "SELECT id, resource FROM interactions WHERE status IN (?, ?)", RUNNING
        ).fetchall()
        failed = []
        conn.execute("BEGIN")
        for interaction_id, resource_json in rows:
            resource = json.loads(resource_json)
            resource["status"] = "failed"
            resource["errors"] = [*resource.get("errors", []), RESTARTED_ERROR]
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE interaction_id = ?",
                (interaction_id,),
            ).fetchone()
            seq = last + 1
            error_event = {
                "event_type": "error",
                "event_id": f"ev_{seq}",
                "error": RESTARTED_ERROR,
            }
            completed = {
                "event_type": "interaction.completed",
                "event_id": f"ev_{seq + 1}",
                "interaction": {
                    "id": interaction_id,
                    "status": "failed",
                    "usage": resource.get("usage", {}),
                },
            }
            _insert_events(
                conn,
                interaction_id,
                [(seq, json.dumps(error_event)), (seq + 1, json.dumps(completed))],
            )
            conn.execute(
                "UPDATE interactions SET status = 'failed', resource = ? WHERE id = ?",
                (json.dumps(resource), interaction_id),
            )
            failed.append(interaction_id)
        conn.execute("COMMIT")
        return failed

    async def close(self) -> None:
        await self.flush()
        self.closed = True
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        await asyncio.to_thread(self._executor.shutdown, True)

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, _plain, fn, *args
            )
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc

    def _unusable(self, exc: BaseException) -> BaseException:
        """A SQLite failure (disk full, I/O error) as the error a client is answered with."""
        if not isinstance(exc, sqlite3.Error):
            return exc
        return GatewayError(
            f"the gateway could not use its database {self.path} ({exc}); free disk space "
            "or fix that directory's permissions, then try again"
        )

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # Reads go through the same thread, after any queued writes: read-your-writes.
        await self.flush()
        return await self._call(fn, self._conn)

    def submit(self, write: Write) -> asyncio.Future[Any]:
        """Queue a write; the future resolves once it is committed. Never blocks."""
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.closed:
            future.set_exception(GatewayError("the gateway is stopping; try again"))
            return future
        self._pending.append((write, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._start_flush)
        return future

    async def flush(self) -> None:
        if self._pending or self._flushing:
            await self.submit(lambda conn: None)

    def _start_flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        writes = [w for w, _ in batch]
        commit = loop.run_in_executor(self._executor, self._commit, writes)
        commit.add_done_callback(lambda done: self._finish_flush(done, batch))

    def _commit(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        conn = self._conn
        assert conn is not None
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN")
            for write in writes:
                conn.execute("SAVEPOINT one")
                try:
                    results.append((True, _plain(write, conn)))
                    conn.execute("RELEASE one")
                except Exception as exc:  # one bad write must not lose the rest of the batch
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            # A full disk or an I/O error fails the whole transaction; leave none open, or
            # every later BEGIN would fail too.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return results

    def _finish_flush(
        self, done: asyncio.Future[list[tuple[bool, Any]]], batch: list[tuple[Write, Any]]
    ) -> None:
        exc = done.exception()
        if exc is not None:
            log.error("could not commit %d write(s) to %s: %s", len(batch), self.path, exc)
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            if exc is not None:
                future.set_exception(self._unusable(exc))
                continue
            ok, value = done.result()[index]
            if ok:
                future.set_result(value)
            else:
                future.set_exception(self._unusable(value))
        if self._pending:
            self._start_flush()
        else:
            self._flushing = False

    # -- interactions --------------------------------------------------------------------------

    def save_interaction(self, row: dict[str, Any]) -> asyncio.Future[Any]:
        """Insert or replace an interaction row (keys as the table's columns)."""
        values = _row_values(row)
        return self.submit(lambda conn: _save_row(conn, values))

    def append_events(
        self,
        interaction_id: str,
        events: list[tuple[int, str]],
        *,
        row: dict[str, Any] | None = None,
        after_seq: int | None = None,
    ) -> asyncio.Future[None]:
        """Store `events` (seq, JSON) in one go, with the interaction's `row` if given (a last
        batch and the final row are stored together or not at all). `after_seq` first drops
        any stored event past it: a log closed early must not keep events nobody was shown."""
        values = _row_values(row) if row is not None else None

        def write(conn: sqlite3.Connection) -> None:
            if after_seq is not None:
                conn.execute(
                    "DELETE FROM events WHERE interaction_id = ? AND seq > ?",
                    (interaction_id, after_seq),
                )
            _insert_events(conn, interaction_id, events)
            if values is not None:
                _save_row(conn, values)

        return self.submit(write)

    async def get_interaction(self, interaction_id: str) -> InteractionRow | None:
        def read(conn: sqlite3.Connection) -> InteractionRow | None:
            row = _interaction_row(conn, interaction_id)
            if row is None:
                return None
            return {**_link(interaction_id, row), "session": row[4], "thread": row[5]}

        return await self._read(read)

    async def chain(self, interaction_id: str, limit: int = 10_000) -> list[ChainLink]:
        """The interaction and its ancestors, oldest first. Stops at a missing link, which the
        caller sees as a chain whose first element has a previous_id."""

        def read(conn: sqlite3.Connection) -> list[ChainLink]:
            out: list[ChainLink] = []
            current: str | None = interaction_id
            while current and len(out) < limit:
                row = _interaction_row(conn, current)
                if row is None:
                    break
                out.append(_link(current, row))
                current = row[2]
            out.reverse()
            return out

        return await self._read(read)

    async def events_after(self, interaction_id: str, after_seq: int) -> list[str]:
        return await self._read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT data FROM events WHERE interaction_id = ? AND seq > ? ORDER BY seq",
                    (interaction_id, after_seq),
                )
            ]
        )

    def delete_interaction(self, interaction_id: str) -> asyncio.Future[Any]:
        def write(conn: sqlite3.Connection) -> int:
            _changed(conn, "DELETE FROM events WHERE interaction_id = ?", (interaction_id,))
            _changed(conn, "DELETE FROM jobs WHERE id = ?", (interaction_id,))
            return _changed(conn, "DELETE FROM interactions WHERE id = ?", (interaction_id,))

        return self.submit(write)

    # -- sessions: threads and jobs ------------------------------------------------------------

    def set_thread(
        self,
        session: str,
        name: str,
        head: str | None,
        model: str | None,
        agent: str | None,
        turns: int,
        updated: str,
    ) -> asyncio.Future[Any]:
        values = (session, name, head, model, agent, turns, updated)
        return self.submit(
            lambda conn: _changed(
                conn, "INSERT OR REPLACE INTO threads VALUES (?,?,?,?,?,?,?)", values
            )
        )

    def delete_threads(self, session: str, name: str | None = None) -> asyncio.Future[Any]:
        if name is None:
            return self.submit(
                lambda conn: _changed(conn, "DELETE FROM threads WHERE session = ?", (session,))
            )
        return self.submit(
            lambda conn: _changed(
                conn, "DELETE FROM threads WHERE session = ? AND name = ?", (session, name)
            )
        )

    def add_job(
        self, interaction_id: str, session: str, thread: str | None, created: str
    ) -> asyncio.Future[Any]:
        values = (interaction_id, session, thread, created)
        return self.submit(
            lambda conn: _changed(conn, "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?)", values)
        )

    async def session(self, key: str) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            threads = [
                {
                    "name": r[0],
                    "head": r[1],
                    "model": r[2],
                    "agent": r[3],
                    "turns": r[4],
                    "updated": r[5],
                }
                for r in conn.execute(
                    "SELECT name, head, model, agent, turns, updated FROM threads "
                    "WHERE session = ? ORDER BY name",
                    (key,),
                )
            ]
            jobs = []
            for r in conn.execute(
                "SELECT j.id, j.thread, j.created, i.resource FROM jobs j "
                "JOIN interactions i ON i.id = j.id WHERE j.session = ? "
                "ORDER BY j.created, j.rowid",
                (key,),
            ):
                resource = json.loads(r[3])
                jobs.append(
                    {
                        "id": r[0],
                        "status": resource.get("status"),
                        "thread": r[1],
                        "model": resource.get("model"),
                        "agent": resource.get("agent"),
                        "created": r[2],
                        "updated": resource.get("updated"),
                        "steps": len(resource.get("steps") or []),
                        "usage": resource.get("usage"),
                        "environment_id": resource.get("environment_id"),
                    }
                )
            return {"key": key, "threads": threads, "jobs": jobs}

        return await self._read(read)

    # -- agents and environments: plain JSON resources -----------------------------------------

    def put_resource(self, table: str, resource: dict[str, Any]) -> asyncio.Future[Any]:
        assert table in RESOURCE_TABLES
        values = (resource["id"], resource.get("created", ""), json.dumps(resource))
        return self.submit(
            lambda conn: _changed(conn, f"INSERT OR REPLACE INTO {table} VALUES (?,?,?)", values)
        )

    async def get_resource(self, table: str, resource_id: str) -> dict[str, Any] | None:
        assert table in RESOURCE_TABLES
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT resource FROM {table} WHERE id = ?", (resource_id,)
            ).fetchone()
        )
        return json.loads(row[0]) if row else None

    async def list_resources(self, table: str, offset: int, limit: int) -> list[dict[str, Any]]:
        assert table in RESOURCE_TABLES
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT resource FROM {table} ORDER BY created, id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    def delete_resource(self, table: str, resource_id: str) -> asyncio.Future[Any]:
        assert table in RESOURCE_TABLES
        return self.submit(
            lambda conn: _changed(conn, f"DELETE FROM {table} WHERE id = ?", (resource_id,))
        )


# -- on the store thread only ------------------------------------------------------------------


def _plain(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` here and refuse a result that holds SQLite state (see the module docstring)."""
    value = fn(*args)
    if isinstance(value, _SQLITE_OBJECTS):
        raise TypeError(f"a store call returned {type(value).__name__}; return plain values")
    return value


def _interaction_row(conn: sqlite3.Connection, interaction_id: str) -> tuple[Any, ...] | None:
    """One stored interaction as (resource, input, previous_id, upstream_id, session, thread):
    what `_link` reads, then where it was made; None if there is none."""
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT resource, input, previous_id, upstream_id, session, thread "
        "FROM interactions WHERE id = ?",
        (interaction_id,),
    ).fetchone()
    return row


def _link(interaction_id: str, row: tuple[Any, ...]) -> ChainLink:
    """An interaction read by `_interaction_row`: its link in a conversation."""
    return {
        "id": interaction_id,
        "resource": json.loads(row[0]),
        "input": json.loads(row[1]) if row[1] is not None else None,
        "previous_id": row[2],
        "upstream_id": row[3],
    }


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    """Run one statement; the number of rows it changed (its cursor is freed here)."""
    return conn.execute(sql, params).rowcount


def _insert_events(
    conn: sqlite3.Connection, interaction_id: str, events: list[tuple[int, str]]
) -> None:
    cursor = conn.executemany(
        "INSERT INTO events VALUES (?,?,?)", [(interaction_id, seq, data) for seq, data in events]
    )
    cursor.close()  # releases the cached statement now, on this thread


def _row_values(row: dict[str, Any]) -> tuple[Any, ...]:
    resource = row["resource"]
    return (
        row["id"],
        resource["status"],
        resource["created"],
        resource["updated"],
        row.get("previous_id"),
        row.get("upstream_id"),
        row.get("session"),
        row.get("thread"),
        json.dumps(resource),
        json.dumps(row.get("input")) if row.get("input") is not None else None,
    )


def _save_row(conn: sqlite3.Connection, values: tuple[Any, ...]) -> int:
    return _changed(
        conn, "INSERT OR REPLACE INTO interactions VALUES (?,?,?,?,?,?,?,?,?,?)", values
    )
