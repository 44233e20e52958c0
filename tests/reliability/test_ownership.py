"""One process owns a data dir; runtime files are per process; a gateway a kernel started
exits once idle, and never while something runs."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import start_gateway
from tests.reliability.conftest import API, assert_whole, create, http, read_all, stored_log

from jupyter_interactions.launch import serve_command


def _rows(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, status, resource FROM interactions ORDER BY id").fetchall()
    db.close()
    return rows


async def test_a_second_gateway_on_one_data_dir_refuses_and_changes_nothing(tmp_path):
    first = start_gateway(tmp_path / "first")
    try:
        async with http(first) as session:
            done = await create(session, model="echo", input="kept as it was")
            running = await create(session, model="slow", input="w " * 2000, background=True)
            response = await session.get(f"{API}/{running['id']}", params={"stream": "true"})
            seen = []  # a client attached to the running one all along
            async for line in response.content:
                seen.append(line)
                if len(seen) > 20:
                    break
            database = first.data_dir / "gateway.sqlite3"
            finished_before = [row for row in _rows(database) if row[0] != running["id"]]
            done_log = stored_log(database, done["id"])

            second = subprocess.run(
                serve_command(token="second", data_dir=first.data_dir),
                env=first.env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert second.returncode == 2
            assert second.stdout == ""  # never said "Serving on"
            assert (
                f"error: the data dir {first.data_dir} is in use by the gateway on {first.url} "
                f"(process {first.proc.pid}): one gateway owns a data dir."
            ) in second.stderr
            runtime_files = list(first.runtime_file.parent.glob("jupyter-interactions-*.json"))
            assert runtime_files == [first.runtime_file]

            # Nothing of the first changed: the running one runs on, the rest is as it was.
            async with session.get(f"{API}/{running['id']}") as answer:
                assert (await answer.json())["status"] == "in_progress"
            assert [row for row in _rows(database) if row[0] != running["id"]] == finished_before
            assert stored_log(database, done["id"]) == done_log
            async with session.post(f"{API}/{running['id']}/cancel") as answer:
                assert answer.status == 200
            response.release()
            events = await read_all(session, running["id"])
        assert events[-1].event["interaction"]["status"] == "cancelled"
        assert not any(e.event_type == "error" for e in events)  # no "gateway restarted"
        assert_whole(stored_log(database, running["id"]))
    finally:
        first.stop()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "jupyter_interactions.gateway.cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_one_runtime_file_per_gateway_and_status_and_stop_see_them_all(tmp_path):
    shared = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    a = start_gateway(tmp_path / "a", env=shared)
    b = start_gateway(tmp_path / "b", env=shared)
    try:
        for gateway in (a, b):
            assert stat.S_IMODE(gateway.runtime_file.stat().st_mode) == 0o600
            assert json.loads(gateway.runtime_file.read_text())["pid"] == gateway.proc.pid
        # A gateway that was killed left its file behind: it is ignored, and cleaned up.
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = a.runtime_file.with_name(f"jupyter-interactions-gateway-{dead.pid}.json")
        stale.write_text(json.dumps({"url": "http://127.0.0.1:9/", "pid": dead.pid}))

        status = _cli(a.env, "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert len(lines) == 2 and {a.url, b.url} == {line.split()[3] for line in lines}
        assert f"data in {a.data_dir}" in status.stdout and a.token not in status.stdout
        assert not stale.exists()

        # With several running, `stop` stops the one on this user's data dir; --all the rest.
        stopped = _cli({**a.env, "JUPYTER_INTERACTIONS_DATA_DIR": str(b.data_dir)}, "stop")
        assert stopped.stdout == f"stopped the gateway on {b.url}\n", stopped.stderr
        assert b.proc.wait(15) == 0 and a.proc.poll() is None
        stopped = _cli(a.env, "stop", "--all")
        assert stopped.stdout == f"stopped the gateway on {a.url}\n"
        assert a.proc.wait(15) == 0
        assert list((tmp_path / "runtime").glob("jupyter-interactions-*.json")) == []
        assert _cli(a.env, "status").returncode == 1
    finally:
        a.stop()
        b.stop()


async def test_a_kernel_started_gateway_exits_when_idle_but_never_while_something_runs(tmp_path):
    idle = 5.0  # long enough that it cannot go idle before the test connects, even when busy
    gateway = start_gateway(tmp_path, settings={"idle_exit_seconds": idle}, args=["--auto"])
    assert gateway.proc is not None
    proc, runtime_file = gateway.proc, gateway.runtime_file
    try:
        assert json.loads(runtime_file.read_text())["idle_exit_seconds"] == idle
        # An open connection is a client attached: the gateway stays.
        host, port = gateway.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        with socket.create_connection((host, int(port))):
            time.sleep(2 * idle)
            assert proc.poll() is None
        # A background run with nobody connected keeps it too (5 s of slow words).
        async with http(gateway) as session:
            job = await create(session, model="slow", input="w " * 100, background=True)
        assert proc.wait(60) == 0
        assert not runtime_file.exists()
        database = gateway.data_dir / "gateway.sqlite3"
        rows = {row[0]: row[1] for row in _rows(database)}
        assert rows[job["id"]] == "completed"  # not cut short by the exit
        assert_whole(stored_log(database, job["id"]))
        assert "with no client and nothing running: exiting" in gateway.stderr_path.read_text()
    finally:
        gateway.stop()
