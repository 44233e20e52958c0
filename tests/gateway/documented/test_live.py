"""Live interactions over WebSocket (google-genai 3.6: `client.aio.interactions.connect`),
driven by the real SDK's live client against a real gateway: text in, streamed text out,
complete, cancel, reconnect and follow, refusals, and auth as the SDK sends it."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import websockets
from google import genai
from google.genai import interactions as sdk
from tests.extension_server import extension_server

from jupyter_interactions._sdk import errors
from jupyter_interactions.errors import RequestError
from jupyter_interactions.gateway.models.echo import EchoModel
from jupyter_interactions.gateway.runs.emitter import Emitter
from jupyter_interactions.gateway.runs.live import LiveConversation


async def until_stop(connection: Any) -> list[Any]:
    """Events up to the end of the model's answer to the last input."""
    events = []
    async for event in connection.receive():
        events.append(event)
        if event.event_type in ("step.stop", "error"):
            break
    return events


def text_of(events: list[Any]) -> str:
    return "".join(e.delta.text for e in events if e.event_type == "step.delta")


async def wait_for_status(client: Any, interaction_id: str, status: str) -> Any:
    for _ in range(2000):  # a bound on hangs only
        interaction = await client.interactions.get(interaction_id)
        if interaction.status == status:
            return interaction
        await asyncio.sleep(0.05)
    raise AssertionError(f"{interaction_id} never became {status}: {interaction.status}")


async def test_text_in_streamed_text_out_then_complete(gateway: Any) -> None:
    async with gateway.aio() as client:
        live = await client.interactions.create(model="echo", background=True)
        assert live.status == "in_progress"
        async with client.interactions.connect(live.id) as connection:
            await connection.send("Hello from the live client")
            first = await until_stop(connection)
            await connection.send("And a second turn")
            second = await until_stop(connection)
            await connection.complete()
            terminal = [event async for event in connection.receive()]

        assert isinstance(first[0], sdk.InteractionConnectedEvent)
        assert [e.event_type for e in first[1:]] == ["step.start", *["step.delta"] * 5, "step.stop"]
        assert first[1].step.type == "model_output"
        assert text_of(first) == "Hello from the live client"
        assert text_of(second) == "And a second turn"
        (end,) = terminal
        assert isinstance(end, sdk.LiveInteractionCompletedEvent)
        assert end.status.code == 0 and end.usage.total_output_tokens == 9

        stored = await client.interactions.get(live.id)
        assert stored.status == "completed"
        assert [s.type for s in stored.steps] == ["user_input", "model_output"] * 2
        assert stored.output_text == "And a second turn"
        # The same conversation, followed over SSE, and continued as any interaction is.
        replay = [e async for e in await client.interactions.get(live.id, stream=True)]
        assert [e.step.type for e in replay if e.event_type == "step.start"] == [
            "user_input",
            "model_output",
        ] * 2
        more = await client.interactions.create(
            model="echo", input="and after", previous_interaction_id=live.id
        )
        assert more.output_text == "and after"


async def test_the_socket_itself_can_create_the_live_interaction(gateway: Any) -> None:
    """The protocol's own `interaction.create` event (the SDK's connect() always sends
    interaction.connect first, so this speaks the socket's JSON as the SDK does)."""
    url = gateway.url.replace("http://", "ws://").rstrip("/") + "/v1beta/interactions/live"
    headers = {"x-goog-api-key": gateway.token}
    async with websockets.connect(url, additional_headers=headers) as socket:
        create = {
            "event_type": "interaction.create",
            "model": "echo",
            "system_instruction": "Be brief.",
        }
        text = {"event_type": "input", "content": [{"type": "text", "text": "made here"}]}
        await socket.send(
            json.dumps({"events": [create, text, {"event_type": "interaction.complete"}]})
        )
        events = [json.loads(frame) async for frame in socket]
    created, *steps, end = events
    assert created["event_type"] == "interaction.created"
    assert (
        "".join(e["delta"]["text"] for e in steps if e["event_type"] == "step.delta") == "made here"
    )
    assert end["event_type"] == "interaction.completed" and end["status"] == {"code": 0}
    async with gateway.aio() as client:
        stored = await client.interactions.get(created["interaction_id"])
        assert stored.status == "completed" and stored.system_instruction == "Be brief."
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    async with websockets.connect(url, additional_headers=headers) as socket:
        await socket.send(json.dumps({**create, "tools": [tool]}))
        error = json.loads(await socket.recv())
        await socket.wait_closed()
    assert error["event_type"] == "error" and "take no tools" in error["error"]["message"]
    assert socket.close_code == 1008


