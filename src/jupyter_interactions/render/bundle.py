"""Final display bundles: Markdown + text/plain, with provenance metadata.

The metadata key `jupyter_interactions` carries interaction ids, model or agent, thread,
usage and status: enough to find the interaction again, never a secret.
"""

from __future__ import annotations

from typing import Any

from .transcript import Transcript

METADATA_KEY = "jupyter_interactions"


def provenance(
    transcript: Transcript, *, thread: str | None, interaction_ids: list[str] | None = None
) -> dict[str, Any]:
    ids = interaction_ids or ([transcript.interaction_id] if transcript.interaction_id else [])
    record: dict[str, Any] = {"interaction_ids": list(ids)}
    if transcript.agent:
        record["agent"] = transcript.agent
        if transcript.environment_id:
            record["environment_id"] = transcript.environment_id
    else:
        record["model"] = transcript.model
    record.update({"thread": thread, "usage": dict(transcript.usage), "status": transcript.status})
    return {METADATA_KEY: record}


def live_bundle(transcript: Transcript) -> dict[str, Any]:
    """What the live handle shows while streaming (the same renderer as the final one)."""
    return {"text/markdown": transcript.markdown() or "…", "text/plain": transcript.plain()}


def reply_bundle(
    transcript: Transcript, *, thread: str | None, interaction_ids: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    data = {"text/markdown": transcript.markdown(), "text/plain": transcript.plain()}
    return data, provenance(transcript, thread=thread, interaction_ids=interaction_ids)
