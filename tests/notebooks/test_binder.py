"""Binder without Docker: repo2docker reads binder/ and prints the image it would build; then
a fresh venv built from binder/requirements.txt alone, plus binder/postBuild, serves
JupyterLab, and notebooks/sharing.ipynb runs top to bottom in a kernel of that server (its
session made through the server's REST API, as JupyterLab makes it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client import BlockingKernelClient
from tests.conftest import end_process
from tests.sandbox.jupyter_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def test_repo2docker_reads_the_binder_folder_without_docker():
    repo2docker = Path(sys.executable).with_name("repo2docker")
    command = [str(repo2docker), "--no-build", "--no-run", "--debug"]
    command += ["--user-id", "1000", "--user-name", "jovyan", str(ROOT)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    dockerfile = done.stdout + done.stderr
    assert "Building conda environment for python=3.12" in dockerfile
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile


def _request(url: str, token: str, body: dict[str, Any] | None = None, method: str = "GET") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


@pytest.fixture
def binder_venv(tmp_path: Path) -> Path:
    """A venv made from binder/requirements.txt alone, then binder/postBuild, as repo2docker
    runs them (from the repository's root)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "-r", str(BINDER / "requirements.txt")], cwd=ROOT, check=True, timeout=1200
    )
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, env=env, check=True, timeout=600)
    return venv


@pytest.fixture
def jupyter_lab(binder_venv: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`jupyter lab` from that venv on loopback, serving a copy of the sharing notebook, all of
    its Jupyter state (and the gateway's) under tmp_path."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "sharing.ipynb", root / "notebooks")
    token, port = os.urandom(16).hex(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    for name in ("VIRTUAL_ENV", "JUPYTER_INTERACTIONS_URL", "JUPYTER_INTERACTIONS_TOKEN"):
        env.pop(name, None)
    env.update(
        PATH=f"{binder_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        HOME=str(tmp_path / "home"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_INTERACTIONS_DATA_DIR=str(tmp_path / "interactions"),
    )
    command = [str(binder_venv / "bin" / "jupyter"), "lab", "--no-browser", "--allow-root"]
    command += ["--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}"]
    command += [f"--ServerApp.root_dir={root}"]
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(1200):  # until it answers: at most two minutes
            try:
                _request(url + "api/status", token)
                break
            except OSError:
                if lab.poll() is not None:
                    raise RuntimeError((tmp_path / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield {
            "url": url,
            "token": token,
            "runtime": tmp_path / "runtime",
            "log": tmp_path / "lab.log",
        }
    finally:
        end_process(lab, 60)
        log.close()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_sharing_notebook_runs_in_jupyter_lab_from_binder_requirements(jupyter_lab):
    url, token = jupyter_lab["url"], jupyter_lab["token"]
    session = _request(
        url + "api/sessions",
        token,
        {
            "path": "notebooks/sharing.ipynb",
            "name": "sharing.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
        method="POST",
    )
    kernel_id = session["kernel"]["id"]
    client = BlockingKernelClient(
        connection_file=str(jupyter_lab["runtime"] / f"kernel-{kernel_id}.json")
    )
    client.load_connection_file()
    # No heartbeat: the server writes the connection file before the kernel has bound its
    # sockets, and a heartbeat unanswered for 1 s (a kernel still importing on a busy machine)
    # makes wait_for_ready say the kernel died. Its kernel_info reply is the proof of life.
    client.start_channels(hb=False)
    try:
        client.wait_for_ready(timeout=120)
        notebook = nbformat.read(ROOT / "notebooks" / "sharing.ipynb", as_version=4)
        shown: list[str] = []
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            outputs: list[str] = []

            def collect(message: dict[str, Any], into: list[str] = outputs) -> None:
                content = message["content"]
                into.append(content.get("text") or json.dumps(content.get("data", {})))
                if message["msg_type"] == "error":
                    into.append("\n".join(content["traceback"]))

            reply = client.execute_interactive(cell.source, timeout=600, output_hook=collect)
            assert reply["content"]["status"] == "ok", (cell.source, outputs)
            shown.append("".join(outputs))
    finally:
        client.stop_channels()
        _request(url + f"api/sessions/{session['id']}", token, method="DELETE")
    assert "recording into demo.interactions (2 interactions" in "".join(shown)
    assert "b'made by the agent'" in "".join(shown)
    assert "no keys found in 1 notebook" in shown[-1]