async def test_cancel_stops_the_turn_under_way(gateway: Any) -> None:
    async with gateway.aio() as client:
        live = await client.interactions.create(model="slow", background=True)
        async with client.interactions.connect(live.id) as connection:
            await connection.send("word " * 200)
            async for event in connection.receive():
                if event.event_type == "step.delta":
                    break
            await connection.cancel()
        cancelled = await wait_for_status(client, live.id, "cancelled")
        (answer,) = [s for s in cancelled.steps if s.type == "model_output"]
        assert 0 < len(answer.content[0].text.split()) < 200


async def test_a_detached_client_reconnects_and_the_interaction_waited(gateway: Any) -> None:
    async with gateway.aio() as client:
        live = await client.interactions.create(model="echo", background=True)
        async with client.interactions.connect(live.id) as connection:
            await connection.send("before the drop")
            await until_stop(connection)
        assert (await client.interactions.get(live.id)).status == "in_progress"
        async with client.interactions.connect(live.id) as connection:
            replayed = await until_stop(connection)  # no seq number: the log from its start
            assert text_of(replayed) == "before the drop"
            await connection.send("after it")
            assert text_of(await until_stop(connection)) == "after it"
            await connection.complete()
            assert [e.event_type async for e in connection.receive()] == ["interaction.completed"]


async def test_connecting_to_a_finished_interaction_replays_it(gateway: Any) -> None:
    async with gateway.aio() as client:
        done = await client.interactions.create(model="echo", input="already answered")
        async with client.interactions.connect(done.id) as connection:
            events = [event async for event in connection.receive()]
            with pytest.raises(RuntimeError, match="terminal"):
                await connection.send("too late")
        assert text_of(events) == "already answered"
        assert isinstance(events[-1], sdk.LiveInteractionCompletedEvent)


async def test_unsupported_setups_are_refused_saying_what_works(gateway: Any) -> None:
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    async with gateway.aio() as client:
        with pytest.raises(errors.BadRequestError, match="take no tools"):
            await client.interactions.create(model="echo", background=True, tools=[weather])
        with pytest.raises(errors.BadRequestError, match="audio cannot be honoured"):
            await client.interactions.create(
                model="echo", background=True, response_modalities=["audio"]
            )
        live = await client.interactions.create(model="echo", background=True)
        async with client.interactions.connect(live.id) as connection:
            audio = {"type": "audio", "mime_type": "audio/pcm", "data": "AAAA"}
            await connection.send({"event_type": "input", "content": [audio]})
            (_connected, error) = await until_stop(connection)
            assert isinstance(error, sdk.ErrorEvent)
            assert "audio input is not supported" in error.error.message
            assert "{'type': 'text', 'text': ...}" in error.error.message
            await connection.send({"event_type": "world_setup", "world_prompt": {"text": "a"}})
            (error,) = await until_stop(connection)
            assert "world_setup is not supported" in error.error.message
            await connection.send("text still works")
            assert text_of(await until_stop(connection)) == "text still works"
            await connection.cancel()


