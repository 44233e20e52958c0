"""The error tree and how it crosses the wire. A permanent error must never answer a status
google-genai retries (the SDK would repeat the call for half a minute before the user hears
of it): the tree is walked class by class, through the gateway's real HTTP mapping, and the
SDK's retries are measured on loopback rather than assumed. Google's own statuses pass
through the gateway's file routes; and no secret reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx2 as httpx
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

import jupyter_interactions.gateway.http.app
import jupyter_interactions.sandbox.jupyter
import jupyter_interactions.sandbox.local  # noqa: F401  (their errors join the tree)
from jupyter_interactions import errors
from jupyter_interactions.config import GatewayConfig, Secret
from jupyter_interactions.gateway.http.auth import with_token_auth
from jupyter_interactions.gateway.http.base import BaseHandler
from jupyter_interactions.gateway.logs import Redact, log_into
from jupyter_interactions.gateway.upstream.files import ask_google
from jupyter_interactions.gateway.wiring import GatewayState
from jupyter_interactions.protocol import sdk_retries

TOKEN = "test-token"


def error_classes() -> list[type[errors.InteractionsError]]:
    found: list[type[errors.InteractionsError]] = []
    pending = [errors.InteractionsError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def instances() -> list[errors.InteractionsError]:
    made: list[errors.InteractionsError] = [cls("what happened") for cls in error_classes()]
    made += [errors.UpstreamError("Google said so", status=s) for s in (400, 403, 404, 413)]
    made += [errors.UpstreamError("Google failed", status=s) for s in (409, 429, 500, 503)]
    return made


def test_the_tree_holds_every_error_we_raise():
    names = {cls.__name__ for cls in error_classes()}
    # Interrupted is a KeyboardInterrupt on the kernel's side, never an answer on the wire.
    assert set(errors.__all__) - {"Interrupted"} <= names and "KernelDied" in names


@pytest.mark.parametrize("error", instances(), ids=lambda e: f"{type(e).__name__}")
def test_a_permanent_error_is_never_a_status_the_sdk_retries(error):
    if error.permanent:
        assert 400 <= error.http_status < 500, error
        assert not sdk_retries(error.http_status), error
    else:  # worth retrying: the gateway unreachable, Google busy or failing, or a bug
        assert sdk_retries(error.http_status) or type(error) is errors.InteractionsError


@pytest.fixture
async def raising_gateway(tmp_path):
    """The gateway's real BaseHandler behind its token shell, on loopback, in a route that
    raises any error."""
    made = {type(e).__name__ + str(e.http_status): e for e in instances()}

    class Raise(BaseHandler):
        def get(self, name: str) -> None:
            raise made[name]

    state = GatewayState(GatewayConfig(token=Secret(TOKEN), data_dir=tmp_path))
    app = tornado.web.Application([(r"/raise/(.*)", with_token_auth(Raise), {"state": state})])
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", made
    server.stop()
    await server.close_all_connections()


async def test_every_error_crosses_the_wire_with_its_status_in_the_reference_shape(
    raising_gateway,
):
    url, made = raising_gateway
    async with httpx.AsyncClient(base_url=url, headers={"x-goog-api-key": TOKEN}) as http:
        for name, error in made.items():
            response = await http.get(f"/raise/{name}")
            assert response.status_code == error.http_status, name
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == {"error": {"code": error.code, "message": error.message}}
            if error.permanent:
                assert response.status_code < 500 and response.status_code != 409, name


class _Answer(tornado.web.RequestHandler):
    """A loopback 'Google' that answers every call with `status`, and counts the calls."""

    status = 400
    calls = 0

    def prepare(self) -> None:
        type(self).calls += 1
        self.set_status(self.status)
        self.set_header("Content-Type", "application/json")
        error = {"code": str(self.status), "message": f"said {self.status}"}
        self.finish(json.dumps({"error": error}))


@pytest.fixture
async def google():
    app = tornado.web.Application([(r"/.*", _Answer)])
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}/"
    server.stop()
    await server.close_all_connections()


def _sdk(url: str, attempts: int) -> Any:
    from google import genai

    retry = {"attempts": attempts, "initial_delay": 0.01, "max_delay": 0.01, "jitter": 0}
    return genai.Client(api_key="k", http_options={"base_url": url, "retry_options": retry})


STATUSES = [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504]


@pytest.mark.parametrize("status", STATUSES)
async def test_the_sdk_retries_exactly_the_statuses_we_avoid(google, status):
    """Measured, not assumed: google-genai's interactions (its `_gaos` client) and file
    downloads (its classic client) each retry a status iff `sdk_retries` says so."""
    sdk = _sdk(google, attempts=2)
    try:
        _Answer.status, _Answer.calls = status, 0
        with pytest.raises(Exception):  # noqa: B017  (the SDK's own class for the status)
            await sdk.aio.interactions.get("int_x")
        interactions_retried = _Answer.calls > 1
        _Answer.calls = 0
        with pytest.raises(Exception):  # noqa: B017
            await sdk.aio.environments.files.download(environment="env_x", path="a.txt")
        download_retried = _Answer.calls > 1
    finally:
        await sdk.aio.aclose()
        sdk.close()
    retried = interactions_retried or download_retried
    assert retried == sdk_retries(status), (status, interactions_retried, download_retried)


@pytest.mark.parametrize(
    ("status", "kind", "permanent"),
    [
        (400, errors.UpstreamError, True),
        (413, errors.UpstreamError, True),
        (401, errors.ConfigError, True),
        (403, errors.ConfigError, True),
        (404, errors.NotFoundError, True),
        (429, errors.UpstreamError, False),
        (503, errors.UpstreamError, False),
    ],
)
async def test_google_statuses_pass_through_the_file_routes(google, status, kind, permanent):
    """A 4xx from Google's file routes is a 4xx here (not a 502 the SDK would retry)."""
    sdk = _sdk(google, attempts=1)
    _Answer.status = status
    try:
        files = sdk.aio.environments.files
        for call, args, kwargs in (
            (files.download, (), {"environment": "env_x", "path": "a.txt"}),
            (files.list, ("env_x", "w"), {}),
        ):
            with pytest.raises(kind) as raised:
                await ask_google(call, *args, **kwargs)
            error = raised.value
            assert error.permanent is permanent
            assert error.http_status == (
                status if kind is errors.UpstreamError else kind.http_status
            )
            assert f"said {status}" in error.message or kind is errors.NotFoundError
    finally:
        await sdk.aio.aclose()
        sdk.close()


