"""What the standalone gateway writes to its log: where (stderr, which a kernel points at a
log file that only its user may read) and never a secret (query strings and credentials
are cut out of every line, whichever library writes it)."""

from __future__ import annotations

import logging
import os
import re
import stat
import sys

__all__ = ["Redact", "setup_logging"]

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


def setup_logging(level: str) -> None:
    """Log to stderr with secrets cut out; if stderr is a file, make it this user's only."""
    _private(sys.stderr)
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(Redact())
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
