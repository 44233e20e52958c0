"""The package's public surface: exactly `__all__`, importable, and light to import."""

from __future__ import annotations

import subprocess
import sys

import jupyter_interactions


def test_all_names_resolve():
    for name in jupyter_interactions.__all__:
        assert getattr(jupyter_interactions, name) is not None, name


def test_all_lists_every_public_name():
    public = set(jupyter_interactions._PUBLIC) | {
        "__version__",
        "load_ipython_extension",
        "unload_ipython_extension",
    }
    assert set(jupyter_interactions.__all__) == public


def test_importing_the_package_loads_neither_ipython_nor_the_gateway():
    code = (
        "import sys, jupyter_interactions;"
        "print(any(m.startswith(('IPython', 'jupyter_interactions.gateway', 'google')) "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_server_extension_point_names_the_extension_app():
    (point,) = jupyter_interactions._jupyter_server_extension_points()
    assert point["app"].name == "jupyter_interactions"
