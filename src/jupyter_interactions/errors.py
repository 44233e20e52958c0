"""The one error tree of jupyter-interactions; foreign errors are mapped at the boundary.

    InteractionsError                 base of everything we raise on purpose (500: a bug)
    ├── ConfigError                   a setting is missing or wrong, e.g. no Gemini key (400)
    ├── GatewayError                  the gateway cannot be found, started or reached (503)
    ├── RequestError                  the request itself is wrong (400); `.field` names it
    │   └── UnsupportedError          a valid request for something not offered here (400)
    ├── AuthError                     wrong or missing token (401)
    ├── NotFoundError                 unknown interaction, agent, environment or file (404)
    ├── ConflictError                 the resource is in a state that forbids this (400)
    ├── UpstreamError                 Google's service failed: its own status, else 502
    ├── InteractionFailed             an interaction ended failed / cancelled / incomplete
    └── SandboxError                  code could not be run where it should (400)
        ├── SandboxUnavailable        no sandbox of that kind can start here (400)
        └── SandboxTimeout            a run or a file request exceeded its time limit (400)

    Interrupted                       a KeyboardInterrupt (so `except Exception` never
                                      swallows the user's interrupt) that says what became
                                      of the interaction: cancelled, or still running

Every message says what happened and what to do, and every error carries its context, so a
caller can act without parsing the message: `http_status` (what the gateway answers with when
the error crosses the wire; on the kernel side, the status the server answered, when one
did), `interaction_id` (the interaction it concerns, when one does), `RequestError.field`
(the request field at fault) and `InteractionFailed.status` (how the interaction ended).
`permanent` says that trying again cannot help; such an error never answers a status the
google-genai SDK retries (408, 409, 429 and every 5xx, `protocol.SDK_RETRIED`), or each call
would silently repeat it for ~30 s.
"""

from __future__ import annotations

from typing import Any

from .protocol import sdk_retries

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
    """Base of every error jupyter-interactions raises on purpose.

    A subclass states how it crosses the wire as class keywords, and inherits what it leaves
    out: `class ConfigError(InteractionsError, http_status=400, code="failed_precondition",
    permanent=True)` gives `ConfigError.http_status == 400`.
    """

    http_status = 500
    code = "internal"
    # Trying again cannot help. The base class is for the unforeseen: it makes no promise.
    permanent = False

    def __init_subclass__(
        cls,
        *,
        http_status: int | None = None,
        code: str | None = None,
        permanent: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if http_status is not None:
            cls.http_status = http_status
        if code is not None:
            cls.code = code
        if permanent is not None:
            cls.permanent = permanent

    def __init__(self, message: str, *, interaction_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.interaction_id = interaction_id  # the interaction it concerns, when one does


class ConfigError(InteractionsError, http_status=400, code="failed_precondition", permanent=True):
    """A setting is missing or wrong (e.g. --direct without GEMINI_API_KEY)."""


class GatewayError(InteractionsError, http_status=503, code="unavailable"):
    """The gateway cannot be found, started or reached; re-running the cell finds one again."""


class RequestError(InteractionsError, http_status=400, code="invalid_argument", permanent=True):
    """The request itself is wrong; `field` names the part at fault when one is."""

    def __init__(
        self, message: str, field: str | None = None, *, interaction_id: str | None = None
    ) -> None:
        super().__init__(message, interaction_id=interaction_id)
        self.field = field  # the request field at fault, e.g. "input[0].content", if one is


class UnsupportedError(RequestError, code="unimplemented"):
    """A valid request for something this gateway does not offer."""


class AuthError(InteractionsError, http_status=401, code="unauthenticated", permanent=True):
    """A wrong or missing token (or Gemini key, when direct)."""


class NotFoundError(InteractionsError, http_status=404, code="not_found", permanent=True):
    """An unknown interaction, agent, environment or file."""


class ConflictError(InteractionsError, http_status=400, code="failed_precondition", permanent=True):
    """The resource is in a state that forbids this request."""


class UpstreamError(InteractionsError, http_status=502, code="upstream"):
    """`status` is Google's own answer, passed through: its 4xx are permanent (the SDK does
    not retry them), its 429 and 5xx are not. Without one (unreachable), 502."""

    def __init__(
        self, message: str, status: int | None = None, *, interaction_id: str | None = None
    ) -> None:
        super().__init__(message, interaction_id=interaction_id)
        if status is not None:
            self.http_status = status
        self.permanent = 400 <= self.http_status < 500 and not sdk_retries(self.http_status)


class InteractionFailed(
    InteractionsError, http_status=400, code="failed_precondition", permanent=True
):
    """An interaction reached a terminal state other than `completed`. Kernel-side: the
    gateway reports such an end inside a 200; the status is for the rare crossing."""

    def __init__(
        self, message: str, interaction_id: str | None = None, status: str | None = None
    ) -> None:
        super().__init__(message, interaction_id=interaction_id)
        self.status = status  # how the interaction ended: failed, cancelled, incomplete...


class SandboxError(InteractionsError, http_status=400, code="sandbox", permanent=True):
    """Permanent for this request: retrying the same call meets the same sandbox (code
    still running, a kernel that died, a file it refuses), so it is a 400, not a 5xx."""


class SandboxUnavailable(SandboxError, code="failed_precondition"):
    """No sandbox of that kind can start here."""


class SandboxTimeout(SandboxError, code="deadline_exceeded"):
    """A run or a file request exceeded its time limit."""


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
