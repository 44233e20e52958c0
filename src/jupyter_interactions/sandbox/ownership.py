"""Who owns a sandbox's files: the one walker that hands a tree to the sandbox's uid.

A gateway running as root gives each sandbox a uid of its own (`isolation.Identity`); its
environment and runtime directories, and its kernel's connection file, are handed to that
uid here (files the gateway writes later take the root's owner as they are made, in
`safe_files`).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["give_tree"]


def give_tree(path: Path, uid: int, gid: int) -> None:
    """Give `path` and everything beneath it to uid:gid (symbolic links themselves, never
    what they point to). What uid:gid owns already is left as it is."""
    items: list[str] = [str(path)]
    if path.is_dir() and not path.is_symlink():
        for directory, dirnames, filenames in os.walk(path):
            items += [os.path.join(directory, name) for name in dirnames + filenames]
    for item in items:
        status = os.lstat(item)
        if (status.st_uid, status.st_gid) != (uid, gid):
            os.lchown(item, uid, gid)
