"""Hostile-safe file access under a sandbox's root, with the standard library only.

A sandbox's code controls every entry under its root and may change any of them at any
moment, so nothing here trusts one. Paths are walked from the root one component at a time
with openat and O_NOFOLLOW: a symlink, even one swapped in mid-call, is refused, never
followed. Listings show each entry as what it is (file, directory, symlink, fifo, socket,
device) from lstat, without opening it. Only regular files are read: opened O_NOFOLLOW |
O_NONBLOCK (a FIFO cannot hold the call) and checked with fstat after the open. Writes go to a
new file beside the target, renamed over it inside a directory held open, so they never write
through a link. Every call ends in bounded time: a read stops at the size fstat gave, a
listing refuses past LISTING_LIMIT entries or LISTING_DEPTH levels.

The gateway uses it for local environments (directory.py); a remote sandbox kernel gets its
source with the helper (jupyter_kernel.py). Errors are builtin OSError kinds with messages
that name the path and say what to do: FileNotFoundError (absent), FileExistsError (present,
no overwrite), IsADirectoryError and NotADirectoryError, and PermissionError (refused: not a
regular file, a link, outside the root, too many entries, or what the system said).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import mimetypes
import os
import posixpath
import shutil
import stat as stat_module
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

if TYPE_CHECKING:  # typing names newer than some remote kernels' Python
    from typing import Concatenate, ParamSpec

    _Params = ParamSpec("_Params")

LISTING_LIMIT = 100_000
LISTING_DEPTH = 128

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024

# (test on st_mode, listed type, what a message calls it, mime type)
_KINDS: list[tuple[Callable[[int], bool], str, str, str]] = [
    (stat_module.S_ISREG, "file", "regular file", ""),
    (stat_module.S_ISDIR, "directory", "directory", "inode/directory"),
    (stat_module.S_ISLNK, "symlink", "symbolic link (links are not followed)", "inode/symlink"),
    (stat_module.S_ISFIFO, "fifo", "FIFO (named pipe)", "inode/fifo"),
    (stat_module.S_ISSOCK, "socket", "socket", "inode/socket"),
    (stat_module.S_ISCHR, "device", "character device", "inode/chardevice"),
    (stat_module.S_ISBLK, "device", "block device", "inode/blockdevice"),
]
_OTHER = ("other", "special file", "application/octet-stream")

# System errors a caller can act on (a name too long, a full quota): refused with what the
# system said. Any other errno is the host's own failure and goes up unchanged.
_CALLERS_ERRNOS = {
    errno.ENAMETOOLONG, errno.ELOOP, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
    errno.EACCES, errno.EPERM, errno.ENXIO, errno.ENOTEMPTY, errno.EXDEV,
}  # fmt: skip
_BY_ERRNO: dict[int, type[OSError]] = {
    errno.ENOENT: FileNotFoundError,
    errno.EEXIST: FileExistsError,
    errno.EISDIR: IsADirectoryError,
    errno.ENOTDIR: NotADirectoryError,
}

_Result = TypeVar("_Result")


def _explained(
    action: str,
) -> Callable[
    [Callable[Concatenate[str, str, _Params], _Result]],
    Callable[Concatenate[str, str, _Params], _Result],
]:
    """Turn a raw OSError of `action` on the call's path into one whose message names it."""

    def decorate(
        function: Callable[Concatenate[str, str, _Params], _Result],
    ) -> Callable[Concatenate[str, str, _Params], _Result]:
        @functools.wraps(function)
        def explained(
            root: str, rel: str, *args: _Params.args, **kwargs: _Params.kwargs
        ) -> _Result:
            try:
                return function(root, rel, *args, **kwargs)
            except OSError as exc:
                if exc.errno is None:  # ours: already says what happened
                    raise
                kind = _BY_ERRNO.get(exc.errno)
                if kind is None and exc.errno not in _CALLERS_ERRNOS:
                    raise
                message = f"cannot {action} {rel or '/'!r}: {exc.strerror or exc}"
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    message += (
                        "; the environment's files fill its disk (a local sandbox's quota): "
                        "remove files, or raise sandbox_options.limits.disk_bytes"
                    )
                raise (kind or PermissionError)(message) from None

        return explained

    return decorate


