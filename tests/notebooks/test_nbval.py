"""Every notebook in notebooks/ tests itself: nbval runs it top to bottom, offline, in a real
kernel against a private gateway without a key (Gemini cells are answered by the notebook's
cassette), failing on any error; its assert cells check what it shows, and cells tagged
`nbval-check-output` must show what the saved notebook shows (ids, times, durations and
token counts sanitized, tests/notebooks/nbval-sanitize.cfg). A widget's output is checked by
its text fallback: nbval skips the widget view (its model id is new each run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
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


def nbval(notebook: Path, env: dict[str, str], rootdir: Path) -> subprocess.CompletedProcess[str]:
    """nbval-lax on one notebook, with this project's sanitize file, in its own pytest."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        os.devnull,  # not this project's pytest settings: nbval runs on its own
        "--rootdir",
        str(rootdir),
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
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1700)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_offline_and_checks_itself(
    notebook: Path, gateway_factory: Any, tmp_path: Path
) -> None:
    gateway = gateway_factory()
    done = nbval(notebook, notebook_env(gateway, notebook, tmp_path), tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def widget_notebook(saved_text: str) -> nbformat.NotebookNode:
    """One checked cell that shows a widget as a live front end gets it (a view with a fresh
    model id, and its text fallback), saved with another model id and `saved_text`."""
    show = (
        "import uuid\n"
        "from IPython.display import display\n"
        "view = {'model_id': uuid.uuid4().hex, 'version_major': 2, 'version_minor': 0}\n"
        f"display({{'{WIDGET}': view, 'text/plain': {SHOWN!r}}}, raw=True)"
    )
    cell = nbformat.v4.new_code_cell(show, metadata={"tags": ["nbval-check-output"]})
    cell.execution_count = 1  # nbval checks only cells the saved notebook ran
    saved = {WIDGET: {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}}
    cell.outputs = [nbformat.v4.new_output("display_data", {**saved, "text/plain": saved_text})]
    return nbformat.v4.new_notebook(cells=[cell])


WIDGET = "application/vnd.jupyter.widget-view+json"
SHOWN = "completed · echo · 3 tokens\nHello from a widget."


@pytest.mark.parametrize(("saved_text", "passes"), [(SHOWN, True), ("Hello, changed.", False)])
def test_widget_outputs_are_checked_by_their_text_fallback(
    saved_text: str, passes: bool, tmp_path: Path
) -> None:
    notebook = tmp_path / "widget.ipynb"
    nbformat.write(widget_notebook(saved_text), notebook)
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    done = nbval(notebook, env, tmp_path)
    # The model ids differ either way: only the text fallback decides.
    assert (done.returncode == 0) is passes, done.stdout[-4000:]
    if not passes:
        assert "Hello, changed." in done.stdout
