"""The gateway inside a real `jupyter server` (as its server extension), under each of the
server's three kinds of auth: a token (kernels and the SDK use it; a base_url prefix as
JupyterHub gives one); a password only (a browser's login cookie works, with XSRF; a kernel,
which has no password, is told what to do); and no auth at all (XSRF and Origin checks still
keep other web pages out). Plus the gateway's own messages in the server's log."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import threading
import types
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import pytest
from tests.extension_server import ExtensionServer, extension_server
from tests.waiting import wait_until

from jupyter_interactions._sdk import errors
from jupyter_interactions.errors import AuthError
from jupyter_interactions.session import Session

PASSWORD = "correct horse battery staple"
ELSEWHERE = "http://attacker.example:8000"
# A bound on a hang, not a speed: on a loaded machine a password login (its hash) or a
# server's first answer can take longer than httpx's default 5 s.
HANG = 60.0
# One-off requests (no cookies kept between them), each with that bound.
HTTP = types.SimpleNamespace(
    **{
        verb: functools.partial(getattr(httpx, verb), timeout=HANG)
        for verb in ("get", "post", "delete")
    }
)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtensionServer]:
    root = tmp_path_factory.mktemp("token-server")
    with extension_server(root, secrets.token_urlsafe(16), "/user/me/") as server:
        yield server


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtensionServer]:
    root = tmp_path_factory.mktemp("password-server")
    with extension_server(root, "", "/", password=PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtensionServer]:
    root = tmp_path_factory.mktemp("open-server")
    with extension_server(root, "", "/") as server:
        yield server


def _client(server: ExtensionServer, token: str) -> Any:
    from google import genai

    return genai.Client(
        api_key=token,
        http_options={"base_url": server.gateway_url, "retry_options": {"attempts": 1}},
    )


@contextlib.contextmanager
def kernel_of(
    server: ExtensionServer, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path | None = None
) -> Iterator[Session]:
    """A Session as a kernel that this server started sees it (JPY_PARENT_PID)."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime_dir or server.runtime_dir))
    monkeypatch.setenv("JPY_PARENT_PID", str(server.pid))
    monkeypatch.delenv("JUPYTER_INTERACTIONS_URL", raising=False)
    monkeypatch.delenv("JUPYTER_INTERACTIONS_TOKEN", raising=False)
    session = Session("inside/server.ipynb")
    try:
        yield session
    finally:
        session.close()


def interactions_stored(server: ExtensionServer) -> int:
    database = server.log.parent / "server-data" / "gateway.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])


# -- a server with a token -------------------------------------------------------------------


def test_url_is_under_the_servers_base_url(token_server: ExtensionServer) -> None:
    assert token_server.gateway_url.endswith("/user/me/interactions/")
    health = json.loads(urllib.request.urlopen(f"{token_server.gateway_url}health").read())
    assert health["name"] == "jupyter-interactions"


def test_sdk_streams_through_the_extension(token_server: ExtensionServer) -> None:
    client = _client(token_server, token_server.token)
    events = list(client.interactions.create(model="echo", input="inside jupyter", stream=True))
    assert events[-1].event_type == "interaction.completed"
    assert events[-1].interaction.status == "completed"
    done = client.interactions.create(
        model="echo", input="and again", previous_interaction_id=events[0].interaction.id
    )
    assert done.output_text == "and again"
    assert client.interactions.get(done.id).previous_interaction_id == events[0].interaction.id


def test_background_job_and_environment_files(token_server: ExtensionServer) -> None:
    client = _client(token_server, token_server.token)
    job = client.interactions.create(model="echo", input="later", background=True)
    assert job.status in ("queued", "in_progress", "completed")
    events = list(client.interactions.get(job.id, stream=True))
    assert events[-1].interaction.status == "completed"
    env = client.environments.create()
    client.environments.files.upload(
        environment=env.id, path="workspace/data.csv", file=b"a,b\n1,2\n", mime_type="text/csv"
    )
    data = client.environments.files.download(environment=env.id, path="workspace/data.csv")
    assert data == b"a,b\n1,2\n"
    listed = HTTP.get(
        f"{token_server.gateway_url}v1/environments/{env.id}/files/workspace/data.csv",
        params={"alt": "media"},
        headers={"Authorization": f"token {token_server.token}"},
    )
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("text/csv")


def test_wrong_token_is_refused_with_what_to_send(token_server: ExtensionServer) -> None:
    client = _client(token_server, "not-the-token")
    with pytest.raises(errors.AuthenticationError) as refused:
        client.interactions.create(model="echo", input="hi")
    assert "Jupyter server" in str(refused.value) and "token" in str(refused.value)
    body = HTTP.post(f"{token_server.gateway_url}v1/interactions", json={"model": "echo"})
    assert body.status_code == 401
    assert body.json()["error"]["code"] == "unauthenticated"


