"""The gateway process: startup line, runtime file, clean exit, and restarts that lose
nothing completed while failing, clearly, what was running."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from jupyter_interactions._sdk import errors
from jupyter_interactions.launch import is_loopback, serve_command


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_restart_with_a_running_background_interaction(gateway_factory, how):
    from tests.conftest import Api

    gateway = gateway_factory()
    sdk = gateway.client()
    api = Api(sdk, "sync")
    try:
        done = await api.call("interactions.create", model="echo", input="kept safe")
        job = await api.call("interactions.create", model="slow", input="w " * 400, background=True)
        seen = await api.events("interactions.get", job.id, stream=True, limit=4)
        gateway.restart(how)
        sdk.close()
        sdk = gateway.client()
        api = Api(sdk, "sync")

        kept = await api.call("interactions.get", done.id)
        assert kept.status == "completed" and kept.output_text == "kept safe"
        failed = await api.call("interactions.get", job.id)
        assert failed.status == "failed"
        assert failed.errors[-1].code == "gateway_restarted"
        assert "start it again" in failed.errors[-1].message
        # A client that was attached resumes and ends cleanly, with no event lost or repeated.
        rest = await api.events(
            "interactions.get", job.id, stream=True, last_event_id=seen[-1].event_id
        )
        ids = [int(e.event_id[3:]) for e in seen + rest]
        assert ids == list(range(1, len(ids) + 1))
        assert [e.event_type for e in rest[-2:]] == ["error", "interaction.completed"]
        assert rest[-1].interaction.status == "failed"
        # The conversation continues from what was kept.
        more = await api.call(
            "interactions.create", model="echo", input="next", previous_interaction_id=done.id
        )
        assert more.status == "completed"
        with pytest.raises(errors.BadRequestError):
            await api.call("interactions.cancel", job.id)
    finally:
        sdk.close()


def test_runtime_file_is_private_and_removed_on_exit(gateway_factory):
    gateway = gateway_factory()
    runtime = gateway.runtime_file
    mode = stat.S_IMODE(runtime.stat().st_mode)
    assert mode == 0o600
    info = json.loads(runtime.read_text())
    assert info["url"] == gateway.url and info["token"] == gateway.token
    assert info["data_dir"] == str(gateway.data_dir) and isinstance(info["pid"], int)
    assert gateway.url.startswith("http://127.0.0.1:")
    assert gateway.stop(signal.SIGINT) == 0
    assert not runtime.exists()
    assert gateway.token not in gateway.stderr_path.read_text()


def test_serving_line_generated_token_status_and_stop(tmp_path):
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
        "JUPYTER_INTERACTIONS_CONFIG": str(tmp_path / "none.json"),
    }
    proc = subprocess.Popen(
        serve_command(data_dir=tmp_path / "data"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving on http://127.0.0.1:") and line.endswith("/\n")
        runtime = tmp_path / "rt" / f"jupyter-interactions-gateway-{proc.pid}.json"
        info = json.loads(runtime.read_text())
        assert len(info["token"]) >= 32

        def cli(command: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "jupyter_interactions.gateway.cli", command]
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

        status = cli("status")
        assert status.returncode == 0 and info["url"] in status.stdout
        assert info["token"] not in status.stdout + status.stderr
        stopped = cli("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout == f"stopped the gateway on {info['url']}\n"
        assert proc.wait(5) == 0
        assert cli("status").returncode == 1
        assert cli("stop").stdout == "no gateway is running\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert info["token"] not in stderr


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_loopback_names_are_those_hosts_files_give_this_machine_in_any_case():
    for host in ("localhost.localdomain", "ip6-localhost", "LocalHost", "[::1]", "127.0.0.2"):
        assert is_loopback(host), host
    for host in ("localhost.example.com", "my-localhost", "ip6-localnet", "[::2]", "10.0.0.1"):
        assert not is_loopback(host), host


def test_state_is_sqlite_wal_with_a_schema_version(gateway, client):
    import sqlite3

    it = client.interactions.create(model="echo", input="stored events")
    with sqlite3.connect(gateway.data_dir / "gateway.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] >= 1
        events = db.execute(
            "SELECT seq, data FROM events WHERE interaction_id = ? ORDER BY seq", (it.id,)
        ).fetchall()
    db.close()
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    assert json.loads(events[-1][1])["event_type"] == "interaction.completed"
