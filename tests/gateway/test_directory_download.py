"""Downloading an environment directory as a tar: regular files only, symlinks never
followed (not even inside the environment), FIFOs never opened for long, big files
streamed whole."""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any


def test_a_directory_tar_holds_only_regular_files_reached_without_symlinks(
    gateway: Any, client: Any, tmp_path: Any
) -> None:
    env = client.environments.create(
        sources=[{"type": "inline", "target": "out/real.txt", "content": "real"}]
    )
    root = gateway.data_dir / "environments" / env.id
    outside = tmp_path / "secret.txt"
    outside.write_text("secret outside the environment")
    (root / "out" / "leak.txt").symlink_to(outside)  # leaves the environment
    (root / "out" / "alias.txt").symlink_to(root / "out" / "real.txt")  # stays inside
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "inner.txt").write_text("inner")
    (root / "out" / "linked_dir").symlink_to(root / "elsewhere", target_is_directory=True)
    os.mkfifo(root / "out" / "pipe")  # a reader that opened it would wait forever
    big = os.urandom(3 * 1024 * 1024 + 7)  # several chunks, not a multiple of 512
    (root / "out" / "big.bin").write_bytes(big)

    archive = client.environments.files.download(environment=env.id, path="out")

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"real.txt", "big.bin"}
        assert all(m.isfile() for m in members.values())
        assert tar.extractfile("real.txt").read() == b"real"
        assert tar.extractfile("big.bin").read() == big
    assert b"secret outside" not in archive and b"inner" not in archive
    client.environments.delete(id=env.id)
