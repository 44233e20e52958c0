"""Record and replay at the gateway, through the real SDK: a gateway with a key records a
two-turn thread, a background job and an agent that writes files, all run by a stand-in for
Google on loopback; another gateway serves them back from the cassette without calling it."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from tests.gateway.test_http import raw
from tests.gateway.test_validation import refused
from tests.replay.conftest import (
    SCRIPTED,
    agent_run,
    cassette_route,
    error_body,
    fence,
    session_client,
)

from jupyter_interactions._sdk import errors

MAKE_FILE = fence(
    "open('made.txt', 'w').write('on google')\n"
    "open('big.bin', 'wb').write(bytes(range(256)) * 64)\n"
    "print('made')"
)


def finished(client: Any, interaction_id: str) -> Any:
    """Follow an interaction's stream to its end, then read it."""
    for _ in client.interactions.get(interaction_id, stream=True):
        pass
    return client.interactions.get(interaction_id)


def answer(interaction: Any) -> dict[str, Any]:
    """What a user sees of an interaction, without ids and times."""
    dumped = interaction.model_dump(mode="json", exclude_none=True)
    kept = ("status", "model", "agent", "steps", "usage", "output_text")
    return {k: dumped[k] for k in kept if k in dumped}


def record_session(client: Any) -> dict[str, Any]:
    first = client.interactions.create(model="gemini-test", input="turn one")
    second = client.interactions.create(
        model="gemini-test", input="turn two", previous_interaction_id=first.id
    )
    job = client.interactions.create(
        model="gemini-test", input="in the background", background=True
    )
    agent = agent_run(client, MAKE_FILE)
    files = {
        name: client.environments.files.download(
            environment=agent.environment_id, path=f"workspace/{name}"
        )
        for name in ("made.txt", "big.bin")
    }
    return {
        "answers": [answer(first), answer(second), answer(finished(client, job.id)), answer(agent)],
        "files": files,
    }


def interactions_at(gateway: Any) -> int:
    db = sqlite3.connect(gateway.data_dir / "gateway.sqlite3")
    try:
        return int(db.execute("select count(*) from interactions").fetchone()[0])
    finally:
        db.close()


def test_a_recording_replays_the_same_answers_and_files_without_google(
    recorder, stand_in, gateway_factory, cassette_dir, google_key
):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    recorded = record_session(session_client(recorder, cell="1 cell-one"))
    state = cassette_route(recorder)
    assert state["mode"] == "record" and state["problems"] == []
    assert state["interactions"] == 4  # two turns, the job, and the agent's turn
    assert recorded["answers"][1]["output_text"] == "turn two"

    # Readable, stable and free of secrets; the agent's files are stored by content hash.
    entries = sorted((cassette_dir / "interactions").glob("*.json"))
    assert [e.name for e in entries] == [f"{n:04d}.json" for n in range(1, 5)]
    agent_entry = json.loads(entries[-1].read_text())
    assert [f["path"] for f in agent_entry["files"]] == ["workspace/big.bin", "workspace/made.txt"]
    assert agent_entry["environment"].startswith("@")
    assert agent_entry["cell"] == "cell [1] (id cell-one)"
    assert '"$interaction"' in entries[-1].read_text()
    for path in cassette_dir.rglob("*"):
        if path.is_file():
            assert google_key.encode() not in path.read_bytes(), path
            assert b'"created"' not in path.read_bytes(), path

    # A gateway that has a key and reaches the stand-in, told to replay: it never calls it.
    before = interactions_at(stand_in)
    replayer = gateway_factory(
        env={"GEMINI_API_KEY": google_key},
        settings={"upstream_url": stand_in.url, "upstream_attempts": 1},
    )
    cassette_route(replayer, mode="replay", path=str(cassette_dir))
    replayed = record_session(session_client(replayer, cell="1 cell-one"))
    assert replayed == recorded
    assert interactions_at(stand_in) == before


