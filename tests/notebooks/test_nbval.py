"""Every notebook in notebooks/ tests itself: nbval runs it top to bottom, offline, in a real
kernel against a private gateway without a key (Gemini cells are answered by the notebook's
cassette), failing on any error; its assert cells check what it shows, and cells tagged
`nbval-check-output` must show what the saved notebook shows (ids, times, durations and
token counts sanitized, tests/notebooks/nbval-sanitize.cfg)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = Path(__file__).with_name("nbval-sanitize.cfg")


def notebook_env(gateway: Any, notebook: Path, root: Path) -> dict[str, str]:
    """The kernel's environment: the private gateway, Jupyter state under `root`, no key, and
    the notebook's path as its session (as Jupyter gives it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JUPYTER_INTERACTIONS_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JPY_SESSION_NAME=str(notebook),
    )
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_offline_and_checks_itself(
    notebook: Path, gateway_factory: Any, tmp_path: Path
) -> None:
    gateway = gateway_factory()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        os.devnull,  # not this project's pytest settings: nbval runs on its own
        "--rootdir",
        str(tmp_path),
        "-p",
        "no:cacheprovider",
        "-q",
        "--nbval-lax",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "--nbval-cell-timeout",
        "900",
        str(notebook),
    ]
    done = subprocess.run(
        command,
        env=notebook_env(gateway, notebook, tmp_path),
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
