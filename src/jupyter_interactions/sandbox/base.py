"""The Sandbox contract: where an agent's code runs and where its files live.

A sandbox is a stateful place: variables persist between `run` calls (it is a kernel), and
files persist in its root directory. Paths in `files` are POSIX paths relative to that root;
code runs with its working directory at `<root>/workspace`, matching the Interactions API's
`workspace/...` file paths. Every path is checked: nothing outside the root is reachable,
through `..`, absolute paths or symlinks. Every entry under the root is the sandbox's code's
to make, so `files` treats each one as hostile (see safe_files.py): symlinks are listed, not
followed, and only regular files are read or replaced.
"""

from __future__ import annotations

import logging
import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..errors import RequestError, SandboxError, UnsupportedError

if TYPE_CHECKING:
    from .egress import Allowlist

log = logging.getLogger(__name__)

WORKSPACE = "workspace"

OutputCallback = Callable[[str, str], None]
"""Called with (stream name: "stdout" | "stderr", text) as output arrives."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of a sandbox. How each one holds depends on the kind and, for local
    sandboxes, on the machine (see `LocalSandbox.enforcement` and the README's table)."""

    cpu_seconds: int = 120  # CPU time per run, all of the sandbox's processes together
    memory_bytes: int = 2 * 1024**3  # for all its processes together (and each one)
    file_bytes: int = 256 * 1024**2  # the largest file
    processes: int = 256  # at once, threads included
    wall_seconds: float = 300.0  # default per-run timeout
    disk_bytes: int = 2 * 1024**3  # all the environment's files


@dataclass
class RunError:
    name: str
    value: str
    traceback: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """What one `run` produced. `outputs` are rich display mimebundles (e.g. image/png)."""

    stdout: str = ""
    stderr: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: RunError | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    def add_message(
        self, kind: str, content: dict[str, Any], on_output: OutputCallback | None = None
    ) -> bool:
        """Fold one iopub message (Jupyter messaging protocol) into the result, streaming
        text to `on_output`; True when it is a `status: idle` (the run's output is over)."""
        if kind == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            text = content.get("text", "")
            if name == "stderr":
                self.stderr += text
            else:
                self.stdout += text
            if on_output is not None and text:
                try:
                    on_output(name, text)
                except Exception:  # a broken listener must not abandon the run mid-way
                    log.exception("on_output callback failed")
        elif kind in ("display_data", "execute_result", "update_display_data"):
            self.outputs.append(dict(content.get("data", {})))
        elif kind == "error":
            self.error = RunError(
                name=content.get("ename", "Error"),
                value=content.get("evalue", ""),
                traceback=list(content.get("traceback", [])),
            )
        elif kind == "status":
            return content.get("execution_state") == "idle"
        return False

    def add_reply(self, content: dict[str, Any]) -> None:
        """Take an execute_reply: an error it reports that no iopub message did."""
        if self.error is not None:
            return
        if content.get("status") == "error":
            self.error = RunError(
                name=content.get("ename", "Error"),
                value=content.get("evalue", ""),
                traceback=list(content.get("traceback", [])),
            )
        elif content.get("status") == "aborted":
            self.error = RunError(name="Aborted", value="the kernel aborted this run")

    def text(self) -> str:
        """A plain-text account of the run, as an agent step's result shows it."""
        parts = [self.stdout, self.stderr]
        for bundle in self.outputs:
            if "text/plain" in bundle:
                parts.append(str(bundle["text/plain"]) + "\n")
        parts.extend(self.closing_lines())
        return "".join(p for p in parts if p)

    def closing_lines(self) -> list[str]:
        """How the run ended, as the last lines of its account: the error, the time-out."""
        lines = []
        if self.error is not None:
            lines.append(f"{self.error.name}: {self.error.value}\n")
        if self.timed_out:
            lines.append("[stopped: the run exceeded its time limit]\n")
        return lines


EntryType = Literal["file", "directory", "symlink", "fifo", "socket", "device", "other"]
"""What an entry is. Sandboxes list every entry as what it is; only files can be read."""


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the sandbox root, POSIX
    type: EntryType
    size: int
    modified: float  # seconds since the epoch
    mime_type: str = "application/octet-stream"

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> FileInfo:
        """From an entry as `safe_files` gives it (locally, or as JSON from a kernel)."""
        return cls(
            path=str(entry["path"]),
            type=entry["type"],
            size=int(entry["size"]),
            modified=float(entry["modified"]),
            mime_type=str(entry["mime_type"]),
        )


def clean_relative(path: str) -> str:
    """Normalise a user-supplied sandbox path; refuse anything that escapes the root.

    "", ".", "/" mean the root. Returns "" for the root, else a POSIX path without leading
    "./". Raises RequestError for absolute paths, `..` escapes and NUL bytes.
    """
    if "\x00" in path:
        raise RequestError("file paths cannot contain NUL bytes")
    stripped = path.strip()
    if stripped in ("", ".", "/"):
        return ""
    if stripped.startswith("/") or (len(stripped) > 1 and stripped[1] == ":"):
        raise RequestError(
            f"absolute path {path!r} refused: give a path relative to the environment root, "
            f"e.g. '{WORKSPACE}/out.csv'"
        )
    normal = posixpath.normpath(stripped)
    if normal == ".":
        return ""
    if normal == ".." or normal.startswith("../"):
        raise RequestError(f"path {path!r} leaves the environment root; use a path inside it")
    return normal