def parts(rel: str) -> list[str]:
    """A root-relative path's components; PermissionError if it leaves the root."""
    normal = posixpath.normpath(rel) if rel else "."
    if "\0" in rel or normal.startswith("/") or normal == ".." or normal.startswith("../"):
        raise PermissionError(f"path {rel!r} leaves the environment root; give a path inside it")
    return [] if normal == "." else normal.split("/")


def _kind(mode: int) -> tuple[str, str, str]:
    for test, listed, words, mime in _KINDS:
        if test(mode):
            return listed, words, mime
    return _OTHER


def _entry(st: os.stat_result, path: str) -> dict[str, Any]:
    listed, _, mime = _kind(st.st_mode)
    if listed == "file":
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return {
        "path": path,
        "type": listed,
        "size": st.st_size if listed == "file" else 0,
        "modified": st.st_mtime,
        "mime_type": mime,
    }


def _is(here: str, shown: str, words: str) -> str:
    return f"{shown!r} is a {words}" if here == shown else f"{shown!r}: {here!r} is a {words}"


def _require_regular(mode: int, shown: str, action: str) -> None:
    listed, words, _ = _kind(mode)
    if listed == "directory":
        raise IsADirectoryError(f"{shown!r} is a directory; list it instead")
    if listed != "file":
        raise PermissionError(
            f"{shown!r} is a {words}, not a regular file; only regular files can be {action}"
        )


def _owner(root_fd: int) -> tuple[int, int] | None:
    """Whom new entries belong to: the root's owner, when a gateway running as root writes
    into a root that a sandbox's own uid owns (so the sandbox's code can change them)."""
    if os.geteuid() != 0:
        return None
    st = os.fstat(root_fd)
    return None if st.st_uid == 0 else (st.st_uid, st.st_gid)


def _lstat(parent: int, name: str, shown: str) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no file {shown!r} in this environment") from None


