"""The issue's proof, in real kernels: a notebook records a two-turn thread, a background job
and an agent that writes files against a stand-in for Google; a fresh kernel on a fresh
gateway, with no key and the stand-in stopped, replays it to the same outputs and files; a
changed input is refused naming its cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tests.kernel.test_notebooks import kernel_env

AGENT = """%%interaction --agent antigravity-test --environment '{"type": "remote"}' \
--agent-config '{"type": "dynamic", "model": "scripted"}' --out made
```python
open('made.txt', 'w').write('written on google')
print('made')
```"""

CELLS = [
    "%load_ext jupyter_interactions",
    "%interactions {mode}",
    "%%interaction --model gemini-test\nturn one",
    "%%interaction --model gemini-test\nturn two",
    "%%interaction --model gemini-test --thread jobs --background --out job\nin the background",
    "print((await job).text)",
    AGENT,
    "from jupyter_interactions import Session\n"
    "session = Session()\n"
    "files = session.client.environments.files\n"
    "print(files.download(environment=made.environment_id, path='workspace/made.txt'))",
    "print(repr(get_ipython().run_line_magic('interactions', 'cassette')))",
]
COMPARED = (2, 3, 5, 6, 7)  # the background cell's live job view depends on timing


def run(gateway: Any, notebook_path: Path, mode: str, extra: tuple[str, ...] = ()) -> Any:
    sources = [c.replace("{mode}", mode) for c in CELLS] + list(extra)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    runner = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    with runner.setup_kernel(env=kernel_env(gateway, str(notebook_path))):
        for index, cell in enumerate(nb.cells):
            try:
                runner.execute_cell(cell, index)
            except CellExecutionError:
                if index < len(CELLS):
                    raise
    return nb


def shown(cell: Any) -> list[Any]:
    """What a cell shows: display data and printed text (no ids, metadata or warnings)."""
    return [o.get("data") or o.get("text") for o in cell.outputs if o.get("name") != "stderr"]


def test_a_notebook_recorded_against_google_replays_in_a_fresh_kernel(
    recorder, stand_in, gateway_factory, tmp_path
):
    notebook = tmp_path / "notebooks" / "sharing.ipynb"
    notebook.parent.mkdir()
    recorded = run(recorder, notebook, "record")
    assert "recording into sharing.interactions" in shown(recorded.cells[1])[0]["text/plain"]
    assert "made" in shown(recorded.cells[6])[-1]["text/plain"]
    assert shown(recorded.cells[7]) == ["b'written on google'\n"]
    assert "(4 interactions" in shown(recorded.cells[8])[0]
    assert (tmp_path / "notebooks" / "sharing.interactions" / "cassette.json").is_file()
    recorder.stop()
    stand_in.stop()

    offline = gateway_factory()  # no key; Google's stand-in is gone
    changed = "%%interaction --model gemini-test --new\nturn one, changed"
    replayed = run(offline, notebook, "replay", (changed,))
    assert "replaying from sharing.interactions" in shown(replayed.cells[1])[0]["text/plain"]
    for index in COMPARED:
        assert shown(replayed.cells[index]) == shown(recorded.cells[index]), index
    # IPython shows a UsageError as one message on stderr, without a traceback.
    error = "".join(o.get("text", "") for o in replayed.cells[-1].outputs)
    assert error.startswith("UsageError: ")
    assert f"cell [{replayed.cells[-1].execution_count}]" in error
    assert "no recorded interaction" in error
    assert any(line.startswith("+") and "turn one, changed" in line for line in error.splitlines())
