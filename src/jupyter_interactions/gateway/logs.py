"""What the gateway writes to its log: where (standalone: stderr, which a kernel points at a
log file that only its user may read; inside a Jupyter server: the server's log) and never a
secret (query strings and credentials are cut out of every line, whichever library writes it).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from collections.abc import Callable
from typing import TypeVar

__all__ = ["LOGGER", "Redact", "log_into", "redacted", "setup_logging"]

LOGGER = "jupyter_interactions"  # every logger of the package is under this one

# A query string (Google's clients may send the key as ?key=), and the value of an auth
# header, wherever a library puts one in a message (a dump of request headers, say).
_QUERY = re.compile(r"\?[^\s\"'<>()]+")
_CREDENTIAL = re.compile(
    r"(?i)\b(authorization|x-goog-api-key)([\"']?\s*[:=]\s*[\"']?(?:bearer\s+|token\s+)?)"
    r"[^\s\"',;)}]+"
)
# An ephemeral auth token named in a path (DELETE .../auth_tokens/auth_tokens%2F<hex>).
_AUTH_TOKEN = re.compile(r"(?i)(auth_tokens(?:/|%2F))[0-9a-f]{16,}")


class Redact(logging.Filter):
    """Cuts query strings and credentials out of a record's message (and its traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact(text: str) -> str:
    text = _AUTH_TOKEN.sub(r"\1***", _QUERY.sub("?***", text))
    return _CREDENTIAL.sub(r"\1\2***", text)


_Handler = TypeVar("_Handler", bound=logging.Handler)


def redacted(handler: _Handler) -> _Handler:
    """`handler`, cutting secrets out of every record it writes. The filter is the handler's,
    not a logger's: a logger's filters see only the records made on it, not its children's."""
    if not any(isinstance(f, Redact) for f in handler.filters):
        handler.addFilter(Redact())
    return handler


def log_into(host: logging.Logger) -> Callable[[], None]:
    """Hand every record of the package's loggers to `host`'s handlers (a Jupyter server's
    log, say), secrets cut out first, once each and at `host`'s level. Returns the undo."""
    ours = logging.getLogger(LOGGER)
    level, propagate = ours.level, ours.propagate
    handler = redacted(_ToHost(host))
    ours.addHandler(handler)
    ours.setLevel(host.getEffectiveLevel())
    ours.propagate = False  # written once, the host's way

    def undo() -> None:
        ours.removeHandler(handler)
        ours.setLevel(level)
        ours.propagate = propagate

    return undo


class _ToHost(logging.Handler):
    """Hands records to another logger, whose handlers format and write them their way."""

    def __init__(self, host: logging.Logger) -> None:
        super().__init__()
        self.host = host

    def emit(self, record: logging.LogRecord) -> None:
        self.host.handle(record)


def setup_logging(level: str) -> None:
    """Log to stderr with secrets cut out; if stderr is a file, make it this user's only."""
    _private(sys.stderr)
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        redacted(handler)
    # Per-request access lines would cost more than the requests themselves.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


def _private(stream: object) -> None:
    """chmod 0600 the regular file `stream` writes to (a log file a kernel opened for us)."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    except (AttributeError, OSError, ValueError):
        pass  # not a file (a terminal, a pipe): nothing to protect
