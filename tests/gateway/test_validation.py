"""Validation at the edge, one regression test per root cause the fuzzer found (issue 7):
each was a 500, a 200 for something never stored, or NaN in an answer; each is now a 400
in the reference's shape that names the field."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx2 as httpx
import pytest
from tests.gateway.test_http import assert_error_shape, raw


def refused(response: httpx.Response, field: str | None = None) -> str:
    """The message of a 400 in the reference's shape (naming `field`, if given)."""
    message = assert_error_shape(response, 400, "invalid_argument")["message"]
    if field is not None:
        assert message.startswith(field) or f" {field}" in message, message
    return message


def create(gateway: Any, body: bytes | dict[str, Any], **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return raw(gateway, "POST", "/v1/interactions", content=content, headers=headers, **kwargs)


def test_deep_nesting_is_refused_before_parsing(gateway):
    message = refused(create(gateway, b"[" * 5000 + b"]" * 5000))
    assert "5000 levels deep" in message and "at most 100" in message
    deep = b'{"model": "echo", "input": ' + b"[" * 101 + b"]" * 101 + b"}"
    refused(create(gateway, deep))
    # Brackets inside strings are text, not nesting.
    assert create(gateway, {"model": "echo", "input": "[" * 5000}).status_code == 200


@pytest.mark.parametrize("previous", [{}, [], 2**63, 5, True])
def test_previous_interaction_id_of_another_type_is_refused(gateway, previous):
    body = {"model": "echo", "input": "x", "previous_interaction_id": previous}
    refused(create(gateway, body), "previous_interaction_id")


def test_object_previous_id_is_never_a_200_for_something_unstored(gateway):
    # It used to answer 200 `completed`, and GET then said 404: no row was written.
    response = create(gateway, {"model": "echo", "input": "x", "previous_interaction_id": {}})
    assert response.status_code == 400


def test_content_of_the_wrong_type_is_refused(gateway):
    body = {"model": "echo", "input": [{"type": "user_input", "content": 5}]}
    assert "valid list" in refused(create(gateway, body), "input[0].content")
    upper = {"model": "echo", "input": [{"type": "USER_INPUT", "content": 5}]}
    refused(create(gateway, upper), "input[0].content")


def test_a_type_that_is_not_a_string_is_refused(gateway):
    tools = [{"type": {"type": "user_input"}, "name": "f"}]
    refused(create(gateway, {"model": "echo", "input": "x", "tools": tools}), "tools[0].type")


@pytest.mark.parametrize("route", ["/v1/agents", "/v1/environments"])
def test_page_token_out_of_range_is_refused(gateway, route):
    refused(raw(gateway, "GET", f"{route}?page_token={10**24}"), "page_token")
    refused(raw(gateway, "GET", f"{route}?page_size=x"), "page_size")
    assert raw(gateway, "GET", f"{route}?page_size=100000").status_code == 200


@pytest.mark.parametrize("event_id", ["ev_\u00b2", f"ev_{10**23}", "ev_-1", "ev_"])
def test_last_event_id_must_be_ascii_digits_in_range(gateway, event_id):
    done = create(gateway, {"model": "echo", "input": "x"}).json()
    query = {"stream": "true", "last_event_id": event_id}
    response = raw(gateway, "GET", f"/v1/interactions/{done['id']}", params=query)
    assert "ev_12" in refused(response, "last_event_id")


def test_lone_surrogate_is_refused_wherever_it_is(gateway):
    done = create(gateway, {"model": "echo", "input": "x"}).json()
    head = b'{"head": "\\ud800"}'
    response = raw(gateway, "PUT", "/v1/sessions/nb/threads/main", content=head)
    assert "surrogate" in refused(response, "head")
    refused(create(gateway, b'{"model": "echo", "input": "a\\udfffb"}'), "input")
    refused(create(gateway, b'{"model": "echo", "input": "x", "\\ud800": 1}'))
    refused(create(gateway, b'{"model": "echo", "input": "\xed\xa0\x80"}'))  # as UTF-8 bytes
    # A proper pair is text.
    pair = create(gateway, b'{"model": "echo", "input": "\\ud83d\\ude00"}')
    assert (
        pair.status_code == 200 and pair.json()["steps"][-1]["content"][0]["text"] == "\U0001f600"
    )
    assert (
        raw(gateway, "PUT", "/v1/sessions/nb/threads/main", json={"head": done["id"]}).json()[
            "head"
        ]
        == done["id"]
    )


def test_long_upload_file_name_is_refused(client, gateway):
    env = client.environments.create()
    path = f"/upload/v1/environments/{env.id}/files/workspace/{'n' * 300}.txt"
    headers = {"X-Goog-Upload-Command": "start", "X-Goog-Upload-Protocol": "resumable"}
    assert "at most 255 bytes" in refused(raw(gateway, "PUT", path, headers=headers), "path")
    sources = [{"type": "inline", "content": "x", "target": "a" * 300}]
    refused(raw(gateway, "POST", "/v1/environments", json={"sources": sources}), "sources[0]")


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"nan"', b'"inf"'])
def test_max_wall_seconds_must_be_finite(gateway, value):
    body = (
        b'{"agent": "local-agent", "input": "x", "agent_config": {"type": "dynamic", '
        b'"model": "scripted", "max_wall_seconds": ' + value + b"}}"
    )
    refused(create(gateway, body), "agent_config.max_wall_seconds")


def test_numbers_must_be_finite_and_in_range(gateway):
    for body in (
        b'{"model": "echo", "input": "x", "generation_config": {"temperature": NaN}}',
        b'{"model": "echo", "input": "x", "generation_config": {"temperature": "nan"}}',
        b'{"model": "echo", "input": "x", "generation_config": {"temperature": 9}}',
        b'{"model": "echo", "input": "x", "generation_config": {"seed": 1e999}}',
        b'{"model": "echo", "input": "x", "generation_config": {"max_output_tokens": "1e30"}}',
    ):
        refused(create(gateway, body), "generation_config.")
    refused(create(gateway, b'{"model": "echo", "input": "x", "n": 100000000000000000000}'), "n")


def test_input_only_flags_must_be_booleans(gateway):
    # "false" used to mean true to the gateway (a non-empty string) and false to the SDK.
    for flag in ("stream", "background", "store"):
        refused(create(gateway, {"model": "echo", "input": "x", flag: "false"}), flag)


def test_a_body_past_the_limit_gets_the_error_shape_not_an_empty_400(gateway):
    forty_mib = b'{"model": "echo", "input": "' + b"x" * (40 * 1024 * 1024) + b'"}'
    message = refused(create(gateway, forty_mib))
    assert "larger than" in message

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"model": "echo", "input": "'
        for _ in range(40):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    refused(_chunked(gateway, chunks()))


def _chunked(gateway: Any, body: Any) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, timeout=60) as http:
        return http.post(
            "/v1/interactions",
            content=body,
            headers={"x-goog-api-key": gateway.token, "content-type": "application/json"},
        )


