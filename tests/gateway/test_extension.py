"""The gateway inside a real `jupyter server` (as its server extension), driven by the SDK
with the server's own token, under a base_url prefix as JupyterHub would give it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.genai import _interactions as errors


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("jupyter-server")
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_INTERACTIONS_DATA_DIR": str(root / "data"),
        "JUPYTER_INTERACTIONS_CONFIG": str(root / "none.json"),
    }
    env.pop("GEMINI_API_KEY", None)
    env.pop("GOOGLE_API_KEY", None)
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server",
            "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", "--no-browser", "--allow-root",
            f"--IdentityProvider.token={token}", "--ServerApp.base_url=/user/me/",
            f"--ServerApp.root_dir={root}",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    runtime = root / "runtime" / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + 60
    while not runtime.exists():
        assert proc.poll() is None, (root / "server.log").read_text()
        assert time.monotonic() < deadline, "jupyter server did not start"
        time.sleep(0.1)
    info = json.loads(runtime.read_text())
    base = f"{info['url']}interactions/"
    while True:  # the start hook opens the store just after the server listens
        try:
            urllib.request.urlopen(f"{base}health", timeout=2).read()
            break
        except OSError:
            assert time.monotonic() < deadline, (root / "server.log").read_text()
            time.sleep(0.1)
    yield {"base": base, "token": token, "log": root / "server.log", "info": info}
    proc.terminate()
    proc.wait(20)
    log.close()


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