def test_a_changed_input_is_refused_naming_the_cell_with_a_diff(
    recorder, gateway_factory, cassette_dir
):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    client = session_client(recorder, cell="3 abcdef1234")
    first = client.interactions.create(model="gemini-test", input="What is 2+2?")
    client.interactions.create(
        model="gemini-test", input="And 3+3?", previous_interaction_id=first.id
    )
    client.interactions.create(model="gemini-test", input="Hello")
    assert cassette_route(recorder)["interactions"] == 3

    replayer = gateway_factory()
    cassette_route(replayer, mode="replay", path=str(cassette_dir))
    client = session_client(replayer, cell="7 0123456789abcdef")
    with pytest.raises(errors.BadRequestError) as caught:
        client.interactions.create(model="gemini-test", input="What is 2+3?")
    message = caught.value.body["error"]["message"]
    assert "cell [7] (id 01234567)" in message
    assert "replay never calls Google" in message
    lines = message.splitlines()
    assert any(line.startswith("-") and '"What is 2+2?"' in line for line in lines)
    assert any(line.startswith("+") and '"What is 2+3?"' in line for line in lines)
    assert "from cell [3] (id abcdef12)" in message

    # The same second turn after a different first turn: its thread position differs.
    other = client.interactions.create(model="gemini-test", input="Hello")
    with pytest.raises(errors.BadRequestError) as caught:
        client.interactions.create(
            model="gemini-test", input="And 3+3?", previous_interaction_id=other.id
        )
    message = caught.value.body["error"]["message"]
    assert "asks the same" in message
    assert "turn 2 of a thread whose earlier turns the recording does not have" in message


def test_auto_serves_what_needs_google_and_runs_the_rest(recorder, gateway_factory, cassette_dir):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    recording = session_client(recorder)
    recording.interactions.create(model="gemini-test", input="from the cassette")
    cassette_route(recorder)

    # No mode set: a notebook whose cassette lies beside it gets `auto` (the default setting).
    notebook = str(cassette_dir.parent / "sharing.ipynb")
    offline = gateway_factory()
    client = session_client(offline, session=notebook)
    served = client.interactions.create(model="gemini-test", input="from the cassette")
    assert served.output_text == "from the cassette"
    local = client.interactions.create(model="echo", input="never recorded")
    assert local.output_text == "never recorded"
    assert cassette_route(offline, session=notebook)["origin"] == "notebook"
    with pytest.raises(errors.BadRequestError) as caught:
        client.interactions.create(model="gemini-test", input="not in the cassette")
    message = caught.value.body["error"]["message"]
    assert "set GEMINI_API_KEY" in message and "no recorded interaction" in message


def test_secrets_are_refused_at_write_time(recorder, cassette_dir):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    client = session_client(recorder, cell="4 c4")
    shaped = "AIza" + "Q" * 35
    client.interactions.create(model="gemini-test", input=f"my key is {shaped}")
    variable = "s3cret-value-of-the-token"
    agent = client.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        environment={"type": "remote", "env": {"TOKEN": variable}},
        input=fence("import os\nopen('leak.txt', 'w').write(os.environ['TOKEN'])"),
    )
    assert agent.status == "completed"
    client.interactions.create(model="gemini-test", input="harmless")
    state = cassette_route(recorder)
    assert state["interactions"] == 1  # only the harmless one
    problems = [p["message"] for p in state["problems"]]
    assert len(problems) == 2
    assert problems[0].startswith("cell [4] (id c4): not recorded: a Google API key")
    assert "the value of environment variable TOKEN" in problems[1]
    assert "workspace/leak.txt" in problems[1]
    for path in cassette_dir.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert shaped.encode() not in text and variable.encode() not in text


JSON = {"content-type": "application/json"}


def test_the_cassette_route_refuses_what_it_cannot_do(gateway, tmp_path: Path):
    with pytest.raises(urllib.error.HTTPError) as caught:
        cassette_route(gateway, mode="replay", path=str(tmp_path / "none.interactions"))
    assert caught.value.code == 404 and "record one first" in error_body(caught.value)
    assert cassette_route(gateway, mode="off") == {"mode": "off"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "sometimes", "path": "/a.interactions"}, "mode"),
        ({"mode": ["record"], "path": "/a.interactions"}, "mode"),
        ({"path": "/a.interactions"}, "mode"),
        ({"mode": "record"}, "path"),
        ({"mode": "replay", "path": 5}, "path"),
        ({"mode": "record", "path": "/tmp/a\x00.interactions"}, "path"),
        ({"mode": "record", "path": "/" + "d" * 300 + ".interactions"}, "path"),
        ({"mode": "record", "path": "/tmp/notes.txt"}, "path"),
        ({"mode": "record", "path": "relative.interactions"}, "path"),
        ({"mode": "off", "paht": "/a.interactions"}, "paht"),
    ],
)
def test_the_cassette_route_names_the_field_it_refuses(gateway, body, field):
    """PUT /sessions/{key}/cassette has its own validation entry (google-genai has no type
    for it): a 400 in the reference's shape naming the field, before any cassette is made."""
    content = json.dumps(body).encode()
    path = "/v1/sessions/nb.ipynb/cassette"
    refused(raw(gateway, "PUT", path, content=content, headers=JSON), field)