def test_queries_headers_and_paths_are_checked(gateway):
    refused(raw(gateway, "GET", "/v1/interactions/int_x?stream=maybe"), "stream")
    refused(raw(gateway, "GET", f"/v1/interactions/{'i' * 300}"), "interaction id")
    refused(raw(gateway, "GET", "/v1/agents/%C2%B2"), "agent id")
    refused(raw(gateway, "DELETE", "/v1/interactions/int_x", content=b'{"x": 1}'))
    refused(
        create(gateway, {"model": "echo", "input": "x"}, headers={"x-interactions-thread": "%00"})
    )
    refused(raw(gateway, "GET", "/v1/environments/env_x/files/a?alt=proto"), "alt")


def test_every_answer_is_strict_json(gateway):
    """What used to reach an answer as NaN (an echoed generation_config, a model's
    function-call arguments) cannot get in."""

    def strict(text: str) -> Any:
        def refuse(token: str) -> Any:
            raise AssertionError(f"{token} in an answer")

        return json.loads(
            text, parse_constant=refuse, parse_float=lambda t: math.isfinite(float(t))
        )

    ok = create(gateway, {"model": "echo", "input": "x", "generation_config": {"temperature": 1.5}})
    strict(ok.text)
    strict(create(gateway, b'{"model": "echo", "input": Infinity}').text)
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    for arguments in ('{"a": NaN}', '{"a": 1e999}', '{"a": [-Infinity]}'):
        made = create(gateway, {"model": "echo", "input": f"call f {arguments}", "tools": tools})
        assert made.status_code == 200 and made.json()["status"] == "completed"
        strict(made.text)
        strict(raw(gateway, "GET", f"/v1/interactions/{made.json()['id']}").text)
    called = create(gateway, {"model": "echo", "input": 'call f {"a": 1.5}', "tools": tools})
    assert called.json()["status"] == "requires_action"


@pytest.mark.parametrize("mode", ["x" * 300, "%ff", "%00"])
def test_environment_listing_mode_is_one_of_the_modes(gateway, mode):
    refused(raw(gateway, "GET", f"/v1/environments?mode={mode}"), "mode")
    assert "on_demand" in refused(raw(gateway, "GET", "/v1/environments?mode=nope"), "mode")
    for listed in ("on_demand", "ON_DEMAND", "self_hosted"):
        assert raw(gateway, "GET", f"/v1/environments?mode={listed}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent": "local-agent", "environment": "../x"}, "environment"),
        ({"agent": "local-agent", "environment": {"environment_id": "a" * 300}}, "environment"),
        ({"agent": "local-agent", "environment": {"from_environment": "x y"}}, "environment"),
    ],
)
def test_every_environment_form_names_an_environment_id(gateway, body, field):
    # "remote", an id, "environments/<id>" and objects naming one are the documented forms
    # (placement.py); anything else in their place is refused before it reaches a sandbox.
    refused(create(gateway, {**body, "input": "x"}), field)
    agent = {"id": "a1", "base_agent": "local-agent", "base_environment": "%2f"}
    refused(raw(gateway, "POST", "/v1/agents", json=agent), "base_environment")
    refused(raw(gateway, "POST", "/v1/environments", json={"from_environment": "."}))
