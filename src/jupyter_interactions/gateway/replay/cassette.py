"""A cassette on disk: a folder of readable JSON, one file per recorded interaction, with the
files agents wrote (and any long string) stored once each by content hash.

    sharing.interactions/
      cassette.json            what this is, its format, when it was last written, how many
      interactions/0001.json   one interaction: request, thread position, events, resource, files
      blobs/<sha256>           file contents and strings longer than 4 KiB, each stored once

Keys are sorted and each event (and file) sits on one line, so a re-recording diffs well.
Synchronous: the gateway calls it from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import read_json_object
from ...errors import RequestError
from ...protocol import CASSETTE_SUFFIX as SUFFIX
from ...protocol import now

FORMAT = 1
INDEX = "cassette.json"
LONG_STRING = 4096  # longer strings go to blobs/, so entries stay readable
_ONE_PER_LINE = frozenset({"events", "files"})
_BLOB = "$blob"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    """One recorded interaction, as in its file (long strings still as blob references)."""

    number: int
    data: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.data["key"])


class Cassette:
    """One cassette folder. `load()` reads it; `write()` adds or replaces an entry."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if path.suffix != SUFFIX:
            raise RequestError(
                f"path: a cassette is a folder named like '<notebook>{SUFFIX}', not {path.name!r}; "
                f"e.g. %interactions record analysis{SUFFIX}",
                field="path",
            )
        if not path.is_absolute():
            raise RequestError(f"path: must be absolute, not {str(path)!r}", "path")
        self.path = path
        self.entries: dict[str, Entry] = {}  # by key
        self.recorded: str | None = None

    def exists(self) -> bool:
        return (self.path / INDEX).is_file()

    def index_mtime(self) -> float:
        try:
            return (self.path / INDEX).stat().st_mtime
        except OSError:
            return 0.0

    # -- reading -------------------------------------------------------------------------------

    def load(self) -> Cassette:
        index = self._read_json(self.path / INDEX)
        if index.get("format") != FORMAT:
            raise RequestError(
                f"{self.path} holds a cassette of format {index.get('format')!r}; this version "
                f"reads format {FORMAT}: record it again"
            )
        self.recorded = index.get("recorded")
        self.entries = {}
        folder = self.path / "interactions"
        for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            entry = Entry(int(file.stem), self._read_json(file))
            self.entries[entry.key] = entry
        return self

    def _read_json(self, file: Path) -> dict[str, Any]:
        return read_json_object(file, RequestError, what=f"the cassette file {file}")

    def blob(self, digest: str) -> bytes:
        if not _DIGEST.fullmatch(digest):  # a cassette is shared: never a path out of it
            raise RequestError(
                f"the cassette {self.path} names a blob {digest[:80]!r}: not a SHA-256"
            )
        try:
            return (self.path / "blobs" / digest).read_bytes()
        except OSError:
            raise RequestError(
                f"the cassette {self.path} lacks blobs/{digest}; copy the whole folder, or "
                "record it again"
            ) from None

    def resolve(self, value: Any) -> Any:
        """`value` with every blob reference replaced by the string it stands for."""
        if isinstance(value, dict):
            if set(value) == {_BLOB}:
                return self.blob(str(value[_BLOB])).decode()
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    # -- writing -------------------------------------------------------------------------------

    def write(self, data: dict[str, Any], files: dict[str, bytes]) -> Entry:
        """Write one entry (replacing the entry of the same key) and the files' blobs. Blobs
        first, the entry next, the index last: a reader never sees an entry without its blobs."""
        for digest, content in files.items():
            self._put_blob(digest, content)
        data = {**self._externalize(data), "format": FORMAT}
        existing = self.entries.get(str(data["key"]))
        numbers = [e.number for e in self.entries.values()]
        number = existing.number if existing else max(numbers, default=0) + 1
        folder = self.path / "interactions"
        folder.mkdir(parents=True, exist_ok=True)
        _replace(folder / f"{number:04d}.json", dumps(data))
        entry = Entry(number, data)
        self.entries[entry.key] = entry
        self.recorded = now()
        index = {
            "about": "interactions recorded by jupyter-interactions; the gateway replays them "
            "for matching requests (README: 'Sharing: record and replay')",
            "format": FORMAT,
            "interactions": len(self.entries),
            "recorded": self.recorded,
        }
        _replace(self.path / INDEX, dumps(index))
        return entry

    def _put_blob(self, digest: str, content: bytes) -> None:
        target = self.path / "blobs" / digest
        if target.exists():
            return  # stored once
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(target, content)

    def _externalize(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > LONG_STRING:
            data = value.encode()
            digest = sha256(data)
            self._put_blob(digest, data)
            return {_BLOB: digest}
        if isinstance(value, dict):
            return {k: self._externalize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._externalize(v) for v in value]
        return value


def dumps(value: dict[str, Any]) -> str:
    """JSON with sorted keys, one key a line at the top, and one item a line for events and
    files: readable, and a re-recording changes only the lines that differ."""
    lines = ["{"]
    items = sorted(value.items())
    for position, (key, item) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if key in _ONE_PER_LINE and isinstance(item, list) and item:
            rows = ",\n".join("  " + _compact(row) for row in item)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]{comma}")
        else:
            text = json.dumps(item, sort_keys=True, indent=1, ensure_ascii=False)
            lines.append(f" {json.dumps(key)}: {text.replace(chr(10), chr(10) + ' ')}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _replace(target: Path, content: str | bytes) -> None:
    """Write `target` whole or not at all."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if isinstance(content, str):
        tmp.write_text(content)
    else:
        tmp.write_bytes(content)
    os.replace(tmp, target)
