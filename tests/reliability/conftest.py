"""Helpers for the reliability suite: a raw SSE reader that records exactly what a client
received, the stored event log read straight from SQLite, and a gateway whose data dir is a
tiny tmpfs (a real full disk). Gateways come from tests/conftest.py's `start_gateway`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.conftest import GatewayProcess

API = "v1beta/interactions"


@dataclass(frozen=True)
class Received:
    """One SSE event as it arrived: its id (None for a notice outside the log) and data."""

    event_id: str | None
    event_type: str
    data: str

    @property
    def seq(self) -> int:
        assert self.event_id is not None
        return int(self.event_id.removeprefix("ev_"))

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.data)


def http(gateway: GatewayProcess) -> aiohttp.ClientSession:
    """A raw HTTP session for `gateway` (its token on every request)."""
    return aiohttp.ClientSession(
        base_url=gateway.url,
        headers={"x-goog-api-key": gateway.token},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
    )


class Frames:
    """Incremental SSE parsing: feed it bytes as they come, take the complete events. A
    frame cut off mid-way (a dropped connection) is never taken."""

    def __init__(self) -> None:
        self._buffer = b""
        self.done = False  # saw `data: [DONE]`

    def feed(self, chunk: bytes) -> list[Received]:
        self._buffer += chunk
        *frames, self._buffer = self._buffer.split(b"\n\n")
        events = []
        for frame in frames:
            fields = dict(
                (name, value.removeprefix(" "))
                for name, _, value in (line.partition(":") for line in frame.decode().split("\n"))
            )
            if fields.get("data") == "[DONE]":
                self.done = True
            elif "data" in fields:
                events.append(
                    Received(fields.get("id"), fields.get("event", "message"), fields["data"])
                )
        return events


async def sse(response: aiohttp.ClientResponse) -> AsyncIterator[Received]:
    """The events of an SSE response, up to `data: [DONE]` or the end of the body."""
    frames = Frames()
    async for chunk in response.content.iter_any():
        for event in frames.feed(chunk):
            yield event
        if frames.done:
            return


async def create(session: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    async with session.post(API, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def follow(
    session: aiohttp.ClientSession, interaction_id: str, last_event_id: str | None = None
) -> aiohttp.ClientResponse:
    """GET ...?stream=true (from `last_event_id`); the caller reads and releases it."""
    params = {"stream": "true"}
    if last_event_id:
        params["last_event_id"] = last_event_id
    response = await session.get(f"{API}/{interaction_id}", params=params)
    assert response.status == 200, await response.text()
    return response


async def read_all(
    session: aiohttp.ClientSession, interaction_id: str, last_event_id: str | None = None
) -> list[Received]:
    response = await follow(session, interaction_id, last_event_id)
    async with response:
        return [event async for event in sse(response)]


def stored_log(database: Path, interaction_id: str) -> list[tuple[int, str]]:
    """(seq, data) of every stored event of the interaction, read-only, in order."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT seq, data FROM events WHERE interaction_id = ? ORDER BY seq",
            (interaction_id,),
        ).fetchall()
    db.close()
    return rows


def integrity(database: Path) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (result,) = db.execute("PRAGMA integrity_check").fetchone()
    db.close()
    return str(result)


def assert_whole(log: list[tuple[int, str]]) -> None:
    """seq 1..n with no hole, each event carrying its own id, ending with the terminal one."""
    assert [seq for seq, _ in log] == list(range(1, len(log) + 1))
    assert all(json.loads(data)["event_id"] == f"ev_{seq}" for seq, data in log)
    assert json.loads(log[-1][1])["event_type"] == "interaction.completed"


# -- a real full disk ----------------------------------------------------------------------------


def tmpfs_prefix(data_dir: Path, size: str, filler_kib: int) -> list[str]:
    """A command prefix that runs the gateway in its own user and mount namespace with
    `data_dir` a tmpfs of `size`, holding a `filler` file of `filler_kib` KiB to delete when
    the test wants space back. Skips the test where namespaces or tmpfs are not allowed."""
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "--user", "--map-root-user", "--mount", "true"]
    if unshare is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("needs unshare with user and mount namespaces to mount a tmpfs")
    data_dir.mkdir(parents=True, exist_ok=True)
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$0" && '
        'head -c "$2" /dev/zero > "$0/filler" && shift 3 && exec "$@"'
    )
    return [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        str(data_dir),
        size,
        str(filler_kib * 1024),
        "--",
    ]


def inside(gateway: GatewayProcess, path: Path) -> Path:
    """`path` as the gateway sees it (its mount namespace), through /proc."""
    assert gateway.proc is not None
    return Path(f"/proc/{gateway.proc.pid}/root") / path.relative_to("/")


def copy_database(source_dir: Path, target_dir: Path) -> Path:
    """A copy of an idle gateway's database (with its WAL), to read where SQLite can: it
    resolves symbolic links in a path, so it cannot open one through /proc/PID/root."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = source_dir / f"gateway.sqlite3{suffix}"
        if source.exists():
            shutil.copyfile(source, target_dir / source.name)
    return target_dir / "gateway.sqlite3"
