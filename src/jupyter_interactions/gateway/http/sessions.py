"""Routes of a kernel's session, keyed by notebook path or kernel id: its thread heads, its
background jobs, and the stream of their changes."""

from __future__ import annotations

from . import requests as routes
from .base import BaseHandler

# -- sessions: thread heads and jobs, keyed by notebook path or kernel id ------------------------


class SessionHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(await self.state.store.session(routes.session(self.request, key)))


class SessionEventsHandler(BaseHandler):
    """The session's background jobs (`session.jobs`), then each change (`job.updated`), as
    SSE; resumed after `last_event_id` (query) or `Last-Event-ID` (header)."""

    async def get(self, key: str) -> None:
        follow = routes.session_events(self.request, key)
        await self.send_events(self.engine.job_feed.follow(follow.session, follow.last_event_id))


class ThreadsHandler(BaseHandler):
    async def delete(self, key: str) -> None:
        await self.send_deleted(self.state.threads.delete(routes.session(self.request, key)))


class ThreadHandler(BaseHandler):
    async def put(self, key: str, name: str) -> None:
        wanted = routes.put_thread(self.request, key, name)
        self.send_json(await self.state.threads.point(wanted.session, wanted.name, wanted.head))

    async def delete(self, key: str, name: str) -> None:
        await self.send_deleted(self.state.threads.delete(*routes.thread(self.request, key, name)))