def test_a_host_that_is_not_local_is_refused(token_server: ExtensionServer) -> None:
    """A page on a DNS name rebound to 127.0.0.1 sends its own name as Host."""
    answer = HTTP.get(
        f"{token_server.gateway_url}v1/sessions/x",
        headers={"Authorization": f"token {token_server.token}", "Host": "rebound.example"},
    )
    assert answer.status_code == 403


def test_token_never_logged(token_server: ExtensionServer) -> None:
    client = _client(token_server, token_server.token)
    client.interactions.create(model="echo", input="log hunt")
    # Jupyter logs requests; neither it nor we may print the token (the SDK sends it in a header).
    text = token_server.log.read_text()
    assert token_server.token not in text.replace(f"token={token_server.token}", "")


def test_secrets_in_a_routes_url_stay_out_of_the_servers_log(
    token_server: ExtensionServer,
) -> None:
    """Tornado logs a path it cannot decode with the request's whole URL (a Google client's
    ?key= too), and the server logs a refused request with its path (an ephemeral auth token
    in it): both lines are written with the secret cut out."""
    key, auth_token = f"AIza{secrets.token_hex(12)}", secrets.token_hex(16)
    headers = {"Authorization": f"token {token_server.token}"}
    gateway = f"{token_server.gateway_url}v1/interactions"
    undecodable = HTTP.get(f"{gateway}/%FF?key={key}", headers=headers)
    assert undecodable.status_code == 400, undecodable.text
    interaction = HTTP.post(gateway, json={"model": "echo", "input": "x"}, headers=headers)
    unknown = HTTP.delete(
        f"{gateway}/{interaction.json()['id']}/auth_tokens/auth_tokens%2F{auth_token}",
        headers=headers,
    )
    assert unknown.status_code == 404, unknown.text
    text = logged(token_server, "Invalid unicode in url", f"404 DELETE {URL_PATH}")
    assert key not in text and auth_token not in text
    assert re.search(r"400 GET /user/me/interactions/v1/interactions/%FF\?\*\*\* ", text), text
    assert re.search(r"404 DELETE \S+/auth_tokens/auth_tokens%2F\*\*\* ", text), text


URL_PATH = "/user/me/interactions/v1/interactions/"


def logged(server: ExtensionServer, *lines: str) -> str:
    """The server's log once it has `lines` (it writes a request's line as it answers)."""
    wait_until(
        lambda: all(line in server.log.read_text() for line in lines),
        30,
        lambda: server.log.read_text()[-3000:],
    )
    return server.log.read_text()


def test_the_gateways_messages_reach_the_servers_log(token_server: ExtensionServer) -> None:
    client = _client(token_server, token_server.token)
    turn = client.interactions.create(
        agent="local-agent",
        agent_config={"type": "dynamic", "model": "scripted"},
        environment={"type": "remote"},
        input="```python\nprint('hello from the sandbox')\n```",
    )
    assert turn.status == "completed", turn
    text = token_server.log.read_text()
    assert (
        "jupyter_interactions.gateway] Interactions gateway mounted at /user/me/interactions/"
        in (text)
    )
    started = (
        r"\[I .* jupyter_interactions\.gateway\.sandboxes\] "
        rf"sandbox local \(\w+\) started for {turn.environment_id}"
    )
    assert re.search(started, text), text[-3000:]


def test_a_kernel_with_a_stale_token_is_pointed_to_the_servers_token(
    token_server: ExtensionServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The server restarted with a new token after the kernel read the old one."""
    stale = json.loads((token_server.runtime_dir / f"jpserver-{token_server.pid}.json").read_text())
    (tmp_path / f"jpserver-{token_server.pid}.json").write_text(
        json.dumps({**stale, "token": "an-old-token"})
    )
    with kernel_of(token_server, monkeypatch, runtime_dir=tmp_path) as session:
        with pytest.raises(AuthError) as refused:
            session.ask("hello", model="echo")
        assert session.connection.origin == "jupyter-server"
    message = refused.value.message
    assert f"the Jupyter server at {token_server.url} refused its own token" in message
    assert "restart the kernel" in message
    assert "JUPYTER_INTERACTIONS_TOKEN" not in message and "runtime file" not in message


# -- a server with a password and no token ---------------------------------------------------


def logged_in(server: ExtensionServer) -> httpx.Client:
    """A browser's session: the login form, then the cookies it set."""
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=HANG)
    browser.get("login")
    xsrf = browser.cookies["_xsrf"]
    login = browser.post("login", data={"password": PASSWORD, "_xsrf": xsrf})
    assert login.status_code == 302, login.text
    return browser


