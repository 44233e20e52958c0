"""Real kernels executing notebooks (nbclient) against the real gateway, with a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.util import run_sync

from jupyter_interactions.render.bundle import METADATA_KEY

ROOT = Path(__file__).resolve().parents[2]


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def kernel_env(gateway, session_name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JPY_SESSION_NAME=session_name,
    )
    return env


def finals(cell) -> list[dict]:
    return [o for o in cell.outputs if METADATA_KEY in o.get("metadata", {})]


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def provenance(cell) -> dict:
    (final,) = finals(cell)
    return final["metadata"][METADATA_KEY]


def test_notebook_with_a_kernel_restart_in_the_middle(gateway, client):
    nb = notebook(
        "%load_ext jupyter_interactions",
        "%%interaction --model echo\nhello from the notebook",
        "%%interaction --model echo\nsecond turn",
        "%%interaction --model echo --thread jobs --background --out job\nbefore the restart",
        "print((await job).text)",
        # --- the kernel restarts here ---
        "%load_ext jupyter_interactions",
        "%interactions threads",
        "%%interaction --model echo\nafter the restart",
        "%interactions jobs",
    )
    runner = NotebookClient(nb, timeout=60, kernel_name="python3")
    with runner.setup_kernel(env=kernel_env(gateway, "restart.ipynb")):
        for index, cell in enumerate(nb.cells):
            if index == 5:
                run_sync(runner.km.restart_kernel)()  # nbclient's managers are async
                run_sync(runner.kc.wait_for_ready)(timeout=60)
            runner.execute_cell(cell, index)

    first, second = provenance(nb.cells[1]), provenance(nb.cells[2])
    # The live view leaves nothing behind: the final display is the cell's one output.
    assert nb.cells[1].outputs == finals(nb.cells[1])
    assert finals(nb.cells[1])[0]["data"]["text/plain"] == "hello from the notebook"
    assert first["model"] == "echo" and first["thread"] == "default"

    assert text(nb.cells[4]) == "before the restart\n"

    table = nb.cells[6].outputs[0]["data"]["text/plain"]
    assert second["interaction_ids"][0] in table and "default" in table

    after = provenance(nb.cells[7])
    continued = client.interactions.get(after["interaction_ids"][0])
    assert continued.previous_interaction_id == second["interaction_ids"][0]

    # The job started before the restart is still this notebook's job.
    jobs = nb.cells[8].outputs[0]["data"]["text/plain"].splitlines()
    assert len(jobs) == 2 and jobs[1].split()[1:3] == ["completed", "jobs"]
    assert gateway.token not in nbformat.writes(nb)  # no secret in outputs or metadata


def test_background_job_completes_while_other_cells_run(gateway):
    words = " ".join(f"w{i}" for i in range(200))  # `slow`: one word per 50 ms, 10 s at least
    nb = notebook(
        "%load_ext jupyter_interactions\nimport time",
        f"%%interaction --model slow --background --out job\n{words}",
        "x = 6 * 7; print(x, job.status in ('queued', 'in_progress'))",
        "reply = await job\nprint(reply.text.strip(), job.status)",
        "%interactions jobs",
    )
    NotebookClient(nb, timeout=60, kernel_name="python3").execute(
        env=kernel_env(gateway, "background.ipynb")
    )
    assert text(nb.cells[2]) == "42 True\n"  # the kernel answered while the job streamed
    assert text(nb.cells[3]) == f"{words} completed\n"
    job_view = nb.cells[1].outputs[0]
    # nbclient applied the job's display updates: its view ends on the final state.
    assert job_view["data"]["text/plain"].startswith("Job slow in thread 'default': completed")
    assert "completed" in nb.cells[4].outputs[0]["data"]["text/plain"]


@pytest.mark.slow
def test_quickstart_notebook_runs_offline(gateway, tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    env = kernel_env(gateway, "quickstart.ipynb")
    NotebookClient(nb, timeout=240, kernel_name="python3").execute(env=env)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    answers = [finals(c) for c in nb.cells if c.cell_type == "code" and finals(c)]
    assert len(answers) >= 3 and all(a[0]["data"]["text/plain"].strip() for a in answers)


def test_the_demo_script_runs_a_notebook_without_kernel_warnings(gateway, tmp_path):
    path = tmp_path / "tiny.ipynb"
    nbformat.write(
        notebook("%load_ext jupyter_interactions", "%%interaction --model echo\nhi there"), path
    )
    ran = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_notebook.py"), str(path)],
        env=kernel_env(gateway, "tiny.ipynb"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert ran.returncode == 0, ran.stderr
    assert "    hi there" in ran.stdout.splitlines()
    # The kernel talks over Unix sockets: no "running over TCP without encryption" warning.
    assert "WARNING" not in ran.stderr, ran.stderr
