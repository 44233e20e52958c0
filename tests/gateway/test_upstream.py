"""Forwarding to Google's service, tested with a second real gateway playing Google (its
config claims `gemini-test` for the echo model), and a loopback server that answers 429."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.httpserver
import tornado.web
from tests.gateway.fake_google import serving

from jupyter_interactions._sdk import errors

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def google_and_front(gateway_factory: Any) -> tuple[Any, Any, str]:
    key = "AIza" + secrets.token_urlsafe(30)  # shaped like a real key, to hunt for leaks
    google = gateway_factory(token=key, models={"gemini-test": {"adapter": "echo"}})
    front = gateway_factory(
        env={"GEMINI_API_KEY": key},
        settings={"upstream_url": google.url, "upstream_attempts": 1},
    )
    return google, front, key


def test_model_streams_through_upstream_and_is_stored_locally(google_and_front):
    _, front, _ = google_and_front
    client = front.client()
    stream = client.interactions.create(model="gemini-test", input="hi from afar", stream=True)
    events = list(stream)
    kinds = [e.event_type for e in events]
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    assert "step.delta" in kinds
    assert [e.event_id for e in events] == [f"ev_{i}" for i in range(1, len(events) + 1)]
    final = events[-1].interaction
    assert final.status == "completed"
    local = client.interactions.get(events[0].interaction.id)
    assert local.output_text == "hi from afar"
    assert local.model == "gemini-test"
    assert local.usage.total_output_tokens == 3


def test_chain_is_translated_to_upstream_ids(google_and_front):
    google, front, _ = google_and_front
    client = front.client()
    first = client.interactions.create(model="gemini-test", input="turn one")
    second = client.interactions.create(
        model="gemini-test", input="turn two", previous_interaction_id=first.id
    )
    assert second.status == "completed" and second.output_text == "turn two"
    # Google's side saw a chain of two of ITS ids, not ours.
    upstream = google.client()
    import sqlite3

    db = sqlite3.connect(front.data_dir / "gateway.sqlite3")
    query = "select upstream_id from interactions where id=?"
    (up_first,) = db.execute(query, (first.id,)).fetchone()
    (up_second,) = db.execute(query, (second.id,)).fetchone()
    db.close()
    assert up_first and up_second and up_first != first.id
    assert upstream.interactions.get(up_second).previous_interaction_id == up_first


def test_function_call_round_trip_through_upstream(google_and_front):
    _, front, _ = google_and_front
    client = front.client()
    paused = client.interactions.create(
        model="gemini-test", input='call get_weather {"city": "Paris"}', tools=[WEATHER]
    )
    assert paused.status == "requires_action"
    call = next(s for s in paused.steps if s.type == "function_call")
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    done = client.interactions.create(
        model="gemini-test",
        previous_interaction_id=paused.id,
        tools=[WEATHER],
        input=[
            {"type": "function_result", "call_id": call.id, "name": call.name, "result": "sunny"}
        ],
    )
    assert done.status == "completed"
    assert done.output_text == "get_weather returned: sunny"


def test_upstream_error_fails_the_interaction_with_a_clear_message(google_and_front):
    _, front, key = google_and_front
    client = front.client()
    failed = client.interactions.create(model="gemini-unknown-to-google", input="hi")
    assert failed.status == "failed"
    events = list(client.interactions.get(failed.id, stream=True))
    error = next(e for e in events if e.event_type == "error")
    assert "Google's service answered 400" in error.error.message
    assert "gemini-unknown-to-google" in error.error.message
    assert key not in error.error.message


def test_key_never_reaches_responses_logs_or_store(google_and_front):
    _, front, key = google_and_front
    client = front.client()
    client.interactions.create(model="gemini-test", input="secret hunt")
    front.stop()
    assert key not in front.stderr_path.read_text()
    for path in front.data_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


SCRIPTED = {"type": "dynamic", "model": "scripted"}


def test_an_agent_on_google_keeps_its_environment_and_its_files_come_through(google_and_front):
    """Google's side is a gateway whose `antigravity-test` agent runs code in its sandbox."""
    google, front, _ = google_and_front
    at_google = google.client()
    at_google.agents.create(id="antigravity-test", base_agent="local-agent")
    client = front.client()
    code = "```python\nopen('made.txt', 'w').write('on google')\nprint('made')\n```"
    first = client.interactions.create(
        agent="antigravity-test", agent_config=SCRIPTED, environment={"type": "remote"}, input=code
    )
    assert first.status == "completed", first
    env_id = first.environment_id
    assert env_id and at_google.environments.get(env_id).id == env_id  # Google's own

    # Through the gateway: the environment, its files and their bytes come from Google.
    assert client.environments.get(env_id).id == env_id
    listing = client.environments.files.list(env_id, "workspace")
    assert [f.name for f in listing.files] == ["made.txt"]
    data = client.environments.files.download(environment=env_id, path="workspace/made.txt")
    assert data == b"on google"
    with pytest.raises(errors.BadRequestError, match="lives on Google's service"):
        client.environments.files.upload(environment=env_id, path="workspace/x.txt", file=b"x")

    # The next turn names it by id and runs in the same sandbox there.
    again = client.interactions.create(
        agent="antigravity-test",
        agent_config=SCRIPTED,
        environment=env_id,
        input="```python\nprint(open('made.txt').read())\n```",
    )
    assert again.status == "completed" and again.environment_id == env_id
    assert "on google" in again.output_text

    client.environments.delete(env_id)
    with pytest.raises(errors.NotFoundError):
        at_google.environments.get(env_id)
    with pytest.raises(errors.NotFoundError):
        client.environments.get(env_id)


def test_without_a_key_google_models_are_refused_with_advice(gateway):
    client = gateway.client()
    with pytest.raises(errors.BadRequestError) as caught:
        client.interactions.create(model="gemini-3.8-flash", input="hi")
    assert "set GEMINI_API_KEY" in str(caught.value)
    assert "model='local'" in str(caught.value)


class _Busy(tornado.web.RequestHandler):
    """Google, rate-limiting: every call answers 429 in the reference's error shape."""

    calls = 0

    def post(self, *_: Any) -> None:
        type(self).calls += 1
        self.set_status(429)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "429", "message": "Resource exhausted"}}))


@pytest.fixture
def busy_google() -> Iterator[str]:
    with serving(_Busy) as url:
        yield url


def test_rate_limit_after_retries_is_one_clear_failure(gateway_factory, busy_google):
    _Busy.calls = 0
    front = gateway_factory(
        env={"GEMINI_API_KEY": "AIza" + "x" * 35},
        settings={"upstream_url": busy_google, "upstream_attempts": 2},
    )
    client = front.client()
    events = list(client.interactions.create(model="gemini-3.8-flash", input="hi", stream=True))
    assert events[-1].event_type == "interaction.completed"
    assert events[-1].interaction.status == "failed"
    error = next(e for e in events if e.event_type == "error")
    assert error.error.message.startswith("Google's service answered 429")
    assert "wait a minute and run it again" in error.error.message
    assert _Busy.calls == 2  # our retries, exactly as configured; the kernel's SDK adds none
