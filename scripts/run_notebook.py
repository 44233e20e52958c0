"""Run a notebook top to bottom in a fresh kernel and print each code cell with its outputs.

`make demo` uses it on notebooks/quickstart.ipynb. The notebook file is left as it is, unless
--save (how the committed notebooks get their outputs).
Usage: python scripts/run_notebook.py NOTEBOOK [--timeout SECONDS] [--save]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat
from jupyter_core.paths import jupyter_runtime_dir


def shown(output: dict) -> str:
    """The text a reader sees for one output: stream text, plain text of a display, an error."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return output.get("data", {}).get("text/plain", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--timeout", type=int, default=600, help="per cell (default 600 s)")
    parser.add_argument("--save", action="store_true", help="write the outputs into the file")
    args = parser.parse_args()
    notebook = nbformat.read(args.notebook, as_version=4)
    started = time.perf_counter()
    # The kernel works in the notebook's folder, as under Jupyter and nbval.
    folder = {"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}}
    runner = nbclient.NotebookClient(
        notebook, timeout=args.timeout, kernel_name="python3", resources=folder
    )
    if sys.platform.startswith("linux"):
        # Unix sockets in Jupyter's runtime dir instead of loopback TCP: nothing to eavesdrop
        # on, and the kernel has no "running over TCP without encryption" warning to print.
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True)
        runner.km = runner.create_kernel_manager()
        runner.km.transport = "ipc"
        runner.km.ip = str(runtime / f"run-notebook-{os.getpid()}-ipc")  # not the cwd
    try:
        runner.execute()
    except nbclient.exceptions.CellExecutionError as error:
        print(error, file=sys.stderr)
        return 1
    if args.save:
        nbformat.write(notebook, args.notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        print(f"\n[{cell.execution_count}] {cell.source}")
        for output in cell.outputs:
            text = shown(output).rstrip()
            if text:
                print("    " + text.replace("\n", "\n    "))
    print(f"\n{args.notebook}: ran top to bottom in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
