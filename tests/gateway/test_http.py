"""The HTTP surface: auth, error shapes and statuses as the SDK maps them, limits, health."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from jupyter_interactions._sdk import errors


def raw(gateway, method, path, token=True, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers.setdefault("x-goog-api-key", gateway.token)
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        return http.request(method, path, headers=headers, **kwargs)


def assert_error_shape(response, status, code=None):
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


async def test_wrong_or_missing_token_is_401_authentication_error(api, gateway):
    bad = gateway.client(token="not-the-token")
    try:
        with pytest.raises(errors.AuthenticationError) as excinfo:
            if api.mode == "async":
                await bad.aio.interactions.create(model="echo", input="hi")
            else:
                bad.interactions.create(model="echo", input="hi")
        assert excinfo.value.status_code == 401
        assert gateway.token not in str(excinfo.value)
    finally:
        await bad.aio.aclose()
        bad.close()
    for path in ("/v1/interactions/x", "/v1/agents", "/v1/environments", "/v1/sessions/k"):
        assert_error_shape(raw(gateway, "GET", path, token=False), 401, "unauthenticated")


def test_bearer_and_token_authorization_headers(gateway):
    for scheme in ("Bearer", "token"):
        response = raw(
            gateway,
            "POST",
            "/v1/interactions",
            token=False,
            headers={"Authorization": f"{scheme} {gateway.token}"},
            json={"model": "echo", "input": "ok"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"


async def test_unknown_id_is_404_not_found_error(api):
    with pytest.raises(errors.NotFoundError) as excinfo:
        await api.call("interactions.get", "int_unknown")
    assert excinfo.value.status_code == 404
    assert excinfo.value.body["error"]["code"] == "not_found"
    assert "int_unknown" in excinfo.value.body["error"]["message"]


def test_malformed_json_is_400(gateway):
    response = raw(
        gateway,
        "POST",
        "/v1/interactions",
        content=b'{"model": "echo", "input": ',
        headers={"content-type": "application/json"},
    )
    error = assert_error_shape(response, 400, "invalid_argument")
    assert "not valid JSON" in error["message"]
    assert_error_shape(raw(gateway, "POST", "/v1/interactions", json=[1, 2]), 400)
    assert_error_shape(raw(gateway, "POST", "/v1/interactions", json={"input": "x"}), 400)


def test_unknown_route_and_method_are_404_and_405_in_shape(gateway):
    assert_error_shape(raw(gateway, "GET", "/v1/nothing/here"), 404, "not_found")
    assert_error_shape(raw(gateway, "GET", "/nowhere"), 404, "not_found")
    assert_error_shape(raw(gateway, "PATCH", "/v1/interactions/x"), 405)


def test_every_api_version_segment_is_served(gateway):
    for version in ("v1", "v1beta", "v1alpha", "v1beta1"):
        response = raw(
            gateway, "POST", f"/{version}/interactions", json={"model": "echo", "input": version}
        )
        assert response.status_code == 200 and response.json()["status"] == "completed"


def test_health_needs_no_token(gateway):
    response = raw(gateway, "GET", "/health", token=False)
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["name"] == "jupyter-interactions"


def test_bad_last_event_id_is_400(gateway):
    created = raw(gateway, "POST", "/v1/interactions", json={"model": "echo", "input": "x"}).json()
    response = raw(gateway, "GET", f"/v1/interactions/{created['id']}?stream=true&last_event_id=zz")
    assert "ev_" in assert_error_shape(response, 400)["message"]


def test_request_body_over_the_limit_is_refused(gateway_factory):
    small = gateway_factory(settings={"max_body_bytes": 1000})
    ok = raw(small, "POST", "/v1/interactions", json={"model": "echo", "input": "x" * 100})
    assert ok.status_code == 200
    response = raw(small, "POST", "/v1/interactions", json={"model": "echo", "input": "x" * 5000})
    assert "larger than 1000 bytes" in assert_error_shape(response, 400)["message"]


def test_no_secret_in_logs_or_responses(gateway):
    raw(gateway, "GET", "/v1/interactions/int_nope")
    raw(
        gateway,
        "GET",
        "/v1/interactions/int_nope",
        token=False,
        headers={"x-goog-api-key": "wrong"},
    )
    log = gateway.stderr_path.read_text()
    assert gateway.token not in log
    assert "wrong" not in log.replace("wrong token", "")


def test_vertex_style_clients_work_too(gateway):
    from google import genai

    sdk = genai.Client(
        vertexai=True,
        http_options={
            "base_url": gateway.url,
            "headers": {"Authorization": f"Bearer {gateway.token}"},
            "retry_options": {"attempts": 1},
        },
    )
    try:
        it = sdk.interactions.create(model="echo", input="via vertex paths")
        assert it.output_text == "via vertex paths"
    finally:
        sdk.close()
    scoped = raw(
        gateway,
        "POST",
        "/v1beta1/projects/p/locations/global/interactions",
        json={"model": "echo", "input": "scoped"},
    )
    assert scoped.status_code == 200 and scoped.json()["status"] == "completed"
