"""One real JupyterLab on loopback per test module, driven by Debian's Chromium through
Playwright. Everything it touches (HOME, Jupyter's runtime, data and config dirs, the
gateway's data dir) lives in a temp dir; the server and the browser are stopped at the end.
Skipped, saying why, where Chromium or Playwright is missing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import end_process, write_test_models
from tests.extension_server import started_server_info
from tests.ipc_kernels import ipc_kernel_options

ARTIFACTS = Path(__file__).parent / "artifacts"
STARTUP_SECONDS = 90.0
# The test gateway's slow model: a background job that runs long enough to watch and cancel.
MODELS = {"slow": {"adapter": "ji-slow", "delay": 0.15}}


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is missing: `make install` installs Debian's chromium (as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is missing: `make install` installs the test extras")
    return path


@dataclass
class Lab:
    url: str  # base URL, with trailing slash
    token: str
    root: Path
    proc: subprocess.Popen[bytes]


def _settings(config_dir: Path) -> None:
    """No news pop-up, no update check: nothing over the page and no network."""
    folder = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _chromium()
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "notebooks", base / "home"
    root.mkdir()
    home.mkdir()
    config = base / "gateway.json"
    config.write_text(json.dumps({"models": MODELS}))
    plugins = write_test_models(base)
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        HOME=str(home),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_INTERACTIONS_DATA_DIR=str(base / "gateway-data"),
        JUPYTER_INTERACTIONS_CONFIG=str(config),
        PYTHONPATH=os.pathsep.join(p for p in (str(plugins), env.get("PYTHONPATH", "")) if p),
    )
    _settings(base / "config")
    token = secrets.token_hex(16)
    log = (base / "lab.log").open("w")
    with ipc_kernel_options() as kernel_options:  # removed after the server stopped
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                "--ip=127.0.0.1", "--port=0", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False", *kernel_options,
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            info = started_server_info(proc, base / "runtime", base / "lab.log", deadline)
            url = info["url"]
            while True:
                try:
                    urllib.request.urlopen(f"{url}interactions/health", timeout=2).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, (base / "lab.log").read_text()[-3000:]
                    time.sleep(0.2)
            yield Lab(url, token, root, proc)
        finally:
            end_process(proc, 30)
            log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
