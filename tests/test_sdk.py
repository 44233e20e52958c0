"""_sdk.py: the google-genai patches apply only to the SDK code they were tested with, change
cost never results, and step aside (the SDK working unpatched) on a mismatch or an opt-out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import google.genai
import pydantic
import pytest
from google.genai import interactions as itypes
from google.genai._gaos import models
from google.genai._gaos.utils import eventstreaming, requestbodies, serializers

from jupyter_interactions import _sdk

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

REQUESTS = [
    {"model": "echo", "input": "hi", "stream": True},
    {"model": "local", "input": [{"type": "text", "text": "a"}], "previous_interaction_id": "i"},
    {"agent": "local-agent", "agent_config": {"type": "dynamic", "model": "scripted"},
     "environment": {"type": "remote", "env": {"A": "1"}, "network": "disabled"},
     "input": "go", "background": True},
    {"model": "echo", "input": "f", "tools": [{"type": "function", "name": "f",
     "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}]},
]  # fmt: skip


@pytest.mark.parametrize("patch", _sdk.PATCHES, ids=lambda patch: patch.name)
def test_the_installed_sdk_matches_the_recorded_fingerprint(patch):
    found = _sdk.fingerprint(patch)
    assert found == _sdk.FINGERPRINTS[patch.name], (
        f"google-genai {google.genai.__version__} changed the private code that the "
        f"{patch.name!r} patch in src/jupyter_interactions/_sdk.py relies on "
        f"({patch.module}: every user of {patch.attribute!r}, and {patch.also or 'nothing else'})"
        f", so the patch is off. Read the new source against the patch ({patch.why}); if it "
        f"still holds, run the whole suite on this SDK, record {found!r} in _sdk.FINGERPRINTS "
        "and widen the google-genai range in pyproject.toml; if not, change the patch first."
    )


def test_every_patch_is_on_for_the_tested_sdk():
    assert _sdk.speed_up_sdk() is True
    assert _sdk.speed_up_sdk() is True  # idempotent
    assert _sdk.patch_state() == {patch.name: "on" for patch in _sdk.PATCHES}


def test_model_classes_are_built_once_per_type_and_parse_exactly_like_the_sdk(monkeypatch):
    assert _sdk.speed_up_sdk()
    config = pydantic.ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)
    first = serializers.create_model("Unmarshaller", body=(int, ...), __config__=config)
    again = serializers.create_model("Unmarshaller", body=(int, ...), __config__=dict(config))
    assert first is again  # the cause of the speed-up: no new class per call
    assert first.__module__ == serializers.__name__  # as the SDK's own call names it
    assert serializers.create_model("Marshaller", body=(int, ...), __config__=config) is not first
    unhashable = pydantic.conlist(int, min_length=1)  # still built, just not cached
    assert serializers.create_model("X", body=(unhashable, ...)) is not None

    event = itypes.InteractionSSEEvent
    events = [serializers.unmarshal(raw, event, False, True) for raw in AGENT_RUN]
    typ = models.CreateInteractionRequestBody
    bodies = [pydantic.TypeAdapter(typ).validate_python(raw) for raw in REQUESTS]
    sent = [requestbodies.marshal_json(body, typ) for body in bodies]  # imported there by name
    monkeypatch.setattr(serializers, "create_model", pydantic.create_model)  # the SDK as shipped
    for raw, ours in zip(AGENT_RUN, events, strict=True):
        theirs = serializers.unmarshal(raw, event, False, True)
        assert type(ours) is type(theirs) and ours == theirs
    assert sent == [serializers.marshal_json(body, typ) for body in bodies]


def test_event_dicts_parse_exactly_like_the_sdk(monkeypatch):
    assert _sdk.speed_up_sdk()
    decoded: dict[str, list[str | None]] = {"ours": [], "theirs": []}
    for name in ("ours", "theirs"):
        if name == "theirs":
            monkeypatch.setattr(eventstreaming, "asdict", eventstreaming.asdict.__wrapped__)
        for number, raw in enumerate(AGENT_RUN):
            block = f"event: message\nid: {number}\ndata: {json.dumps(raw)}".encode()
            out, _, _ = eventstreaming._parse_event(raw=bytearray(block), decoder=str)
            decoded[name].append(out)
    assert decoded["ours"] == decoded["theirs"]
    assert all(out and '"data": {' in out for out in decoded["ours"])


# A fresh process, since patches are process-wide: builds the kernel's client the way a
# notebook does, makes one unary and one streamed interaction, and reports what it saw.
ROUND_TRIP = r"""
import dataclasses, json, sys
import pydantic
from jupyter_interactions import _sdk
from jupyter_interactions.client import build_client
from jupyter_interactions.launch import connect

