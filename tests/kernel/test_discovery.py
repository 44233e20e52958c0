"""Finding the gateway: a running one through its runtime file, else one started detached."""

from __future__ import annotations

import json
import os
import re
import signal

from tests.extension_server import extension_server

from jupyter_interactions import client, config
from jupyter_interactions.errors import GatewayError
from jupyter_interactions.session import Session


def test_starts_a_detached_gateway_then_finds_it_again(isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(isolated / "none.json"))
    first = Session("discovery.ipynb")
    pid = None
    try:
        reply = first.ask("hello", model="echo")
        assert reply.text == "hello"
        assert first.connection.origin == "started"
        info = json.loads(config.runtime_file().read_text())
        pid = info["pid"]
        assert first.connection.base_url == info["url"]
        # Another kernel finds the same gateway through its runtime file, and the thread.
        second = Session("discovery.ipynb")
        assert second.thread().head == reply.id
        assert second.connection.origin == "runtime-file"
        second.close()
    finally:
        first.close()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)  # it outlives kernels by design; stop it here
            for process in client._STARTED:  # and reap it: this process started it
                if process.pid == pid:
                    process.wait(15)


def test_gateway_that_cannot_start(isolated, monkeypatch):
    broken = isolated / "broken.json"
    broken.write_text("{not json")
    monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(broken))
    session = Session("nostart.ipynb")
    try:
        session.ask("hello", model="echo")
    except GatewayError as exc:
        message = exc.message
    else:
        raise AssertionError("the gateway should not have started")
    log = config.runtime_file().parent / "jupyter-interactions-gateway.log"
    assert re.fullmatch(
        rf"could not start the gateway \(.*cannot read {re.escape(str(broken))}.*\); "
        rf"see {re.escape(str(log))}, fix that and re-run the cell, "
        r"or use --direct with GEMINI_API_KEY",
        message,
    ), message


def test_uses_the_gateway_inside_its_jupyter_server(isolated, monkeypatch):
    """A kernel started by Jupyter Server (JPY_PARENT_PID) uses that server's gateway."""
    with extension_server(isolated, "server-token-for-kernel-tests", "/lab/me/") as server:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
        monkeypatch.setenv("JPY_PARENT_PID", str(server.pid))
        monkeypatch.setenv("JPY_SESSION_NAME", "inside/server.ipynb")
        session = Session()
        try:
            reply = session.ask("inside the server", model="echo")
            assert reply.text == "inside the server"
            assert session.key == "inside/server.ipynb"
            assert session.connection.origin == "jupyter-server"
            assert session.connection.base_url == server.gateway_url
            assert session.thread().head == reply.id
        finally:
            session.close()