def _enter(
    parent: int, name: str, here: str, shown: str, owner: tuple[int, int] | None, create: bool
) -> int:
    """The open child directory `name` of `parent`, made first if `create`; a link, a file or
    anything else in its place is refused."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise FileNotFoundError(f"no file {shown!r} in this environment") from None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        listed, words, _ = _kind(_lstat(parent, name, shown).st_mode)
        if listed == "symlink":
            raise PermissionError(_is(here, shown, words)) from None
        raise NotADirectoryError(_is(here, shown, f"{words}, not a directory")) from None
    with contextlib.suppress(FileExistsError):  # made meanwhile by the sandbox: use it
        os.mkdir(name, 0o755, dir_fd=parent)
    child = _enter(parent, name, here, shown, owner, create=False)
    if owner is not None:
        os.fchown(child, *owner)
    return child


@contextlib.contextmanager
def _directory(root: str, names: list[str], shown: str, create: bool = False) -> Iterator[int]:
    """An fd of the directory `names` under `root`, walked without following any link;
    with `create`, missing directories are made (and given to the root's owner)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        owner = _owner(fd) if create else None
        for depth, name in enumerate(names):
            child = _enter(fd, name, "/".join(names[: depth + 1]), shown, owner, create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _split(rel: str, action: str) -> tuple[list[str], str, str]:
    """(parent's components, last name, shown path); the root itself has no last name."""
    names = parts(rel)
    if not names:
        raise IsADirectoryError(f"'/' is the environment root; cannot {action} it")
    return names[:-1], names[-1], "/".join(names)


# -- reading ---------------------------------------------------------------------------------


@_explained("stat")
def stat(root: str, rel: str) -> dict[str, Any]:
    """One entry, as what it is (a symlink is not followed)."""
    names = parts(rel)
    if not names:
        with _directory(root, [], "") as fd:
            return _entry(os.fstat(fd), "")
    shown = "/".join(names)
    with _directory(root, names[:-1], shown) as parent:
        return _entry(_lstat(parent, names[-1], shown), shown)


def _filesystems_own(fd: int, prefix: str) -> frozenset[str]:
    """Names in the directory `fd` (at `prefix`) that belong to its filesystem, not to the
    user: ext4's lost+found at the root of a mounted disk (a quota disk's, `disk.py`)."""
    if prefix or os.fstat(fd).st_dev == os.stat("..", dir_fd=fd).st_dev:
        return frozenset()
    return frozenset({"lost+found"})


@_explained("list")
def listing(
    root: str, rel: str, recursive: bool = False, limit: int = LISTING_LIMIT
) -> list[dict[str, Any]]:
    """A directory's entries (all below it with `recursive`; links are listed, not walked),
    sorted by path; the single entry of anything that is not a directory."""
    top = stat(root, rel)
    if top["type"] != "directory":
        return [top]
    shown = top["path"]
    entries: list[dict[str, Any]] = []

    def collect(fd: int, prefix: str, depth: int) -> None:
        with os.scandir(fd) as found:
            children = []
            for child in found:  # counted as read: a huge directory stops early
                children.append(child)
                if len(entries) + len(children) > limit:
                    raise PermissionError(
                        f"{shown or '/'!r} holds more than {limit} entries; list a "
                        "subdirectory" + (", or without recursive" if recursive else "")
                    )
        hidden = _filesystems_own(fd, prefix)
        for child in sorted(children, key=lambda child: child.name):
            if child.name in hidden:
                continue
            path = f"{prefix}/{child.name}" if prefix else child.name
            try:
                st = child.stat(follow_symlinks=False)  # fstatat on `fd`: never follows
            except FileNotFoundError:  # removed while listing
                continue
            entries.append(_entry(st, path))
            if recursive and stat_module.S_ISDIR(st.st_mode):
                descend(fd, child.name, path, depth + 1)

    def descend(fd: int, name: str, path: str, depth: int) -> None:
        if depth >= LISTING_DEPTH:
            raise PermissionError(
                f"{path!r} is nested more than {LISTING_DEPTH} directories deep in "
                f"{shown or '/'!r}; list it or a subdirectory"
            )
        try:
            sub = os.open(name, _DIRECTORY, dir_fd=fd)
        except OSError:  # replaced by a link or a file since, or removed: not walked
            return
        try:
            collect(sub, path, depth)
        finally:
            os.close(sub)

    with _directory(root, parts(rel), shown) as fd:
        collect(fd, shown, 0)
    entries.sort(key=lambda entry: entry["path"])
    return entries


def _open_regular(parent: int, name: str, shown: str, flags: int, action: str) -> int:
    """An fd of the regular file `name`, checked before (lstat) and after (fstat) the open,
    so that nothing swapped in between is used."""
    before = _lstat(parent, name, shown)
    _require_regular(before.st_mode, shown, action)
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.ENOENT, errno.EISDIR):
            raise
        _require_regular(_lstat(parent, name, shown).st_mode, shown, action)
        raise PermissionError(f"{shown!r} changed while being opened; try again") from None
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise PermissionError(f"{shown!r} changed while being opened; try again")
    try:
        _require_regular(after.st_mode, shown, action)
    except OSError:
        os.close(fd)
        raise
    return fd


@_explained("read")
def open_file(root: str, rel: str) -> int:
    """A read-only fd of a regular file reached through no link; the caller closes it."""
    folders, name, shown = _split(rel, "read")
    with _directory(root, folders, shown) as parent:
        return _open_regular(parent, name, shown, _READ, "read")


@_explained("read")
def read(root: str, rel: str, offset: int = 0, size: int | None = None) -> tuple[bytes, int]:
    """Up to `size` bytes of a regular file from `offset` (all, without a size), and its size.
    Reads stop at the size the file had when opened, however it grows meanwhile."""
    fd = open_file(root, rel)
    try:
        total = os.fstat(fd).st_size
        end = total if size is None else min(total, offset + size)
        chunks: list[bytes] = []
        position = offset
        while position < end:
            chunk = os.pread(fd, min(_CHUNK, end - position), position)
            if not chunk:  # truncated meanwhile
                break
            chunks.append(chunk)
            position += len(chunk)
        return b"".join(chunks), total
    finally:
        os.close(fd)


# -- writing ---------------------------------------------------------------------------------


def _check_target(parent: int, name: str, shown: str, overwrite: bool) -> None:
    """A target may be absent, or a regular file when overwriting."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    listed, words, _ = _kind(st.st_mode)
    if listed == "directory":
        raise IsADirectoryError(f"{shown!r} is a directory; choose a file path")
    if listed != "file":
        raise PermissionError(
            f"{shown!r} is a {words}, not a regular file; only regular files can be replaced"
        )
    if not overwrite:
        raise FileExistsError(f"{shown!r} already exists; pass overwrite=True to replace it")


@_explained("write")
def prepare(root: str, rel: str, overwrite: bool = True, make_parents: bool = True) -> None:
    """Check a target that something else will write, and make its parent directories
    (without `make_parents`, a missing parent just means there is nothing to refuse)."""
    folders, name, shown = _split(rel, "write")
    try:
        with _directory(root, folders, shown, create=make_parents) as parent:
            _check_target(parent, name, shown, overwrite)
    except FileNotFoundError:
        if make_parents:
            raise


@_explained("write")
def write(root: str, rel: str, data: bytes, overwrite: bool = True) -> dict[str, Any]:
    """Create or replace a regular file, atomically: readers see the old or the new bytes."""
    folders, name, shown = _split(rel, "write")
    with _directory(root, folders, shown, create=True) as parent:
        return _replace(parent, name, shown, overwrite, lambda handle: handle.write(data))


def _replace(
    parent: int, name: str, shown: str, overwrite: bool, fill: Callable[[BinaryIO], object]
) -> dict[str, Any]:
    """Check the target, `fill` a new file beside it, and rename that over it."""
    _check_target(parent, name, shown, overwrite)
    temporary = f".upload-{uuid.uuid4().hex}"
    fd = os.open(temporary, _CREATE, 0o644, dir_fd=parent)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            fill(handle)
        _hand_over(fd, parent)
        st = os.fstat(fd)
        os.close(fd)
        fd = -1
        os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=parent)
        raise
    return _entry(st, shown)


def _hand_over(fd: int, parent: int) -> None:
    """Readable by the sandbox's uid, and owned by it when the gateway is root."""
    os.fchmod(fd, 0o644)
    parent_st = os.fstat(parent)
    if os.geteuid() == 0 and parent_st.st_uid != 0:
        os.fchown(fd, parent_st.st_uid, parent_st.st_gid)


@_explained("write")
def place(root: str, rel: str, source: str, overwrite: bool = True) -> dict[str, Any]:
    """Move a file of the caller's own (`source`, outside the root) to `rel`, atomically."""
    folders, name, shown = _split(rel, "write")
    with _directory(root, folders, shown, create=True) as parent:
        _check_target(parent, name, shown, overwrite)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _hand_over(fd, parent)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            os.rename(source, name, dst_dir_fd=parent)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The root is on another filesystem (an environment's quota disk): copy it in.
            with open(source, "rb") as handle:
                return _replace(
                    parent,
                    name,
                    shown,
                    overwrite,
                    lambda to: shutil.copyfileobj(handle, to, _CHUNK),
                )
    return _entry(st, shown)


@_explained("link")
def link(root: str, rel: str, target: str, overwrite: bool = True) -> dict[str, Any]:
    """Make a symlink (an archive's); it is never followed here, whatever it points to."""
    folders, name, shown = _split(rel, "link")
    with _directory(root, folders, shown, create=True) as parent:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not overwrite:
            raise FileExistsError(f"{shown!r} already exists; pass overwrite=True to replace it")
        if st is not None and stat_module.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{shown!r} is a directory; choose another path")
        temporary = f".link-{uuid.uuid4().hex}"
        os.symlink(target, temporary, dir_fd=parent)
        os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        return _entry(os.stat(name, dir_fd=parent, follow_symlinks=False), shown)


@_explained("make")
def make_directories(root: str, rel: str, check_only: bool = False) -> None:
    """Make a directory and its parents (given to the root's owner), refusing any link or
    file on the way; with `check_only`, only refuse (what is missing is not made)."""
    names = parts(rel)
    try:
        with _directory(root, names, "/".join(names), create=not check_only):
            pass
    except FileNotFoundError:
        if not check_only:
            raise


@_explained("append to")
def append(root: str, rel: str, data: bytes) -> None:
    folders, name, shown = _split(rel, "append to")
    with _directory(root, folders, shown) as parent:
        fd = _open_regular(parent, name, shown, _APPEND, "written")
    try:
        with os.fdopen(fd, "ab", closefd=False) as handle:
            handle.write(data)
    finally:
        os.close(fd)


@_explained("start writing")
def begin(root: str, rel: str) -> str:
    """Start a write in steps: a hidden, empty file beside the target (which is checked);
    `append` to it, then `move` it over the target. Returns its root-relative path."""
    folders, name, shown = _split(rel, "write")
    temporary = f".upload-{uuid.uuid4().hex}"
    with _directory(root, folders, shown, create=True) as parent:
        _check_target(parent, name, shown, overwrite=True)
        fd = os.open(temporary, _CREATE, 0o644, dir_fd=parent)
        try:
            _hand_over(fd, parent)
        finally:
            os.close(fd)
    return "/".join([*folders, temporary])


@_explained("move")
def move(root: str, rel: str, target: str) -> dict[str, Any]:
    """Rename a regular file over another path inside the root (atomic)."""
    folders, name, shown = _split(rel, "move")
    target_folders, target_name, target_shown = _split(target, "write")
    with _directory(root, folders, shown) as source_parent:
        _require_regular(_lstat(source_parent, name, shown).st_mode, shown, "moved")
        with _directory(root, target_folders, target_shown, create=True) as target_parent:
            _check_target(target_parent, target_name, target_shown, overwrite=True)
            os.replace(name, target_name, src_dir_fd=source_parent, dst_dir_fd=target_parent)
            return _entry(_lstat(target_parent, target_name, target_shown), target_shown)


@_explained("remove")
def remove(root: str, rel: str) -> None:
    """Remove a regular file; anything else (or nothing) there is left as it is."""
    folders, name, shown = _split(rel, "remove")
    with contextlib.suppress(FileNotFoundError), _directory(root, folders, shown) as parent:
        if stat_module.S_ISREG(_lstat(parent, name, shown).st_mode):
            os.unlink(name, dir_fd=parent)


# -- copying (a fork of an environment) ------------------------------------------------------


def copy_tree(source: str, target: str, limit: int = LISTING_LIMIT, into: bool = False) -> None:
    """Copy everything under `source` into `target` (made here, or `into` one that exists;
    the caller's own): directories, regular files (mode and modification time kept) and
    symlinks as they are, never followed; FIFOs are made anew. Sockets and devices hold no
    data and are left out. A directory already in the target is copied into."""
    os.makedirs(target, 0o755, exist_ok=into)
    with _directory(source, [], "") as from_fd, _directory(target, [], "") as to_fd:
        _copy_into(from_fd, to_fd, "", 0, [limit])


def _copy_into(from_fd: int, to_fd: int, prefix: str, depth: int, budget: list[int]) -> None:
    with os.scandir(from_fd) as found:
        children = []
        for child in found:  # counted as read: a huge directory stops early
            children.append(child)
            budget[0] -= 1
            if budget[0] < 0:
                raise PermissionError(
                    f"more than {LISTING_LIMIT} entries to copy; remove some first"
                )
    hidden = _filesystems_own(from_fd, prefix)
    for child in sorted(children, key=lambda child: child.name):
        if child.name in hidden:
            continue
        name, path = child.name, f"{prefix}/{child.name}" if prefix else child.name
        try:
            st = child.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed meanwhile
            continue
        listed = _kind(st.st_mode)[0]
        if listed == "directory":
            if depth + 1 >= LISTING_DEPTH:
                raise PermissionError(
                    f"{path!r} is nested more than {LISTING_DEPTH} directories deep"
                )
            with contextlib.suppress(FileExistsError):  # only the caller's own target has one
                os.mkdir(name, 0o755, dir_fd=to_fd)
            try:
                inner = os.open(name, _DIRECTORY, dir_fd=from_fd)
            except OSError:  # replaced by a link or a file since: an empty directory
                continue
            try:
                with _directory_fd(os.open(name, _DIRECTORY, dir_fd=to_fd)) as copy:
                    _copy_into(inner, copy, path, depth + 1, budget)
            finally:
                os.close(inner)
        elif listed == "file":
            _copy_file(from_fd, to_fd, name, path)
        elif listed == "symlink":
            os.symlink(os.readlink(name, dir_fd=from_fd), name, dir_fd=to_fd)
        elif listed == "fifo":
            os.mkfifo(name, stat_module.S_IMODE(st.st_mode), dir_fd=to_fd)


@contextlib.contextmanager
def _directory_fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _copy_file(from_fd: int, to_fd: int, name: str, path: str) -> None:
    source = _open_regular(from_fd, name, path, _READ, "copied")
    try:
        st = os.fstat(source)
        copy = os.open(name, _CREATE, stat_module.S_IMODE(st.st_mode), dir_fd=to_fd)
        try:
            position = 0
            while position < st.st_size:  # what it held when opened, however it grows
                chunk = os.pread(source, min(_CHUNK, st.st_size - position), position)
                if not chunk:
                    break
                os.write(copy, chunk)
                position += len(chunk)
            os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(copy)
    finally:
        os.close(source)
