"""The import contracts (pyproject's [tool.importlinter]) hold, and they catch a breach: the
kernel side never imports the gateway, the gateway never imports the kernel side or IPython,
and no modules import each other, counting imports inside functions too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jupyter_interactions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(jupyter_interactions.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *, package_parent: Path | None = None) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's config, on the installed package or on a copy of it
    in `package_parent` (put first on the import path, as grimp finds packages by import)."""
    env = {"PATH": str(LINT_IMPORTS.parent), "HOME": str(cwd)}
    if package_parent is not None:
        env["PYTHONPATH"] = str(package_parent)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_every_import_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    for contract in ("never imports the gateway", "never import the kernel side", "cycles"):
        assert contract in result.stdout


def _copy_with(tmp_path: Path, module: str, added: str) -> Path:
    """A copy of the package whose `module` ends with `added` (a function)."""
    parent = tmp_path / "copy"
    shutil.copytree(PACKAGE, parent / "jupyter_interactions", ignore=_not_source)
    shutil.copy(ROOT / "pyproject.toml", parent / "pyproject.toml")
    path = parent / "jupyter_interactions" / module
    path.write_text(path.read_text() + added)
    return parent


def _not_source(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name in ("__pycache__", "static", "node_modules")]


@pytest.mark.parametrize(
    ("module", "added", "broken", "named"),
    [
        (
            "session.py",
            "\n\ndef _peek_at_the_gateway() -> None:\n    import jupyter_interactions.gateway\n",
            "never imports the gateway",
            "jupyter_interactions.session -> jupyter_interactions.gateway (l.",
        ),
        (
            "jobs.py",
            "\n\ndef _back_to_the_session() -> None:\n    from .session import Session  # noqa\n",
            "No import cycles",
            # the report names one import that would break the cycle, either way round
            ".session -> .jobs|.jobs -> .session",
        ),
        (
            "gateway/cli.py",
            "\n\ndef _show() -> None:\n    from IPython.display import display  # noqa\n",
            "never import the kernel side or IPython",
            "jupyter_interactions.gateway.cli -> IPython",
        ),
    ],
    ids=["kernel-imports-gateway", "jobs-session-cycle", "gateway-imports-ipython"],
)
def test_an_import_against_the_layers_inside_a_function_breaks_a_contract(
    tmp_path, module, added, broken, named
):
    parent = _copy_with(tmp_path, module, added)
    result = lint_imports(parent, package_parent=parent)
    assert result.returncode != 0, result.stdout
    report = " ".join(result.stdout.split())  # the report wraps long lines
    assert f"{broken}" in report and "BROKEN" in report, result.stdout
    assert any(alternative in report for alternative in named.split("|")), result.stdout