def test_the_cassette_route_checks_its_session_key_and_the_cell_header(gateway):
    refused(raw(gateway, "GET", f"/v1/sessions/{'k' * 1100}/cassette"), "session key")
    refused(raw(gateway, "GET", "/v1/sessions/nb.ipynb/cassette", content=b'{"mode": "off"}'))
    create = json.dumps({"model": "echo", "input": "x"}).encode()
    headers = {**JSON, "x-interactions-cell": "c" * 300}
    refused(
        raw(gateway, "POST", "/v1/interactions", content=create, headers=headers),
        "x-interactions-cell",
    )


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def streamed(client: Any, **create: Any) -> tuple[str, list[dict[str, Any]]]:
    """Create with stream=True: the interaction's id and what each event says, without ids,
    event ids or times (the parts a replay gives anew)."""
    said = []
    interaction_id = ""
    for event in client.interactions.create(stream=True, **create):
        dumped = event.model_dump(mode="json", exclude_none=True)
        interaction = dumped.pop("interaction", None) or {}
        interaction_id = interaction.get("id") or interaction_id
        dumped.pop("event_id", None)
        dumped.pop("interaction_id", None)
        if interaction:
            dumped["status"] = interaction.get("status")
        said.append(dumped)
    return interaction_id, said


def function_round_trip(client: Any) -> list[list[dict[str, Any]]]:
    """A function call that pauses the turn (requires_action), then its answer."""
    paused_id, paused = streamed(
        client, model="gemini-test", input='call get_weather {"city": "Oslo"}', tools=[WEATHER]
    )
    call = next(s for s in client.interactions.get(paused_id).steps if s.type == "function_call")
    result = {"type": "function_result", "call_id": call.id, "result": "sunny"}
    _, answered = streamed(
        client,
        model="gemini-test",
        input=[result],
        tools=[WEATHER],
        previous_interaction_id=paused_id,
    )
    return [paused, answered]


def test_status_updates_and_argument_deltas_are_recorded_and_replayed(
    recorder, gateway_factory, cassette_dir
):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    recorded = function_round_trip(session_client(recorder, cell="2 cell-two"))
    assert cassette_route(recorder)["interactions"] == 2
    kinds = [e["event_type"] for e in recorded[0]]
    assert kinds[:2] == ["interaction.created", "interaction.status_update"]
    assert kinds[-2:] == ["interaction.status_update", "interaction.completed"]
    assert recorded[0][-2]["status"] == "requires_action"
    deltas = [e["delta"] for e in recorded[0] if e["event_type"] == "step.delta"]
    assert {"type": "arguments_delta", "arguments": '{"city": "Oslo"}'} in deltas
    assert recorded[1][-1]["status"] == "completed"
    on_disk = (cassette_dir / "interactions" / "0001.json").read_text()
    assert '"interaction.status_update"' in on_disk and '"arguments_delta"' in on_disk

    replayer = gateway_factory()  # no key, no stand-in: only the cassette can answer
    cassette_route(replayer, mode="replay", path=str(cassette_dir))
    replayed = function_round_trip(session_client(replayer, cell="2 cell-two"))
    assert replayed == recorded


def test_no_key_or_token_reaches_a_cassette(recorder, stand_in, cassette_dir, google_key):
    cassette_route(recorder, mode="record", path=str(cassette_dir))
    client = session_client(recorder, cell="5 c5")
    first = client.interactions.create(model="gemini-test", input="harmless")
    token = client.interactions.auth_tokens.create(first.id).auth_token
    client.interactions.create(model="gemini-test", input=f"the token is {token}")
    state = cassette_route(recorder)
    assert state["interactions"] == 1
    assert "an ephemeral auth token" in state["problems"][0]["message"]
    secrets_known = (google_key, recorder.token, stand_in.token, token)
    for path in cassette_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets_known if s.encode() in data], path
