"""The kernel's SDK client: no secret in its repr; a patch that turns itself off (_sdk.py) says
so in the log, never in the cell (patch behaviour itself: tests/test_sdk.py)."""

from __future__ import annotations

from jupyter_interactions.client import build_client
from jupyter_interactions.launch import Connection


def test_connection_repr_hides_the_token():
    connection = Connection("http://127.0.0.1:1/", token="very-secret-token")  # type: ignore[arg-type]
    assert "very-secret-token" not in repr(connection)
    client = build_client(connection, "key.ipynb")
    try:
        assert "very-secret-token" not in repr(client)
    finally:
        client.close()


def test_a_patch_that_turns_itself_off_keeps_the_cell_clean(kernel):
    # As if the SDK had changed under the patch: its fingerprint no longer matches.
    kernel.run("from jupyter_interactions import _sdk\n_sdk.FINGERPRINTS['event-dicts'] = 'x'")
    cell = kernel.run("%%interaction --model echo --out reply\nhello from a cell")
    assert not [o for o in cell.outputs if o["output_type"] == "stream"], cell.outputs
    seen = kernel.run("print(reply.text, '|', _sdk.patch_state()['event-dicts'])").text()
    assert seen.startswith("hello from a cell | off: the SDK code it relies on changed"), seen
