"""`jupyter-interactions check NOTEBOOK...`: a pre-save check that fails when a notebook holds
a key, in a cell's source or in an output, or a cassette beside it holds one.

Plain JSON reading (no Jupyter imports), so it runs anywhere, e.g. as a pre-commit hook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .protocol import notebook_cassette
from .secret_scan import Finding, find_in_bytes, find_in_text, find_in_value, typed_key


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def notebook_findings(path: Path) -> Iterator[Finding]:
    """Every secret in a notebook's cells and outputs, and in the files of its cassette."""
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable notebook ({exc})") from None
    for number, cell in enumerate(notebook.get("cells") or [], start=1):
        source = _source(cell)
        what = "a key set to a literal value" if typed_key(source) else find_in_text(source)
        if what:
            yield Finding(what, f"{path} cell {number} (its source)")
        found = find_in_value(cell.get("outputs") or [])
        if found is not None:
            yield Finding(found.what, f"{path} cell {number} (its output)")
    cassette = Path(notebook_cassette(str(path)))
    for file in sorted(cassette.rglob("*")) if cassette.is_dir() else []:
        if file.is_file():
            what = find_in_bytes(file.read_bytes())
            if what:
                yield Finding(what, str(file))


def check(paths: list[str]) -> int:
    """Print each finding; 1 if there were any (or a notebook could not be read), else 0."""
    status = 0
    for name in paths:
        try:
            findings = list(notebook_findings(Path(name)))
        except ValueError as exc:
            print(f"error: {exc}")
            status = 1
            continue
        for finding in findings:
            print(
                f"{finding.where}: {finding.what}; remove it (keys belong in the gateway's "
                "environment or config file)"
            )
        status = 1 if findings else status
    if status == 0:
        print(f"no keys found in {len(paths)} notebook{'s' if len(paths) != 1 else ''}")
    return status
