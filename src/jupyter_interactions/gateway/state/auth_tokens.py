"""Ephemeral auth tokens (`client.interactions.auth_tokens`): short-lived credentials scoped to
one interaction, for browser clients, kept hashed and checked by `BaseHandler.authenticate`.

A token is `auth_tokens/<64 hex digits>`; only the SHA-256 of its hex part is stored. It is
accepted where the gateway token is (`x-goog-api-key`, `Authorization: Bearer`), but only on
the routes of its own interaction: reading it (`GET /interactions/{id}`, its event stream) and,
with scope `live`, its live WebSocket. It never creates, cancels or deletes anything, and never
mints or revokes tokens. It ends at its `expire_time` (default 30 minutes, at most 20 hours),
after its `uses` (requests, a live connection counting once; default no limit), or when
deleted. Naming a token in a delete revokes it whatever interaction the path names: the path
may end up in an access log, so a named token never stays valid.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ...errors import NotFoundError, RequestError
from ...protocol import timestamp
from .store import Store

PREFIX = "auth_tokens/"
TABLE = "auth_tokens"
DEFAULT_SECONDS = 30 * 60
MAX_SECONDS = 20 * 60 * 60
# What each scope may do: "read" follows the interaction; "live" also talks to it live.
SCOPES = {"read": frozenset({"read"}), "live": frozenset({"read", "live"})}
_FIELDS = ("expire_time", "scope", "uses")


@dataclass(frozen=True)
class Need:
    """What a request would do with an ephemeral token: `action` ("read" or "live") on
    `interaction_id` (None: any, checked once the request names it)."""

    action: str
    interaction_id: str | None = None


@dataclass
class Grant:
    """A stored token: its hash is the id; `uses` counts down (None: no limit)."""

    id: str
    interaction_id: str
    scope: str
    expires: float
    created: str
    uses: int | None = None

    def allows(self, need: Need) -> bool:
        return need.action in SCOPES[self.scope] and need.interaction_id in (
            None,
            self.interaction_id,
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.removeprefix(PREFIX).encode()).hexdigest()


def _expiry(value: Any, now: float) -> float:
    if value is None:
        return now + DEFAULT_SECONDS
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise RequestError(
            f"expire_time {value!r} is not an RFC 3339 time with a zone, such as "
            "'2026-10-23T17:00:00Z'"
        )
    expires = moment.timestamp()
    if not now < expires <= now + MAX_SECONDS:
        raise RequestError(
            "expire_time must be in the future and at most 20 hours away; leave it out for "
            "30 minutes"
        )
    return expires


def _uses(value: Any) -> int | None:
    if value is None:
        return None
    try:
        uses = int(value)
    except (TypeError, ValueError):
        uses = -1
    if uses < 0:
        raise RequestError(f"uses must be a whole number of requests (0: no limit), not {value!r}")
    return uses or None


class AuthTokens:
    """The gateway's ephemeral tokens: minted, checked (synchronously, from memory) and revoked;
    every change is written through to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._grants: dict[str, Grant] = {}

    async def load(self) -> None:
        now = time.time()
        for row in await self._store.list_resources(TABLE, 0, 1 << 31):
            grant = Grant(**row)
            if grant.expires > now:
                self._grants[grant.id] = grant
            else:
                self._store.delete_resource(TABLE, grant.id)

    async def create(self, interaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - set(_FIELDS))
        if unknown:
            raise RequestError(
                f"auth token field(s) {', '.join(unknown)} are not supported here; a token "
                f"takes {', '.join(_FIELDS)}"
            )
        scope = str(body.get("scope") or "live")
        if scope not in SCOPES:
            raise RequestError(
                f"scope {scope!r} is not one of {sorted(SCOPES)}: 'read' follows the "
                "interaction, 'live' also talks to it over interactions/live"
            )
        now = time.time()
        secret = secrets.token_hex(32)
        grant = Grant(
            id=_digest(secret),
            interaction_id=interaction_id,
            scope=scope,
            expires=_expiry(body.get("expire_time"), now),
            created=timestamp(now),
            uses=_uses(body.get("uses")),
        )
        await self._store.put_resource(TABLE, asdict(grant))
        self._grants[grant.id] = grant
        token = {"auth_token": PREFIX + secret, "expires_at": timestamp(grant.expires)}
        return {**token, "scope": scope, **({"uses": grant.uses} if grant.uses else {})}

    async def delete(self, interaction_id: str, token: str) -> None:
        grant = self._grants.pop(_digest(token), None)
        if grant is not None:
            await self._store.delete_resource(TABLE, grant.id)
        if grant is None or grant.interaction_id != interaction_id:
            raise NotFoundError(
                f"no auth token of interaction {interaction_id!r} matches; it expired, was "
                "deleted, or belongs to another interaction (if so, it is revoked now)"
            )

    def grant(self, offered: str, need: Need | None) -> Grant | None:
        """The grant `offered` carries if it allows `need` (counting one use), else None."""
        if need is None or not offered.startswith(PREFIX):
            return None
        grant = self._grants.get(_digest(offered))
        if grant is None:
            return None
        if grant.expires <= time.time():
            self._revoke(grant)
            return None
        if not grant.allows(need):
            return None
        if grant.uses is not None:
            grant.uses -= 1
            if grant.uses <= 0:
                self._revoke(grant)
            else:
                self._store.put_resource(TABLE, asdict(grant))
        return grant

    def _revoke(self, grant: Grant) -> None:
        self._grants.pop(grant.id, None)
        self._store.delete_resource(TABLE, grant.id)