def test_a_login_cookie_works_and_xsrf_is_checked(password_server: ExtensionServer) -> None:
    gateway = password_server.gateway_url.removeprefix(password_server.url)
    browser = logged_in(password_server)
    try:
        xsrf = browser.cookies["_xsrf"]
        created = browser.post(
            f"{gateway}v1/interactions",
            json={"model": "echo", "input": "from a browser"},
            headers={"X-XSRFToken": xsrf},
        )
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "completed"
        assert browser.get(f"{gateway}v1/interactions/{created.json()['id']}").status_code == 200

        before = interactions_stored(password_server)
        forged = browser.post(f"{gateway}v1/interactions", json={"model": "echo", "input": "x"})
        assert forged.status_code == 403, forged.text  # the cookie alone is not enough
        assert interactions_stored(password_server) == before
    finally:
        browser.close()
    anonymous = HTTP.post(f"{password_server.gateway_url}v1/interactions", json={"model": "echo"})
    assert anonymous.status_code == 401


def test_a_kernel_of_a_password_server_is_told_what_to_do(
    password_server: ExtensionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with kernel_of(password_server, monkeypatch) as session:
        with pytest.raises(AuthError) as refused:
            session.ask("hello", model="echo")
    message = refused.value.message
    assert f"the Jupyter server at {password_server.url} asks for a login" in message
    assert "--IdentityProvider.token=" in message and "jupyter-interactions serve" in message
    assert "unset JUPYTER_INTERACTIONS_TOKEN" not in message


# -- a server without auth -------------------------------------------------------------------


def test_a_kernel_of_a_server_without_auth_works(
    open_server: ExtensionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with kernel_of(open_server, monkeypatch) as session:
        reply = session.ask("no auth here", model="echo")
        assert reply.text == "no auth here"
        assert session.thread().head == reply.id


def test_cross_site_requests_are_refused_without_auth(open_server: ExtensionServer) -> None:
    url = f"{open_server.gateway_url}v1/interactions"
    body = json.dumps({"model": "echo", "input": "forged"})
    before = interactions_stored(open_server)
    # A form or a no-cors fetch from another site: text/plain, its Origin, no XSRF token.
    from_elsewhere = HTTP.post(
        url, content=body, headers={"Content-Type": "text/plain", "Origin": ELSEWHERE}
    )
    assert from_elsewhere.status_code in (403, 404), from_elsewhere.text
    # Without an Origin (older browsers) the missing XSRF token still refuses it.
    without_token = HTTP.post(url, content=body, headers={"Content-Type": "text/plain"})
    assert without_token.status_code == 403, without_token.text
    read_elsewhere = HTTP.get(
        f"{open_server.gateway_url}v1/sessions/x", headers={"Origin": ELSEWHERE}
    )
    assert read_elsewhere.status_code == 404
    assert interactions_stored(open_server) == before


class _Page(http.server.BaseHTTPRequestHandler):
    """Serves an attacker's page on another origin, and records what the page asked for."""

    page: ClassVar[bytes] = b""
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(type(self).page if self.path == "/" else b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_a_page_on_another_origin_cannot_start_an_interaction(
    open_server: ExtensionServer, tmp_path: Path
) -> None:
    target = f"{open_server.gateway_url}v1/interactions"
    forged = json.dumps({"model": "echo", "input": "forged by a page"})
    _Page.page = f"""<!doctype html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="{target}">
<input name='{forged[:-1]}, "pad": "' value='"}}'></form>
<script>
fetch({json.dumps(target)}, {{method: "POST", mode: "no-cors",
       headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(forged)}}})
  .catch(() => null)
  .then(() => {{
    document.querySelector("iframe").onload = () => fetch("/done");
    document.getElementById("form").submit();
  }});
</script></body>""".encode()
    _Page.seen = []
    before = interactions_stored(open_server)
    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    try:
        subprocess.run(
            [
                shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
                "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=20000", "--dump-dom",
                f"http://127.0.0.1:{page_server.server_address[1]}/",
            ],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        page_server.shutdown()
        page_server.server_close()
    assert "/done" in _Page.seen, "the page's script did not run to its end"
    assert "Blocking Cross Origin API request for /interactions/v1/interactions" in (
        open_server.log.read_text()
    )
    assert interactions_stored(open_server) == before
