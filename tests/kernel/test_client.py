"""The kernel's SDK client: the speed-ups (sdk_speedups.py) change cost, never results."""

from __future__ import annotations

import json

import pydantic
from google.genai import interactions as itypes
from google.genai._gaos import models
from google.genai._gaos.utils import eventstreaming, requestbodies, serializers

from jupyter_interactions.client import Connection, build_client
from jupyter_interactions.sdk_speedups import (
    cache_sdk_marshallers,
    cache_sdk_unmarshallers,
    shallow_sse_event_dicts,
)

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


REQUESTS = [
    {"model": "echo", "input": "hi", "stream": True},
    {"model": "local", "input": [{"type": "text", "text": "a"}], "previous_interaction_id": "i"},
    {"agent": "local-agent", "agent_config": {"type": "dynamic", "model": "scripted"},
     "environment": {"type": "remote", "env": {"A": "1"}, "network": "disabled"},
     "input": "go", "background": True},
    {"model": "echo", "input": "f", "tools": [{"type": "function", "name": "f",
     "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}]},
]  # fmt: skip


def test_cached_marshallers_send_exactly_what_the_sdk_sends():
    assert cache_sdk_marshallers() is True
    assert cache_sdk_marshallers() is True  # idempotent
    assert requestbodies.marshal_json is serializers.marshal_json  # imported by name there
    original = serializers.marshal_json.__wrapped__
    typ = models.CreateInteractionRequestBody
    for raw in REQUESTS:
        body = pydantic.TypeAdapter(typ).validate_python(raw)
        assert serializers.marshal_json(body, typ) == original(body, typ)
    assert serializers.marshal_json(None, typ | None) == original(None, typ | None)


def test_shallow_event_dicts_parse_exactly_like_the_sdk():
    assert shallow_sse_event_dicts() is True
    assert shallow_sse_event_dicts() is True  # idempotent
    shallow = eventstreaming.asdict
    decoded: dict[str, list[str | None]] = {"ours": [], "theirs": []}
    try:
        for name, asdict in (("ours", shallow), ("theirs", shallow.__wrapped__)):
            eventstreaming.asdict = asdict
            for number, raw in enumerate(AGENT_RUN):
                block = f"event: message\nid: {number}\ndata: {json.dumps(raw)}".encode()
                out, _, _ = eventstreaming._parse_event(raw=bytearray(block), decoder=str)
                decoded[name].append(out)
    finally:
        eventstreaming.asdict = shallow
    assert decoded["ours"] == decoded["theirs"]
    assert all(out and '"data": {' in out for out in decoded["ours"])


def test_connection_repr_hides_the_token():
    connection = Connection("http://127.0.0.1:1/", token="very-secret-token")  # type: ignore[arg-type]
    assert "very-secret-token" not in repr(connection)
    client = build_client(connection, "key.ipynb")
    try:
        assert "very-secret-token" not in repr(client)
    finally:
        client.close()
