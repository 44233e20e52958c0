"""The sandbox registry: kinds from entry points, broken plugins skipped, clear errors."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from jupyter_interactions.config import GatewayConfig
from jupyter_interactions.errors import SandboxUnavailable
from jupyter_interactions.sandbox import registry
from jupyter_interactions.sandbox.jupyter import JupyterSandbox

PLUGIN_MODULE = """
from jupyter_interactions.sandbox.base import Sandbox

class NotebookShelfSandbox(Sandbox):
    kind = "shelf"

    def __init__(self, *, colour: str, **options):
        super().__init__(colour=colour, **options)

    async def start(self): ...
    async def run(self, code, **kwargs): ...
    async def set_variables(self, variables): ...
    async def interrupt(self): ...
    async def stop(self): ...
"""


@pytest.fixture
def third_party_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a .dist-info on sys.path) declaring three sandboxes:
    one that works, one whose module is missing, and one that is not a Sandbox."""
    (tmp_path / "shelf_sandbox.py").write_text(PLUGIN_MODULE)
    dist = tmp_path / "shelf_sandbox-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shelf-sandbox\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [jupyter_interactions.sandboxes]
            shelf = shelf_sandbox:NotebookShelfSandbox
            broken = shelf_sandbox_missing_module:Nothing
            notasandbox = json:dumps
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_jupyter_kind_is_found_through_its_entry_point() -> None:
    assert registry.available()["jupyter"] is JupyterSandbox


def test_create_passes_options_to_the_chosen_kind() -> None:
    sandbox = registry.create("jupyter", url="http://127.0.0.1:1/", token="t0k3n", env_id="e7")
    assert isinstance(sandbox, JupyterSandbox)
    assert sandbox.remote_root == "interactions/e7"
    assert "t0k3n" not in repr(sandbox)


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(SandboxUnavailable, match="unknown sandbox kind 'nope'") as caught:
        registry.create("nope")
    assert "'jupyter'" in str(caught.value)


def test_wrong_options_say_where_to_fix_them(third_party_plugins: Path) -> None:
    with pytest.raises(SandboxUnavailable, match=r"does not accept these options.*colour"):
        registry.create("shelf")


def test_broken_plugins_are_logged_and_skipped(
    third_party_plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        kinds = registry.available()
    assert kinds["shelf"].__name__ == "NotebookShelfSandbox"
    assert kinds["jupyter"] is JupyterSandbox
    assert "broken" not in kinds and "notasandbox" not in kinds
    logged = caplog.text
    assert "skipping sandbox plugin 'broken'" in logged
    assert "skipping sandbox plugin 'notasandbox'" in logged


def test_a_third_party_kind_is_created_like_a_builtin(third_party_plugins: Path) -> None:
    sandbox = registry.create("shelf", colour="green")
    assert type(sandbox).__name__ == "NotebookShelfSandbox"
    assert sandbox.options == {"colour": "green"}


def test_creating_a_broken_plugin_says_why(third_party_plugins: Path) -> None:
    with pytest.raises(SandboxUnavailable, match=r"cannot be loaded.*ModuleNotFoundError"):
        registry.create("broken")
    with pytest.raises(SandboxUnavailable, match="not a Sandbox subclass"):
        registry.create("notasandbox")


def test_config_chooses_the_kind_and_its_options() -> None:
    config = GatewayConfig(
        sandbox="jupyter",
        sandbox_options={"url": "http://127.0.0.1:9/base/", "token": "t", "kernel_name": "python3"},
    )
    sandbox = registry.create_for(config, env_id="env1")
    assert isinstance(sandbox, JupyterSandbox)
    assert sandbox.remote_root == "interactions/env1"
    assert repr(sandbox).startswith("JupyterSandbox('http://127.0.0.1:9/base/'")


def test_a_request_may_choose_another_kind_without_the_configured_options(
    third_party_plugins: Path,
) -> None:
    config = GatewayConfig(sandbox="jupyter", sandbox_options={"url": "http://127.0.0.1:9/"})
    sandbox = registry.create_for(config, "shelf", colour="red")
    assert type(sandbox).__name__ == "NotebookShelfSandbox"
    assert sandbox.options == {"colour": "red"}


def test_options_of_other_kinds_come_from_sandbox_kinds(third_party_plugins: Path) -> None:
    config = GatewayConfig(
        sandbox="local",
        sandbox_kinds={
            "jupyter": {"url": "http://127.0.0.1:9/remote/", "token": "t"},
            "shelf": {"colour": "blue", "size": 3},
        },
    )
    remote = registry.create_for(config, "jupyter", env_id="env2")
    assert repr(remote).startswith("JupyterSandbox('http://127.0.0.1:9/remote/'")
    shelf = registry.create_for(config, "shelf", colour="red")  # the request's options win
    assert shelf.options == {"colour": "red", "size": 3}
    assert "'t'" not in repr(config)  # the token is masked at any depth
