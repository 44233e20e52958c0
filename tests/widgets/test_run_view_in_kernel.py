"""A run view in a real kernel (a widget front end said to be live, the kernel following):
the stream worker pushes the events while the main thread waits, and an interrupt leaves the
view holding the partial answer as the server cancelled it, with no second display."""

from __future__ import annotations

import re
from typing import Any

WORDS = " ".join(f"w{i}" for i in range(400))  # `slow`: one word per 50 ms unless stopped
LIVE_VIEWS = (
    "from jupyter_interactions.widgets.frontend import FRONT_END\n"
    "FRONT_END.forced = True\n"
    "FRONT_END.forced_follower = 'kernel'"
)
VIEW = "application/vnd.jupyter.widget-view+json"


def pushed_words(message: dict[str, Any]) -> int:
    """Words in the text deltas of one coalesced push to a view (0 for other messages)."""
    if message["msg_type"] != "comm_msg":
        return 0
    data = message["content"]["data"]
    if data.get("method") != "custom" or data["content"].get("type") != "events":
        return 0
    deltas = [e.get("delta") or {} for e in data["content"]["events"]]
    return sum(len(str(d.get("text", "")).split()) for d in deltas)


def states(cell: Any) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["state"]
        for m in cell.messages
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]


def test_an_interrupted_turn_leaves_its_run_view_with_what_came(kernel, client) -> None:
    kernel.run(LIVE_VIEWS)
    cell = kernel.execute(f"%%interaction --model slow --out r\n{WORDS}")
    # Events reach the view while the kernel's main thread is still waiting on the stream.
    cell.wait_for(lambda m: pushed_words(m) >= 1)
    cell.wait_for(lambda m: sum(pushed_words(x) for x in cell.messages) >= 3)
    kernel.interrupt()
    reply = cell.finish()

    assert (reply["status"], reply["ename"]) == ("error", "Interrupted")
    view, error = cell.outputs  # the view and one line: no second display of the answer
    (line,) = error["traceback"]
    interaction_id = re.fullmatch(r"interrupted: cancelled (int_\w+)", line)[1]
    assert VIEW in view["data"]
    partial = view["data"]["text/plain"].split()  # the saved output's fallback
    assert 3 <= len(partial) < 400 and partial == WORDS.split()[: len(partial)]
    # The view's lasting state is the interaction as the server cancelled it.
    (snapshot,) = next(s["snapshots"] for s in reversed(states(cell)) if "snapshots" in s)
    assert (snapshot["id"], snapshot["status"]) == (interaction_id, "cancelled")
    assert client.interactions.get(interaction_id).status == "cancelled"
