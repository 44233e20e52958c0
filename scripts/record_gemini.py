"""Record notebooks/gemini.ipynb's cassette against a stand-in for Google's service, and save
the notebook with its outputs.

The stand-in is a gateway on loopback that answers `gemini-flash-latest` with the local model
and runs `antigravity-preview-09-2026` as the local agent (scripted planner); a second gateway
holds a made-up key, forwards to the stand-in and records (setting `cassettes: "record"`).
The notebook is then run once more on a gateway without a key (the cassette answers, as on
Binder) and saved with those outputs. Nothing leaves this machine.
Usage: python scripts/record_gemini.py
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_gateway  # noqa: E402  (the test suite's gateway launcher)

NOTEBOOK = ROOT / "notebooks" / "gemini.ipynb"
CASSETTE = NOTEBOOK.with_name("gemini.interactions")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="record-gemini-"))
    key = "AIza" + secrets.token_urlsafe(30)
    stand_in = start_gateway(
        work / "google", token=key, models={"gemini-flash-latest": {"adapter": "local"}}
    )
    recorder = None
    try:
        google = stand_in.client()
        google.agents.create(
            id="antigravity-preview-09-2026",
            base_agent="local-agent",
            extra_body={"agent_config": {"type": "dynamic", "model": "scripted"}},
        )
        google.close()
        recorder = start_gateway(
            work / "recorder",
            env={"GEMINI_API_KEY": key},
            settings={"upstream_url": stand_in.url, "upstream_attempts": 1, "cassettes": "record"},
        )
        shutil.rmtree(CASSETTE, ignore_errors=True)
        execute(recorder)
        print(f"recorded {len(list((CASSETTE / 'interactions').glob('*.json')))} interactions")
        recorder.stop()
        stand_in.stop()
        offline = start_gateway(work / "offline")
        try:
            nbformat.write(execute(offline), NOTEBOOK)
        finally:
            offline.stop()
        print(f"replayed without a key and saved {NOTEBOOK.name}")
        return 0
    finally:
        if recorder is not None:
            recorder.stop()
        stand_in.stop()
        shutil.rmtree(work, ignore_errors=True)


def execute(gateway: Any) -> nbformat.NotebookNode:
    """Run the notebook top to bottom in a fresh kernel talking to `gateway`, as under Jupyter
    (the session key is the notebook's path, the kernel works in its folder)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JPY_SESSION_NAME=str(NOTEBOOK),
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    runner = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    with runner.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            runner.execute_cell(cell, index)
    return notebook


if __name__ == "__main__":
    sys.exit(main())
