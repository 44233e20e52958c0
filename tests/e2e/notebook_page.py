"""Driving a JupyterLab notebook page by DOM selectors: write a notebook, open it, run a cell
and wait for it, use the Kernel and Settings menus, screenshot a cell. Holds no tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CELL_SECONDS = 40
FAILURES = Path(__file__).parent / "artifacts"


def write_notebook(path: Path, cells: list[str]) -> None:
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": source}
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(notebook))


class NotebookPage:
    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.wait_idle()

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> Any:
        return self.cell(index).locator(".jp-OutputArea")

    def wait_idle(self, timeout: float = CELL_SECONDS) -> None:
        self.page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout * 1000
        )

    def run(self, index: int, wait: bool = True) -> Any:
        """Run cell `index` (select it, Shift+Enter); wait until its prompt shows a number.
        A run pressed before the kernel is connected is lost, so it is pressed again."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputPrompt")
        for _attempt in range(3):
            self.no_dialog()
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Shift+Enter")
            try:
                self.page.wait_for_function(
                    "el => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                    arg=prompt.element_handle(),
                    timeout=10_000,
                )
                break
            except Exception:
                continue
        if wait:
            try:
                self.page.wait_for_function(
                    "el => /\\[\\d+\\]/.test(el.textContent)",
                    arg=prompt.element_handle(),
                    timeout=CELL_SECONDS * 1000,
                )
            except Exception:
                self.page.screenshot(path=str(FAILURES / f"cell-{index}.png"))
                raise
        return self.output(index)

    def no_dialog(self) -> None:
        """Fail with its text (and a screenshot) if a JupyterLab dialog covers the page, rather
        than time out on a click it swallows: a full run once failed so, with no trace of
        which dialog it was."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            self.page.screenshot(path=str(FAILURES / "dialog.png"))
            text = " | ".join(dialog.first.inner_text().split("\n"))
            raise AssertionError(f"a JupyterLab dialog covers the notebook: {text}")

    def menu(self, *labels: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=labels[0]).first.click()
        for label in labels[1:]:
            self.page.locator(".lm-Menu-itemLabel", has_text=label).first.click()

    def restart_kernel(self) -> None:
        self.menu("Kernel", "Restart Kernel…")
        self.page.locator(".jp-Dialog-button.jp-mod-accept").click()
        self.page.wait_for_timeout(500)
        self.wait_idle()

    def screenshot(self, index: int, path: Path) -> None:
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        path.parent.mkdir(parents=True, exist_ok=True)
        cell.screenshot(path=str(path))
