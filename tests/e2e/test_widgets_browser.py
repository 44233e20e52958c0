"""The widgets in real JupyterLab (Chromium): a scripted local-agent run's timeline with its
plot, the file browser's previews, the job board (progress, Cancel, a kernel restart), and a
run view that keeps following the gateway from the page while the kernel is interrupted and
restarted. Screenshots in light and dark go to tests/e2e/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import ARTIFACTS, Lab
from .notebook_page import NotebookPage, write_notebook

pytestmark = pytest.mark.timeout(600)

SCRIPTED = """'{"type": "dynamic", "model": "scripted"}'"""
AGENT = f"""%%interaction --agent local-agent --agent-config {SCRIPTED}
```python
import csv
rows = [(x, x * x) for x in range(8)]
with open("data.csv", "w", newline="") as f:
    csv.writer(f).writerows([("x", "square"), *rows])
print(sum(y for _, y in rows))
```
```python
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display
plt.figure(figsize=(4, 2.5))
plt.plot([x for x, _ in rows], [y for _, y in rows], marker="o")
plt.title("squares")
plt.tight_layout()
plt.savefig("plot.png")
display(Image(filename="plot.png"))
```"""
LONG = " ".join(f"word{i}" for i in range(400))
CELLS = [
    "%load_ext jupyter_interactions",
    "from jupyter_interactions.widgets.frontend import FRONT_END\n"
    "magics = get_ipython().magics_manager.registry['InteractionMagics']\n"
    "print('live', FRONT_END.live, 'follower', FRONT_END.follower_for(magics.session()))",
    AGENT,
    "%interactions files",
    f"%%interaction --model slow --background\n{LONG}",
    "%interactions jobs",
    "%load_ext jupyter_interactions",
    "%interactions jobs",
    f"%%interaction --model slow --background --thread other\n{LONG}",
    "import time\ntime.sleep(120)",
]


@pytest.fixture(scope="module")
def notebook(lab: Lab, browser: Any) -> NotebookPage:
    write_notebook(lab.root / "widgets.ipynb", CELLS)
    page = browser.new_page(viewport={"width": 1300, "height": 1500})
    return NotebookPage(page, f"{lab.url}lab/tree/widgets.ipynb?token={lab.token}")


def test_a_live_front_end_is_detected_and_the_page_follows(notebook: NotebookPage) -> None:
    notebook.run(0)
    notebook.page.wait_for_timeout(1500)  # the probe answers while the kernel is idle
    out = notebook.run(1)
    assert "live True follower browser" in out.inner_text()


def test_agent_run_shows_steps_outputs_and_plot(notebook: NotebookPage) -> None:
    out = notebook.run(2)
    run = out.locator(".ji-run")
    run.wait_for()
    notebook.page.wait_for_selector(".ji-run[data-status='completed']", timeout=60_000)
    steps = run.locator(".ji-step-code_execution_call")
    assert steps.count() == 2
    assert "csv.writer" in steps.nth(0).locator(".ji-code").inner_text()
    assert steps.nth(0).locator(".ji-output").inner_text().strip() == "140"
    assert steps.nth(0).get_attribute("data-status") == "done"
    plot = steps.nth(1).locator("img.ji-image")
    plot.wait_for(timeout=30_000)
    assert plot.get_attribute("src").startswith("data:image/png;base64,")
    assert plot.evaluate("img => img.naturalWidth") > 100
    assert "Ran 2 code blocks" in run.locator(".ji-answer").inner_text()
    assert "tokens" in run.locator(".ji-meta").inner_text()


def test_file_browser_lists_and_previews(notebook: NotebookPage) -> None:
    out = notebook.run(3)
    files = out.locator(".ji-files")
    files.wait_for()
    csv_row = files.locator(".ji-file[data-path$='data.csv']")
    png_row = files.locator(".ji-file[data-path$='plot.png']")
    csv_row.wait_for(timeout=30_000)
    png_row.wait_for()
    assert re.search(r"\d+ B", csv_row.inner_text())
    csv_row.click()
    table = files.locator(".ji-preview-csv table")
    table.wait_for()
    assert table.locator("th").all_inner_texts() == ["x", "square"]
    assert table.locator("tbody tr").count() == 8
    notebook.screenshot(3, ARTIFACTS / "files-light.png")
    png_row.click()
    image = files.locator(".ji-preview-image img")
    image.wait_for()
    notebook.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 100", arg=image.element_handle()
    )


def test_job_board_progress_cancel_and_kernel_restart(notebook: NotebookPage) -> None:
    notebook.run(4)
    board = notebook.run(5).locator(".ji-jobs")
    row = board.locator("tr[data-job]").first
    row.wait_for(timeout=30_000)
    notebook.page.wait_for_function(
        "row => Number(row.querySelector('.ji-tokens').textContent.replace(/,/g, '')) > 0 ||"
        " row.dataset.status === 'in_progress'",
        arg=row.element_handle(),
        timeout=30_000,
    )
    job_id = row.get_attribute("data-job")
    first_elapsed = row.locator("td").nth(6).inner_text()
    notebook.page.wait_for_timeout(2500)
    assert row.locator("td").nth(6).inner_text() != first_elapsed  # it progresses
    row.locator(".ji-cancel").click()
    notebook.page.wait_for_selector(
        f"tr[data-job='{job_id}'][data-status='cancelled']", timeout=30_000
    )

    notebook.restart_kernel()
    notebook.run(6)
    again = notebook.run(7).locator(f".ji-jobs tr[data-job='{job_id}']")
    again.wait_for(timeout=30_000)
    assert again.get_attribute("data-status") == "cancelled"


def test_run_view_follows_the_gateway_through_interrupt_and_restart(notebook: NotebookPage) -> None:
    view = notebook.run(8).locator(".ji-run")
    answer = view.locator(".ji-answer")
    answer.wait_for(timeout=30_000)
    notebook.run(9, wait=False)  # the kernel is busy now
    notebook.page.wait_for_timeout(1000)
    notebook.menu("Kernel", "Interrupt Kernel")
    notebook.wait_idle()
    before = len(answer.inner_text())
    notebook.page.wait_for_timeout(2000)
    after_interrupt = len(answer.inner_text())
    assert after_interrupt > before
    notebook.restart_kernel()  # nothing in a kernel follows the job now
    notebook.page.wait_for_timeout(2000)
    assert len(answer.inner_text()) > after_interrupt


def test_screenshots_light_and_dark(notebook: NotebookPage) -> None:
    notebook.screenshot(2, ARTIFACTS / "run-light.png")
    notebook.menu("Settings", "Theme", "JupyterLab Dark")
    notebook.page.wait_for_selector(
        "body[data-jp-theme-light='false']", state="attached", timeout=30_000
    )
    notebook.page.wait_for_timeout(500)
    notebook.screenshot(2, ARTIFACTS / "run-dark.png")
    notebook.screenshot(3, ARTIFACTS / "files-dark.png")
    notebook.screenshot(7, ARTIFACTS / "jobs-dark.png")
    notebook.menu("Settings", "Theme", "JupyterLab Light")
