"""Auth shells: a route (base.BaseHandler) mounted behind the auth of whoever serves it.

`behind(shell, route)` puts a shell in front of a route, one class per pair; the shell
answers `authenticate()` and `auth_hint()`. `TokenAuth` is the standalone gateway's shell
(`with_token_auth`); the Jupyter server extension has its own, on jupyter_server's
(extension.ServerAuth).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import tornado.web

from .base import BaseHandler

__all__ = ["TokenAuth", "behind", "with_token_auth"]


class TokenAuth(BaseHandler):
    """The gateway's own token, as x-goog-api-key (the SDK's api_key) or Authorization:
    Bearer/token. Compared in constant time; never logged."""

    def authenticate(self) -> bool:
        expected = self.state.config.token
        if not expected:
            return False
        offered = self.request.headers.get("x-goog-api-key", "")
        if not offered:
            scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() in ("bearer", "token"):
                offered = value.strip()
        return hmac.compare_digest(offered.encode(), str(expected).encode())

    def auth_hint(self) -> str:
        return (
            "missing or wrong gateway token: pass it as api_key to genai.Client (it is in "
            "the gateway's runtime file, or printed by `jupyter-interactions serve`)"
        )

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no cookies, so no XSRF to check."""


_MOUNTED: dict[tuple[type, type], type] = {}


def behind(
    shell: type[tornado.web.RequestHandler],
    route: type[BaseHandler],
    methods: Mapping[str, Any] | None = None,
) -> type[tornado.web.RequestHandler]:
    """`route` with an auth shell in front of it (its HTTP methods replaced by `methods`, if
    given): one class per shell and route, however often it is mounted."""
    if (shell, route) not in _MOUNTED:
        namespace = {"__doc__": route.__doc__, **(methods or {})}
        _MOUNTED[shell, route] = type(route.__name__, (shell, route), namespace)
    return _MOUNTED[shell, route]


def with_token_auth(route: type[BaseHandler]) -> type[tornado.web.RequestHandler]:
    """`route` behind the standalone gateway's token."""
    return behind(TokenAuth, route)
