"""Finding the gateway: a running one through its runtime file, else one started detached."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request

from tests.extension_server import extension_server

from jupyter_interactions import config, launch
from jupyter_interactions.errors import GatewayError
from jupyter_interactions.launch import serve_command
from jupyter_interactions.session import Session


def test_starts_a_detached_gateway_then_finds_it_again(isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(isolated / "none.json"))
    first = Session("discovery.ipynb")
    pid = None
    try:
        reply = first.ask("hello", model="echo")
        assert reply.text == "hello"
        assert first.connection.origin == "started"
        pid = first.connection.pid
        info = json.loads(config.runtime_file(pid).read_text())
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
            for process in launch._STARTED:  # and reap it: this process started it
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
    log = config.runtime_dir() / "jupyter-interactions-gateway.log"
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


def test_finds_the_gateway_that_owns_its_data_dir_among_several(isolated, monkeypatch):
    from tests.conftest import start_gateway

    shared = {"JUPYTER_RUNTIME_DIR": str(isolated / "shared-runtime")}
    a = start_gateway(isolated / "a", env=shared)
    b = start_gateway(isolated / "b", env=shared)
    try:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", shared["JUPYTER_RUNTIME_DIR"])
        monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(isolated / "none.json"))
        for gateway in (a, b, a):
            monkeypatch.setenv("JUPYTER_INTERACTIONS_DATA_DIR", str(gateway.data_dir))
            found = launch.connect()
            assert (found.base_url, found.origin, found.pid) == (
                gateway.url,
                "runtime-file",
                gateway.proc.pid,
            )
    finally:
        a.stop()
        b.stop()


def test_outside_its_server_a_kernel_uses_the_server_that_owns_its_data_dir(isolated, monkeypatch):
    """No JPY_PARENT_PID (a terminal IPython, say): the Jupyter server whose extension owns
    the data dir is found through the lock, and a standalone gateway there would refuse."""
    with extension_server(isolated, "token-of-the-owner", "/") as server:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
        monkeypatch.setenv("JUPYTER_INTERACTIONS_DATA_DIR", str(isolated / "server-data"))
        monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(isolated / "none.json"))
        found = launch.connect()
        assert (found.base_url, found.origin, found.pid) == (
            server.gateway_url,
            "jupyter-server",
            server.pid,
        )
        refused = subprocess.run(
            serve_command(data_dir=isolated / "server-data"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2
        assert f"is in use by process {server.pid}" in refused.stderr


def test_after_an_idle_exit_the_next_call_starts_a_gateway_and_the_thread_goes_on(
    isolated, monkeypatch
):
    settings = isolated / "settings.json"
    # Long enough that the gateway cannot go idle between starting and the kernel's request.
    settings.write_text(json.dumps({"idle_exit_seconds": 3}))
    monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(settings))
    session = Session("idle.ipynb")
    started = []
    try:
        first = session.ask("first", model="echo")
        started.append(session.connection.pid)
        session.close()  # the kernel lets go: nothing attached, nothing running
        process = next(p for p in launch._STARTED if p.pid == started[0])
        assert process.wait(60) == 0
        assert not config.runtime_file(started[0]).exists()

        second = session.ask("second", model="echo")  # the same Session, a new gateway
        started.append(session.connection.pid)
        assert session.connection.origin == "started" and started[1] != started[0]
        assert session.client.interactions.get(second.id).previous_interaction_id == first.id
    finally:
        session.close()
        for process in launch._STARTED:
            if process.pid in started and process.poll() is None:
                process.terminate()
                process.wait(15)


def test_a_server_whose_extension_could_not_own_the_data_dir_sends_kernels_to_the_owner(
    isolated, monkeypatch
):
    """A standalone gateway owns the data dir first: the Jupyter server started later does
    not touch it (its extension refuses, so recovery never runs there), says it is not
    ready, and its kernels use the owner instead."""
    from tests.conftest import start_gateway

    shared = isolated / "server-runtime"
    owner = start_gateway(
        isolated / "owner",
        data_dir=isolated / "server-data",
        env={"JUPYTER_RUNTIME_DIR": str(shared)},
    )
    try:
        with extension_server(isolated, "token-of-the-server", "/", ready=False) as server:
            health = json.loads(urllib.request.urlopen(f"{server.gateway_url}health").read())
            assert health["ok"] is False
            assert "is in use by the gateway on " + owner.url in server.log.read_text()
            monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
            monkeypatch.setenv("JUPYTER_INTERACTIONS_DATA_DIR", str(isolated / "server-data"))
            monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(isolated / "none.json"))
            monkeypatch.setenv("JPY_PARENT_PID", str(server.pid))
            found = launch.connect()
            assert (found.base_url, found.origin) == (owner.url, "runtime-file")
    finally:
        owner.stop()
