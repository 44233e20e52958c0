"""Code that runs inside a remote sandbox kernel: its root, bash runs, and file access.

JupyterSandbox sends this module's source to the kernel once per (re)start, where it lives
as the module `_jupyter_interactions_sandbox`, out of the user's namespace. Only the standard
library is used: the remote kernel has nothing of ours installed. File functions return
JSON text (read back through an execute_reply's user_expressions) and refuse any path whose
real location, symlinks followed, leaves the root.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import posixpath
import stat as stat_module
import uuid

MODULE_NAME = "_jupyter_interactions_sandbox"
WORKSPACE = "workspace"
_root: str | None = None


def setup(root: str) -> str:
    """Make `root/workspace`, work there, and return the absolute root."""
    global _root
    _root = os.path.realpath(os.path.abspath(root))
    workspace = os.path.join(_root, WORKSPACE)
    os.makedirs(workspace, exist_ok=True)
    os.chdir(workspace)
    return json.dumps({"root": _root})


def _real_root() -> str:
    if _root is None:
        raise RuntimeError("sandbox root is not set; call setup first")
    return _root


def _resolve(rel: str) -> str:
    root = _real_root()
    normal = posixpath.normpath(rel) if rel else "."
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        raise PermissionError(f"path {rel!r} leaves the environment root")
    path = os.path.join(root, normal) if normal != "." else root
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise PermissionError(f"path {rel!r} points outside the environment root")
    return real


def _info(real: str, shown: str) -> dict[str, object]:
    st = os.stat(real)
    is_dir = stat_module.S_ISDIR(st.st_mode)
    mime = (
        "inode/directory"
        if is_dir
        else (mimetypes.guess_type(shown)[0] or "application/octet-stream")
    )
    return {
        "path": shown,
        "type": "directory" if is_dir else "file",
        "size": 0 if is_dir else st.st_size,
        "modified": st.st_mtime,
        "mime_type": mime,
    }


def _relative(real: str) -> str:
    rel = os.path.relpath(real, _real_root()).replace(os.sep, "/")
    return "" if rel == "." else rel


def stat(rel: str) -> str:
    real = _resolve(rel)
    if not os.path.exists(real):
        raise FileNotFoundError(f"no file {rel or '/'!r} in this environment")
    return json.dumps(_info(real, _relative(real)))


def listdir(rel: str, recursive: bool) -> str:
    real = _resolve(rel)
    if not os.path.exists(real):
        raise FileNotFoundError(f"no file {rel or '/'!r} in this environment")
    if not os.path.isdir(real):
        return json.dumps([_info(real, _relative(real))])
    root = _real_root()
    entries = []
    pending = [real]
    while pending:
        directory = pending.pop()
        for name in sorted(os.listdir(directory)):
            child = os.path.join(directory, name)
            target = os.path.realpath(child)
            if target != root and not target.startswith(root + os.sep):
                continue  # symlinks that leave the root are neither listed nor readable
            try:
                info = _info(target, _relative(child))
            except FileNotFoundError:  # removed while listing, or a dangling link
                continue
            entries.append(info)
            if recursive and info["type"] == "directory" and not os.path.islink(child):
                pending.append(child)
    entries.sort(key=lambda e: str(e["path"]))
    return json.dumps(entries)


def read(rel: str, offset: int, size: int) -> str:
    real = _resolve(rel)
    if os.path.isdir(real):
        raise IsADirectoryError(f"{rel!r} is a directory; list it instead")
    if not os.path.exists(real):
        raise FileNotFoundError(f"no file {rel!r} in this environment")
    with open(real, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
        total = os.fstat(handle.fileno()).st_size
    return json.dumps({"data": base64.b64encode(data).decode("ascii"), "total": total})


def prepare_write(rel: str) -> str:
    """Check a path someone else (the contents API) will write, and make its parents."""
    real = _resolve(rel)
    if os.path.isdir(real):
        raise IsADirectoryError(f"{rel!r} is a directory; choose a file path")
    os.makedirs(os.path.dirname(real), exist_ok=True)
    _resolve(rel)  # the parents just made must not have moved the target out
    return "{}"


def write_open(rel: str) -> str:
    """Start a write: a hidden temporary file beside the target, renamed on commit."""
    real = _resolve(rel)
    if os.path.isdir(real):
        raise IsADirectoryError(f"{rel!r} is a directory; choose a file path")
    os.makedirs(os.path.dirname(real), exist_ok=True)
    _resolve(rel)  # the parents just made must not have moved the target out
    tmp = os.path.join(os.path.dirname(real), f".upload-{uuid.uuid4().hex}")
    open(tmp, "wb").close()
    return json.dumps({"tmp": tmp})


def write_append(tmp: str, data: str) -> str:
    with open(tmp, "ab") as handle:
        handle.write(base64.b64decode(data))
    return "{}"


def write_commit(tmp: str, rel: str) -> str:
    real = _resolve(rel)
    os.replace(tmp, real)
    return json.dumps(_info(real, _relative(real)))


def write_abort(tmp: str) -> str:
    if os.path.exists(tmp):
        os.unlink(tmp)
    return "{}"


def move(source: str, target: str) -> str:
    """Rename one file over another inside the root (both checked): atomic."""
    os.replace(_resolve(source), _resolve(target))
    return "{}"


def remove(rel: str) -> str:
    real = _resolve(rel)
    if os.path.isfile(real):
        os.unlink(real)
    return "{}"


def bash(code: str) -> None:
    """Run code with bash (sh if absent) in the working directory, streaming its output."""
    import codecs
    import selectors
    import shutil
    import signal
    import subprocess
    import sys

    shell = shutil.which("bash") or "/bin/sh"
    proc = subprocess.Popen(
        [shell, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so an interrupt can take the whole process group down
    )
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): sys.stdout, proc.stderr.fileno(): sys.stderr}
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in streams}
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    try:
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    streams[key.fd].write(decoders[key.fd].decode(b"", final=True))
                    continue
                streams[key.fd].write(decoders[key.fd].decode(chunk))
                streams[key.fd].flush()
        returncode = proc.wait()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    finally:
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, "bash")
