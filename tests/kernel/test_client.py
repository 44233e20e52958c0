"""The kernel's SDK client: the unmarshaller cache changes cost, never results."""

from __future__ import annotations

import pydantic
from google.genai import interactions as itypes
from google.genai._gaos.utils import serializers

from jupyter_interactions.client import Connection, build_client
from jupyter_interactions.sdk_speedups import cache_sdk_unmarshallers

AGENT_RUN = [
    {"event_type": "interaction.created", "event_id": "e1",
     "interaction": {"id": "int_1", "status": "in_progress", "agent": "helper"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "thought", "signature": "c2ln"}},
    {"event_type": "step.delta", "index": 0,
     "delta": {"type": "thought_summary", "content": {"type": "text", "text": "Plan."}}},
    {"event_type": "step.delta", "index": 1, "delta": {"type": "text", "text": "It is 2."}},
    {"event_type": "something.new", "payload": 1},
    {"event_type": "interaction.completed",
     "interaction": {"id": "int_1", "status": "completed", "usage": {"total_tokens": 5}}},
]  # fmt: skip


def test_cached_unmarshallers_parse_exactly_like_the_sdk():
    assert cache_sdk_unmarshallers() is True
    assert cache_sdk_unmarshallers() is True  # idempotent
    original = serializers.unmarshal.__wrapped__
    for raw in AGENT_RUN:
        ours = serializers.unmarshal(raw, itypes.InteractionSSEEvent, False, True)
        theirs = original(raw, itypes.InteractionSSEEvent, False, True)
        assert type(ours) is type(theirs) and ours == theirs
    expected = pydantic.TypeAdapter(itypes.InteractionSSEEvent).validate_python(AGENT_RUN[-1])
    assert serializers.unmarshal(AGENT_RUN[-1], itypes.InteractionSSEEvent) == expected


def test_connection_repr_hides_the_token():
    connection = Connection("http://127.0.0.1:1/", token="very-secret-token")  # type: ignore[arg-type]
    assert "very-secret-token" not in repr(connection)
    client = build_client(connection, "key.ipynb")
    try:
        assert "very-secret-token" not in repr(client)
    finally:
        client.close()