def test_log_lines_lose_query_strings_and_credentials():
    record = logging.LogRecord(
        "tornado.access", logging.WARNING, __file__, 1, "%d %s", (401, "GET /v1/x?key=SECRET"), None
    )
    assert Redact().filter(record) and record.getMessage() == "401 GET /v1/x?***"
    headers = "{'Authorization': 'Bearer SECRET2', 'x-goog-api-key': 'SECRET3'}"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, headers, None, None)
    Redact().filter(record)
    assert "SECRET" not in record.getMessage()


def test_a_hosts_log_gets_the_gateways_lines_once_and_without_secrets():
    """Inside a Jupyter server the package's loggers write through the server's log: a line
    of a child logger (a handler's filter sees it, a logger's would not) loses its secrets,
    in its traceback too, and is written once, at the host's level; the undo restores."""
    ours = logging.getLogger("jupyter_interactions")
    before = ours.level, ours.propagate, list(ours.handlers)
    written = io.StringIO()
    host = logging.getLogger("test-host")
    host.propagate = False
    host_handler = logging.StreamHandler(written)
    host.addHandler(host_handler)
    host.setLevel(logging.INFO)
    stop = log_into(host)
    try:
        child = logging.getLogger("jupyter_interactions.gateway.upstream")
        try:
            raise RuntimeError("GET https://example.invalid/v1?key=SECRET1 failed")
        except RuntimeError:
            child.exception("sent {'x-goog-api-key': 'SECRET2'}")
        child.debug("below the host's level")
    finally:
        stop()
        host.removeHandler(host_handler)
    text = written.getvalue()
    assert "SECRET" not in text and "?***" in text and "'x-goog-api-key': '***'" in text
    assert text.count("sent {") == 1 and "below" not in text
    assert (ours.level, ours.propagate, ours.handlers) == before
