"""Recording one interaction: its events as they are published (with their timing), then its
final resource and the files its agent left, checked for secrets, as one cassette entry.

Ids are written as stable names (`$interaction`, `$previous`, `@<alias>` for an environment)
and timestamps are left out, so recording the same notebook twice gives the same text where
the answers are the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol

from ...errors import InteractionsError
from ...secret_scan import Finding, find_in_bytes, find_in_value
from .cassette import sha256
from .matching import Request, cell_label
from .player import substitute

_TIMESTAMPS = ("created", "updated")


class Followed(Protocol):
    """What the recorder reads of a run (runs/run.py's `Run`)."""

    id: str
    row: dict[str, Any]

    def follow(self, after_seq: int = 0) -> Any: ...
    def snapshot(self, include_input: bool = False) -> dict[str, Any]: ...


def _event(frame: str) -> dict[str, Any]:
    data = next(line[6:] for line in frame.splitlines() if line.startswith("data: "))
    return dict(json.loads(data))


def _timeless(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in _TIMESTAMPS}


async def follow_events(run: Followed) -> list[dict[str, Any]]:
    """Every event of the run, each with `at_ms` (milliseconds since the first), until it ends."""
    loop = asyncio.get_running_loop()
    started: float | None = None
    events: list[dict[str, Any]] = []
    async for frames in run.follow(0):
        now = loop.time()
        started = now if started is None else started
        for frame in frames:
            event = _event(frame)
            if isinstance(event.get("interaction"), dict):
                event["interaction"] = _timeless(event["interaction"])
            events.append({"at_ms": round((now - started) * 1000), **event})
    return events


class NotRecorded(InteractionsError):
    """An interaction that could not go into the cassette, and why."""


async def read_files(files: Any, max_bytes: int) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """An environment's files: the list an entry keeps and the blobs by digest. Files over
    `max_bytes` are listed as omitted, with their size."""
    listed: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for info in sorted(await files.list("", recursive=True), key=lambda i: i.path):
        if info.type != "file":
            continue
        if info.size > max_bytes:
            omitted = f"larger than cassette_max_file_bytes ({max_bytes})"
            listed.append({"omitted": omitted, "path": info.path, "size": info.size})
            continue
        data = await files.read(info.path)
        digest = sha256(data)
        blobs[digest] = data
        listed.append({"path": info.path, "sha256": digest, "size": len(data)})
    return listed, blobs


def entry_of(
    request: Request,
    run: Followed,
    events: list[dict[str, Any]],
    *,
    cell: str | None,
    environment_alias: str | None,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The cassette entry of a finished run, ids replaced by stable names."""
    resource = _timeless(run.snapshot())
    names = {run.id: "$interaction"}
    if run.row.get("previous_id"):
        names[str(run.row["previous_id"])] = "$previous"
    environment_id = resource.get("environment_id")
    if environment_id and environment_alias:
        names[str(environment_id)] = "@" + environment_alias
    entry: dict[str, Any] = {
        "cell": cell_label(cell),
        "events": substitute(events, names),
        "files": files,
        "key": request.key,
        "request": request.canonical,
        "resource": substitute(resource, names),
        "thread": request.position(),
    }
    if environment_alias and environment_id:
        entry["environment"] = "@" + environment_alias
    return entry


def check_secrets(
    entry: dict[str, Any], blobs: Mapping[str, bytes], known: Mapping[str, str]
) -> Finding | None:
    """The first secret the entry or its files would write, if any."""
    found = find_in_value({k: v for k, v in entry.items() if k != "files"}, known)
    if found is not None:
        return found
    paths = {f["sha256"]: f["path"] for f in entry["files"] if "sha256" in f}
    for digest, data in blobs.items():
        what = find_in_bytes(data, known)
        if what:
            return Finding(what, f"the agent's file {paths.get(digest, digest)}")
    return None