if sys.argv[1] == "wrong":
    _sdk.FINGERPRINTS["model-classes"] = "0" * 64
client = build_client(connect(), "test_sdk.ipynb")
build_client(connect(), "test_sdk.ipynb").close()  # a second client warns no more
from google.genai._gaos.utils import eventstreaming, serializers

created = client.interactions.create(model="echo", input="hello unpatched world")
events = list(client.interactions.create(model="echo", input="one two", stream=True))
print(json.dumps({
    "state": _sdk.patch_state(),
    "create_model_is_pydantic": serializers.create_model is pydantic.create_model,
    "asdict_is_dataclasses": eventstreaming.asdict is dataclasses.asdict,
    "text": created.output_text,
    "status": created.status,
    "streamed": "".join(e.delta.text for e in events if e.event_type == "step.delta"),
    "last": events[-1].event_type,
}))
client.close()
"""


def round_trip(gateway, tmp_path, mode: str, **env: str) -> tuple[dict, str]:
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_INTERACTIONS")},
        "JUPYTER_INTERACTIONS_URL": gateway.url,
        "JUPYTER_INTERACTIONS_TOKEN": gateway.token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, mode],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_wrong_fingerprint_turns_its_patch_off_with_one_warning_and_the_sdk_works(
    gateway, tmp_path
):
    seen, stderr = round_trip(gateway, tmp_path, "wrong")
    assert seen["state"]["model-classes"].startswith("off: the SDK code it relies on changed")
    assert seen["state"]["event-dicts"] == "on"  # each patch checks its own code
    assert seen["create_model_is_pydantic"] is True
    assert seen["asdict_is_dataclasses"] is False
    assert (seen["status"], seen["text"]) == ("completed", "hello unpatched world")
    assert (seen["streamed"], seen["last"]) == ("one two", "interaction.completed")
    warnings = [line for line in stderr.splitlines() if "google-genai runs unpatched" in line]
    assert len(warnings) == 1, stderr
    assert "model-classes off" in warnings[0] and _sdk.OPT_OUT in warnings[0]


def test_the_opt_out_leaves_the_sdk_unpatched_and_working(gateway, tmp_path):
    seen, stderr = round_trip(gateway, tmp_path, "as-recorded", JUPYTER_INTERACTIONS_SDK_PATCH="0")
    assert set(seen["state"].values()) == {f"off: {_sdk.OPT_OUT} is set"}
    assert seen["create_model_is_pydantic"] is True and seen["asdict_is_dataclasses"] is True
    assert (seen["status"], seen["text"]) == ("completed", "hello unpatched world")
    assert (seen["streamed"], seen["last"]) == ("one two", "interaction.completed")
    assert "unpatched" not in stderr  # asked for, so nothing to warn about


def test_without_the_opt_out_a_fresh_process_runs_patched(gateway, tmp_path):
    seen, stderr = round_trip(gateway, tmp_path, "as-recorded")
    assert set(seen["state"].values()) == {"on"}
    assert seen["create_model_is_pydantic"] is False and seen["asdict_is_dataclasses"] is False
    assert (seen["text"], seen["streamed"]) == ("hello unpatched world", "one two")
    assert "unpatched" not in stderr


def test_private_sdk_errors_come_through_sdk_module():
    from google.genai import _interactions

    from jupyter_interactions._sdk import errors

    assert errors is _interactions
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _sdk.nothing  # noqa: B018
