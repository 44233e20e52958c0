"""The cassette folder itself: its layout, one entry per request key, blobs stored once, and
a shared cassette that names a path instead of a blob is refused."""

from __future__ import annotations

import json

import pytest

from jupyter_interactions.errors import RequestError
from jupyter_interactions.gateway.replay.cassette import LONG_STRING, Cassette, sha256


def entry(key: str, text: str) -> dict:
    events = [{"at_ms": 0, "event_type": "step.delta", "delta": {"text": text}}]
    return {"key": key, "request": {"input": text}, "events": events, "files": []}


def test_entries_are_sorted_one_event_a_line_and_replaced_by_key(tmp_path):
    cassette = Cassette(tmp_path / "nb.interactions")
    cassette.write(entry("k1", "first"), {})
    cassette.write(entry("k2", "second"), {})
    cassette.write(entry("k1", "first, again"), {})
    loaded = Cassette(tmp_path / "nb.interactions").load()
    assert sorted(e.number for e in loaded.entries.values()) == [1, 2]
    assert loaded.entries["k1"].data["request"] == {"input": "first, again"}
    text = (tmp_path / "nb.interactions" / "interactions" / "0001.json").read_text()
    assert '  {"at_ms": 0, "delta": {"text": "first, again"}, "event_type": "step.delta"}' in text
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_long_strings_and_files_are_stored_once_by_hash(tmp_path):
    cassette = Cassette(tmp_path / "nb.interactions")
    long = "x" * (LONG_STRING + 1)
    data = b"the same file"
    cassette.write(entry("k1", long), {sha256(data): data})
    cassette.write(entry("k2", long), {sha256(data): data})
    blobs = sorted(p.name for p in (tmp_path / "nb.interactions" / "blobs").iterdir())
    assert blobs == sorted([sha256(long.encode()), sha256(data)])
    loaded = Cassette(tmp_path / "nb.interactions").load()
    assert loaded.resolve(loaded.entries["k2"].data)["request"]["input"] == long


def test_a_blob_name_that_is_not_a_digest_is_refused(tmp_path):
    cassette = Cassette(tmp_path / "nb.interactions")
    with pytest.raises(RequestError, match="not a SHA-256"):
        cassette.blob("../../../etc/passwd")
    with pytest.raises(RequestError, match=r"named like '<notebook>\.interactions'"):
        Cassette(tmp_path / "notes")


def test_a_cassette_file_with_nan_is_refused(tmp_path):
    """A shared cassette's events are served as they are: NaN or Infinity in one would reach
    an answer (main's rule: no answer holds them), so loading refuses the file, naming it."""
    cassette = Cassette(tmp_path / "nb.interactions")
    cassette.write(entry("k1", "fine"), {})
    file = tmp_path / "nb.interactions" / "interactions" / "0001.json"
    file.write_text(file.read_text().replace('"at_ms": 0', '"at_ms": NaN'))
    with pytest.raises(RequestError, match=r"cassette file .*0001\.json.*NaN"):
        Cassette(tmp_path / "nb.interactions").load()
