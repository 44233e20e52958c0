"""What the gateway stamps on what it keeps: new ids (`int_…`, `env_…`, `agent_…`, uploads)
and wire timestamps of moments it has as epoch seconds."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone


def new_id(prefix: str) -> str:
    """`prefix` and 16 random hex digits, e.g. `int_9f3c…`."""
    return f"{prefix}_{secrets.token_hex(8)}"


def rfc3339(epoch: float) -> str:
    """`epoch` as the wire writes times (`modified`, `expire_time`): UTC, to the second, as
    protocol.now() writes the present."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
