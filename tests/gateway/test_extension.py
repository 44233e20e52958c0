"""The gateway inside a real `jupyter server` (as its server extension), driven by the SDK
with the server's own token, under a base_url prefix as JupyterHub would give it."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.genai import _interactions as errors
from tests.extension_server import extension_server


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("jupyter-server")
    with extension_server(root, secrets.token_urlsafe(16), "/user/me/") as server:
        yield {"base": server.gateway_url, "token": server.token, "log": server.log}


def _client(server: dict[str, Any], token: str) -> Any:
    from google import genai

    return genai.Client(
        api_key=token, http_options={"base_url": server["base"], "retry_options": {"attempts": 1}}
    )


def test_url_is_under_the_servers_base_url(jupyter_server):
    assert jupyter_server["base"].endswith("/user/me/interactions/")
    health = json.loads(urllib.request.urlopen(f"{jupyter_server['base']}health").read())
    assert health["name"] == "jupyter-interactions"


def test_sdk_streams_through_the_extension(jupyter_server):
    client = _client(jupyter_server, jupyter_server["token"])
    events = list(client.interactions.create(model="echo", input="inside jupyter", stream=True))
    assert events[-1].event_type == "interaction.completed"
    assert events[-1].interaction.status == "completed"
    done = client.interactions.create(
        model="echo", input="and again", previous_interaction_id=events[0].interaction.id
    )
    assert done.output_text == "and again"
    assert client.interactions.get(done.id).previous_interaction_id == events[0].interaction.id


def test_background_job_and_environment_files(jupyter_server):
    client = _client(jupyter_server, jupyter_server["token"])
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


def test_wrong_token_is_refused(jupyter_server):
    client = _client(jupyter_server, "not-the-token")
    with pytest.raises(errors.AuthenticationError):
        client.interactions.create(model="echo", input="hi")


def test_token_never_logged(jupyter_server):
    client = _client(jupyter_server, jupyter_server["token"])
    client.interactions.create(model="echo", input="log hunt")
    # Jupyter logs requests; neither it nor we may print the token (the SDK sends it in a header).
    text = Path(jupyter_server["log"]).read_text()
    assert jupyter_server["token"] not in text.replace(f"token={jupyter_server['token']}", "")
