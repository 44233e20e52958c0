"""`jupyter-interactions check`: a key in a cell's source, an output or a cassette fails it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEY = "AIza" + "x" * 35


def write_notebook(path: Path, source: str, output: str = "") -> Path:
    outputs = [{"output_type": "stream", "name": "stdout", "text": [output]}] if output else []
    cell = {"cell_type": "code", "source": source, "outputs": outputs, "metadata": {}}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4}))
    return path


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jupyter_interactions.gateway.cli", "check", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_clean_notebooks_pass(tmp_path):
    done = check(write_notebook(tmp_path / "a.ipynb", "print(1)", "1\n"))
    assert done.returncode == 0 and "no keys found in 1 notebook" in done.stdout


def test_keys_in_sources_outputs_and_cassettes_fail_without_being_printed(tmp_path):
    typed = write_notebook(tmp_path / "typed.ipynb", "%env GEMINI_API_KEY=abcdefghijkl")
    shown = write_notebook(tmp_path / "shown.ipynb", "print(key)", f"{KEY}\n")
    beside = write_notebook(tmp_path / "beside.ipynb", "x = 1")
    (tmp_path / "beside.interactions" / "blobs").mkdir(parents=True)
    (tmp_path / "beside.interactions" / "blobs" / "f").write_text(f"TOKEN={KEY}")
    done = check(typed, shown, beside)
    assert done.returncode == 1
    assert "typed.ipynb cell 1 (its source): a key set to a literal value" in done.stdout
    assert "shown.ipynb cell 1 (its output): a Google API key" in done.stdout
    assert "beside.interactions/blobs/f: a Google API key" in done.stdout
    assert KEY not in done.stdout
