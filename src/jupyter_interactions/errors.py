"""The one error tree of jupyter-interactions; foreign errors are mapped at the boundary.

    InteractionsError                 base of everything we raise on purpose
    ├── ConfigError                   a setting is missing or wrong (e.g. no Gemini key)
    ├── GatewayError                  the gateway cannot be found, started or reached
    ├── RequestError                  the request itself is wrong (HTTP 400 on the wire)
    │   └── UnsupportedError          a valid request for something not offered here
    ├── AuthError                     wrong or missing token (401)
    ├── NotFoundError                 unknown interaction, agent, environment or file (404)
    ├── ConflictError                 the resource is in a state that forbids this (400)
    ├── UpstreamError                 Google's service failed after retries (429/5xx)
    ├── InteractionFailed             an interaction ended failed / cancelled / incomplete
    └── SandboxError                  code could not be run where it should
        ├── SandboxUnavailable        no sandbox of that kind can start here
        └── SandboxTimeout            a run exceeded its wall-clock limit

    Interrupted                       a KeyboardInterrupt (so `except Exception` never
                                      swallows the user's interrupt) that says what became
                                      of the interaction: cancelled, or still running

Every message says what happened and what to do. `http_status` is what the gateway answers
with when the error crosses the wire; it deliberately avoids 409 and 5xx for permanent
failures, because the google-genai SDK silently retries those for ~30 s.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "GatewayError",
    "InteractionFailed",
    "InteractionsError",
    "Interrupted",
    "NotFoundError",
    "RequestError",
    "SandboxError",
    "SandboxTimeout",
    "SandboxUnavailable",
    "UnsupportedError",
    "UpstreamError",
]


class InteractionsError(Exception):
    """Base of every error jupyter-interactions raises on purpose."""

    http_status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(InteractionsError):
    http_status = 400
    code = "failed_precondition"


class GatewayError(InteractionsError):
    http_status = 503
    code = "unavailable"


class RequestError(InteractionsError):
    http_status = 400
    code = "invalid_argument"


class UnsupportedError(RequestError):
    code = "unimplemented"


class AuthError(InteractionsError):
    http_status = 401
    code = "unauthenticated"


class NotFoundError(InteractionsError):
    http_status = 404
    code = "not_found"


class ConflictError(InteractionsError):
    http_status = 400
    code = "failed_precondition"


class UpstreamError(InteractionsError):
    http_status = 502
    code = "upstream"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.http_status = status


class InteractionFailed(InteractionsError):
    """An interaction reached a terminal state other than `completed`."""

    def __init__(self, message: str, interaction_id: str | None = None, status: str | None = None):
        super().__init__(message)
        self.interaction_id = interaction_id
        self.status = status


class SandboxError(InteractionsError):
    code = "sandbox"


class SandboxUnavailable(SandboxError):
    http_status = 400
    code = "failed_precondition"


class SandboxTimeout(SandboxError):
    code = "deadline_exceeded"


class Interrupted(KeyboardInterrupt):
    """The user interrupted a wait (Kernel > Interrupt). `message` is the one line IPython
    shows instead of a traceback; `reply` is what came before the interrupt, if anything."""

    def __init__(self, message: str, interaction_id: str | None = None, reply: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.interaction_id = interaction_id
        self.reply = reply

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for an exception's own traceback: just the line."""
        return [self.message]
