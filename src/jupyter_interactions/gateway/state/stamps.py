"""What the gateway stamps on what it keeps: new ids (`int_…`, `env_…`, `agent_…`, uploads).
Wire timestamps are protocol.timestamp's."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """`prefix` and 16 random hex digits, e.g. `int_9f3c…`."""
    return f"{prefix}_{secrets.token_hex(8)}"