@dataclass(frozen=True)
class CodeRun:
    """One `Sandbox.run` call as a sandbox kind runs it: its timeout settled."""

    code: str
    language: Literal["python", "bash"]
    timeout: float  # seconds: the call's, else the sandbox's `limits.wall_seconds`
    on_output: OutputCallback | None


class SandboxFiles(ABC):
    """File access in a sandbox's root. Paths as in `clean_relative`."""

    @abstractmethod
    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        """Entries of a directory (or the single entry of anything else), each as what it is;
        links are listed, never walked. NotFoundError if absent; RequestError past the
        listing's bounds (entries, depth) or for a link on the way."""

    @abstractmethod
    async def stat(self, path: str) -> FileInfo:
        """One entry, as what it is (a link is not followed). NotFoundError if absent."""

    @abstractmethod
    async def read(self, path: str) -> bytes:
        """A regular file's bytes. NotFoundError if absent; RequestError naming the path and
        what it is for anything else (directory, link, FIFO, socket, device). Never waits on
        what the sandbox's code does to the entry."""

    @abstractmethod
    async def write(self, path: str, data: bytes) -> FileInfo:
        """Create or replace a regular file (parents created). Atomic: readers never see
        half. RequestError if the target, or a directory on the way, is anything else."""

    async def upload(self, local_path: str | os.PathLike[str], path: str) -> FileInfo:
        return await self.write(path, Path(local_path).read_bytes())

    async def download(self, path: str, local_path: str | os.PathLike[str]) -> Path:
        target = Path(local_path)
        target.write_bytes(await self.read(path))
        return target


def check_variables_set(result: RunResult) -> None:
    """Raise if the run that set environment variables failed. Only the error's name is
    told: its text could quote the code, and so the values."""
    if result.error is not None or result.timed_out:
        cause = result.error.name if result.error is not None else "timed out"
        raise SandboxError(f"could not set the environment variables in the sandbox ({cause})")


class Sandbox(ABC):
    """Start, run code (streamed, with a timeout), interrupt, files, stop.

    Use as `async with SandboxClass(...) as sandbox:`. `stop` is idempotent. `isolation`
    names the tier actually in force after `start` (e.g. "bubblewrap", "landlock",
    "limits", "remote"); `warnings` lists what the user should be told about it. `restarts`
    counts the kernel restarts that lost its variables (each one's run says so, too).
    A kind implements `_run`, which `run` calls with its arguments settled.
    """

    kind: ClassVar[str] = "abstract"

    def __init__(self, *, root: Path | None = None, limits: Limits | None = None, **options: Any):
        self.root = root
        self.limits = limits or Limits()
        self.options = options
        self.isolation = "none"
        self.warnings: list[str] = []
        self.variables: dict[str, str] = {}  # as set by set_variables
        self.allowlist: Allowlist | None = None  # as set by allow_network
        self.restarts = 0  # times its kernel was restarted, losing its variables

    files: SandboxFiles

    @abstractmethod
    async def start(self) -> None:
        """Bring the sandbox up; afterwards `run` and `files` work."""

    async def run(
        self,
        code: str,
        *,
        language: Literal["python", "bash"] = "python",
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> RunResult:
        """Run code; state persists between runs. On timeout (`limits.wall_seconds` unless
        given), interrupt (then restart if the interrupt does not take) and return a result
        with timed_out=True."""
        limit = self.limits.wall_seconds if timeout is None else timeout
        return await self._run(CodeRun(code, language, limit, on_output))

    async def _run(self, run: CodeRun) -> RunResult:
        """`run` with its arguments settled: what a kind implements (a plugin may override
        `run` itself instead)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _run nor run")

    @abstractmethod
    async def set_variables(self, variables: Mapping[str, str]) -> None:
        """Set environment variables for the code from now on, its subprocesses included:
        added to those set before (kept in `variables`), set again after a kernel restart,
        and leaving no trace in the kernel's input history."""

    @classmethod
    def allowlist_refusal(cls, options: Mapping[str, Any]) -> str | None:
        """Why sandboxes of this kind, built with these options, cannot honour a network
        allowlist; None when they can (then they implement `allow_network`)."""
        return (
            f"{cls.kind!r} sandboxes cannot let some domains through and not others: their "
            "network is what their host gives them"
        )

    async def allow_network(self, allowlist: Allowlist | None) -> None:
        """Let the code reach the allowlist's domains (None: nothing) from now on; sets
        `allowlist`."""
        raise UnsupportedError(self.allowlist_refusal(self.options) or "no network allowlists")

    @abstractmethod
    async def interrupt(self) -> None:
        """Interrupt the running code, as KeyboardInterrupt; state is kept."""

    @abstractmethod
    async def stop(self) -> None:
        """Shut down and release everything. Safe to call twice."""

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
