"""`/v1/sessions/{key}/cassette`: a session's record/replay mode, as the kernel sets and reads it.

PUT `{"mode": "record"|"replay"|"auto"|"off", "path": "/abs/analysis.interactions"}` sets it;
GET answers the state (mode, path, interactions held, problems) once the recordings of the
session's finished interactions are written.
"""

from __future__ import annotations

from . import requests as routes
from .base import BaseHandler


class CassetteHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(await self.state.cassettes.describe(routes.session(self.request, key)))

    async def put(self, key: str) -> None:
        choice = routes.set_cassette(self.request, key)
        self.send_json(await self.state.cassettes.set(choice.session, choice.mode, choice.path))
