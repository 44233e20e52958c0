"""The kernel side of record and replay in a real IPython shell against the real gateway:
%interactions record / replay / cassette, the cell each request names, a key typed into a
cell, and a recording the gateway refused, warned about in the cell that caused it."""

from __future__ import annotations

import json

import pytest

SHAPED_KEY = "AIza" + "k" * 35


def test_record_names_the_cell_and_shows_the_state(gw, tmp_path, capsys):
    folder = tmp_path / "nb.interactions"
    state = gw.run(f"%interactions record {tmp_path / 'nb'}").result
    assert repr(state) == "recording into nb.interactions (0 interactions)"
    gw.run("%%interaction --model echo\nhello, recorder")
    shown = repr(gw.run("%interactions cassette").result)
    assert shown.startswith("recording into nb.interactions (1 interaction, last recorded 20")
    (entry,) = [json.loads(p.read_text()) for p in (folder / "interactions").glob("*.json")]
    assert entry["cell"] == f"cell [{gw.shell.execution_count - 2}]"
    assert entry["request"]["input"][0]["content"][0]["text"] == "hello, recorder"

    gw.run(f"%%interaction --model echo\nmy key is {SHAPED_KEY}")
    warned = capsys.readouterr().err
    assert "this cell holds what looks like an API key" in warned
    assert f"cell [{gw.shell.execution_count - 1}]: not recorded: a Google API key" in warned
    assert SHAPED_KEY not in warned
    assert repr(gw.run("%interactions cassette off").result) == "not recording or replaying"


def test_a_key_typed_into_a_cell_is_warned_about(gw, capsys):
    gw.run('GEMINI_API_KEY = "not-a-real-key-1234"')
    assert "holds what looks like an API key" in capsys.readouterr().err
    gw.run('import os\nkey = os.environ.get("GEMINI_API_KEY")')
    assert "API key" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("replay {tmp}/missing", "record one first"),
        ("record --auto", "--auto goes with replay"),
        ("cassette on", "'cassette off' stops"),
    ],
)
def test_cassette_commands_refuse_with_advice(gw, tmp_path, capsys, line, says):
    gw.run("%interactions " + line.format(tmp=tmp_path))
    assert says in capsys.readouterr().err


def test_without_a_notebook_name_record_asks_for_a_path(gw, monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME")
    gw.run("from jupyter_interactions import Session\nSession(key='k').cassette('record')")
    assert "give the cassette's folder" in capsys.readouterr().out  # the traceback
