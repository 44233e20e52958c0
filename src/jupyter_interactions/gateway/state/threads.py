"""Thread heads: the interaction a kernel's named thread continues from. The rule that moves a
head (`protocol.moves_head`) is applied here and only here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypedDict

from ...errors import NotFoundError
from ...protocol import moves_head, now
from .store import Store


class ThreadHead(TypedDict):
    """A thread as `PUT /sessions/{key}/threads/{name}` answers it."""

    name: str
    head: str | None
    model: str | None
    agent: str | None
    turns: int
    updated: str


class Threads:
    """Each session's named threads and their heads."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def advance(
        self, session: str, name: str, interaction: dict[str, Any], status: str, turns: int
    ) -> asyncio.Future[Any] | None:
        """After a turn ends with `status`: it becomes the thread's head if the rule says so
        (the write is queued at once; the future is its commit)."""
        if not moves_head(status):
            return None
        return self.store.set_thread(
            session,
            name,
            interaction["id"],
            interaction.get("model"),
            interaction.get("agent"),
            turns,
            interaction["updated"],
        )

    async def point(self, session: str, name: str, head: str | None) -> Mapping[str, Any]:
        """Set a thread's head by hand (the kernel's `%ai thread` commands): an interaction this
        gateway keeps, or None to start the thread afresh."""
        if head is None:
            await self.store.set_thread(session, name, None, None, None, 0, now())
            return {"name": name, "head": None}
        chain = await self.store.chain(head)
        if not chain or chain[-1]["id"] != head:
            raise NotFoundError(f"interaction {head!r} not found; it cannot be a thread head")
        resource = chain[-1]["resource"]
        thread: ThreadHead = {
            "name": name,
            "head": head,
            "model": resource.get("model"),
            "agent": resource.get("agent"),
            "turns": len(chain),
            "updated": now(),
        }
        await self.store.set_thread(
            session, name, head, thread["model"], thread["agent"], len(chain), thread["updated"]
        )
        return thread

    async def delete(self, session: str, name: str | None = None) -> None:
        """Forget one thread of a session, or all of them."""
        await self.store.delete_threads(session, name)