async def test_unknown_interaction_is_an_error_event_then_the_socket_closes(gateway: Any) -> None:
    async with gateway.aio() as client:
        async with client.interactions.connect("int_not_here") as connection:
            events = []
            with pytest.raises(sdk.APIWebSocketError):
                async for event in connection.receive():
                    events.append(event)
        assert [e.error.code for e in events] == ["not_found"]
        assert "int_not_here" in events[0].error.message


async def test_auth_is_the_gateway_token_or_an_auth_token_of_the_interaction(
    gateway: Any,
) -> None:
    async with gateway.aio() as client:
        live = await client.interactions.create(model="echo", background=True)
        other = await client.interactions.create(model="echo", background=True)
        talk = await client.interactions.auth_tokens.create(live.id)
        read = await client.interactions.auth_tokens.create(live.id, extra_body={"scope": "read"})

        async with gateway.aio(token="wrong") as stranger:
            with pytest.raises(sdk.APIWebSocketError, match="setup failed") as excinfo:
                async with stranger.interactions.connect(live.id):
                    pass
            assert excinfo.value.http_status == 401

        async with gateway.aio(token=talk.auth_token) as browser:
            async with browser.interactions.connect(live.id) as connection:
                await connection.send("from the browser")
                assert text_of(await until_stop(connection)) == "from the browser"
            async with browser.interactions.connect(other.id) as connection:
                events = []
                with pytest.raises(sdk.APIWebSocketError):
                    async for event in connection.receive():
                        events.append(event)
                assert [e.error.code for e in events] == ["permission_denied"]

        async with gateway.aio(token=read.auth_token) as follower:
            async with follower.interactions.connect(live.id) as connection:
                replayed = await until_stop(connection)
                assert text_of(replayed) == "from the browser"
                await connection.send("may I?")
                (error,) = await until_stop(connection)
                assert "this auth token may only read it" in error.error.message

        for interaction in (live, other):
            await client.interactions.cancel(interaction.id)


async def test_a_live_interaction_ends_incomplete_when_idle_or_cut_short() -> None:
    """Its turns in-process, on the real echo model: no input for its idle time ends it
    `incomplete`, as does completing it after a turn cut by max_output_tokens."""
    published: list[dict[str, Any]] = []
    idle = LiveConversation(idle_seconds=0.05)
    assert await idle.run(EchoModel(), {}, [], Emitter(published.append)) == "incomplete"
    assert published == []

    short = LiveConversation()
    short.send("one two three four")
    short.complete()
    body = {"generation_config": {"max_output_tokens": 2}}
    emitter = Emitter(published.append)
    assert await short.run(EchoModel(), body, [], emitter) == "incomplete"
    assert [s["type"] for s in emitter.steps] == ["user_input", "model_output"]
    with pytest.raises(RequestError, match="takes no input"):
        short.send("after complete")


async def test_live_with_an_auth_token_through_the_jupyter_server_extension(
    tmp_path: Path,
) -> None:
    """The same socket and tokens under a Jupyter server's base_url, behind its token."""
    with extension_server(tmp_path, secrets.token_urlsafe(16), "/user/me/") as server:
        options = {"base_url": server.gateway_url, "retry_options": {"attempts": 1}}
        notebook = genai.Client(api_key=server.token, http_options=options)
        live = await notebook.aio.interactions.create(model="echo", background=True)
        token = await notebook.aio.interactions.auth_tokens.create(live.id)
        browser = genai.Client(api_key=token.auth_token, http_options=options)
        try:
            async with browser.aio.interactions.connect(live.id) as connection:
                await connection.send("inside jupyter")
                assert text_of(await until_stop(connection)) == "inside jupyter"
                await connection.complete()
                assert [e.event_type async for e in connection.receive()] == [
                    "interaction.completed"
                ]
            with pytest.raises(errors.AuthenticationError):
                await browser.aio.interactions.create(model="echo", input="not with a token")
        finally:
            await notebook.aio.aclose()
            await browser.aio.aclose()
