"""One rule for a thread's head (protocol.moves_head), kept by the gateway and followed by the
kernel: a turn stopped by a limit stays the head after any refresh, and the next turn
continues from it, whether it ran in the foreground or as a background job."""

from __future__ import annotations

from jupyter_interactions.session import Session

ONE_STEP = {"type": "dynamic", "model": "scripted", "max_steps": 1}
SCRIPTED = {"type": "dynamic", "model": "scripted"}
TWO_STEPS = "```python\nprint('one')\n```\n```python\nprint('two')\n```"


def _session(gateway, key: str) -> Session:
    return Session(key, url=gateway.url, token=gateway.token)


def test_a_stopped_turn_stays_the_head_after_a_refresh_and_the_next_turn_follows_it(gateway):
    key = "thread-head-rule.ipynb"
    first = _session(gateway, key)
    try:
        stopped = first.ask(TWO_STEPS, agent="local-agent", agent_config=ONE_STEP, thread="fg")
        job = first.start(TWO_STEPS, agent="local-agent", agent_config=ONE_STEP, thread="bg")
        background = job.result(timeout=120)
        assert (stopped.status, background.status) == ("incomplete", "incomplete")
        # The kernel's own view moved to the stopped turns...
        assert first.thread("fg").head == stopped.id and first.thread("bg").head == job.id
        # ...and a refresh from the server keeps them there.
        assert {t.name: t.head for t in first.threads()} == {"fg": stopped.id, "bg": job.id}
    finally:
        first.close()

    again = _session(gateway, key)  # a new Session: a kernel restart of the same notebook
    try:
        assert again.thread("fg").head == stopped.id and again.thread("bg").head == job.id
        for thread, head in (("fg", stopped.id), ("bg", job.id)):
            reply = again.ask(
                "```python\nprint('go on')\n```",
                agent="local-agent",
                agent_config=SCRIPTED,
                thread=thread,
            )
            assert reply.status == "completed"
            assert again.client.interactions.get(reply.id).previous_interaction_id == head
            assert again.thread(thread).head == reply.id
    finally:
        again.close()
