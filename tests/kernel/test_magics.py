"""%%interaction in a real IPython shell against a real gateway, through the real SDK."""

from __future__ import annotations

import json
import re
import time

import pytest
from google import genai
from IPython.core.error import UsageError

from jupyter_interactions.errors import InteractionFailed
from jupyter_interactions.render.bundle import METADATA_KEY
from jupyter_interactions.render.job import run_seconds
from jupyter_interactions.reply import Reply
from jupyter_interactions.session import Session


def sdk(gateway) -> genai.Client:
    return genai.Client(api_key=gateway.token, http_options={"base_url": gateway.url})


def previous(gateway, interaction_id: str) -> str | None:
    client = sdk(gateway)
    try:
        return client.interactions.get(interaction_id).previous_interaction_id
    finally:
        client.close()


def test_cell_streams_then_ends_with_one_final_display(gw):
    words = " ".join(f"w{i}" for i in range(8))  # `slow`: 50 ms a word, so the view shows
    result = gw.run(f"%%interaction --model slow\n{words}")
    assert result.error_in_exec is None and result.result is None
    outputs = gw.outputs
    live_id = outputs[0]["transient"]["display_id"]
    assert outputs[0]["data"] == {}  # the live view starts blank (nothing for nbval)...
    updates = [o for o in outputs if o["update"]]
    assert updates and all(o["transient"]["display_id"] == live_id for o in updates)
    # ...and is cleared by the final display: the cell keeps that one output only.
    assert gw.pub.outputs[-2:] == [{"clear": True}, outputs[-1]]
    (final,) = gw.finals()
    assert gw.kept() == [final]
    assert final["data"]["text/plain"] == words + " "


def test_the_final_display_carries_provenance(gw):
    result = gw.run("%%interaction --model echo --out r\nhello from a notebook cell")
    assert result.error_in_exec is None and result.result is None
    (final,) = gw.kept()  # a fast answer may need no live view at all
    assert final["data"]["text/plain"] == "hello from a notebook cell"
    assert final["data"]["text/markdown"] == "hello from a notebook cell"
    record = final["metadata"][METADATA_KEY]
    reply = gw.ns["r"]
    assert isinstance(reply, Reply)
    assert record == {
        "interaction_ids": [reply.id],
        "model": "echo",
        "thread": "default",
        "usage": reply.usage,
        "status": "completed",
    }
    assert repr(reply) == (
        "Reply(thread='default', status='completed', text='hello from a notebook cell')"
    )


def test_no_stream_gives_only_the_final_display(gw):
    gw.run("%%interaction --model echo --no-stream\nquiet please")
    (final,) = gw.outputs
    assert final["data"]["text/plain"] == "quiet please" and not final["update"]


def test_chaining_threads_new_and_fork(gw, gateway):
    gw.run("%%interaction --model echo --out a1\nfirst")
    gw.run("%%interaction --model echo --out a2\nsecond")
    gw.run("%%interaction --model echo --thread side --out b1\nparallel")
    gw.run("%%interaction --model echo --out a3\nthird")
    gw.run("%%interaction --model echo --thread fork --from a1 --out f1\nforked")
    gw.run("%%interaction --model echo --new --thread fresh --out n1\nfresh start")
    ns = gw.ns
    assert previous(gateway, ns["a1"].id) is None
    assert previous(gateway, ns["a2"].id) == ns["a1"].id
    assert previous(gateway, ns["a3"].id) == ns["a2"].id  # the side thread did not interfere
    assert previous(gateway, ns["b1"].id) is None
    assert previous(gateway, ns["f1"].id) == ns["a1"].id
    assert previous(gateway, ns["n1"].id) is None

    table = gw.run("%interactions threads").result
    heads = {row[0]: (row[1], row[3]) for row in table.rows}
    assert heads == {
        "default": (ns["a3"].id, 3),
        "side": (ns["b1"].id, 1),
        "fork": (ns["f1"].id, 2),  # turns count the chain: a1, then f1
        "fresh": (ns["n1"].id, 1),
    }
    gw.run("%interactions reset side")
    assert {row[0] for row in gw.run("%interactions threads").result.rows} == {
        "default",
        "fork",
        "fresh",
    }
    gw.run("%interactions reset")
    assert gw.run("%interactions threads").result.rows == []


def test_a_new_kernel_of_the_same_notebook_continues_the_thread(gw, gateway):
    gw.run("%%interaction --model echo --out before\nremember this")
    # A fresh extension (as after a kernel restart): state comes from the gateway only.
    gw.run("%unload_ext jupyter_interactions")
    gw.run("%load_ext jupyter_interactions")
    assert gw.run("%interactions threads").result.rows[0][:2] == ["default", gw.ns["before"].id]
    gw.run("%%interaction --model echo --out after\nand continue")
    assert previous(gateway, gw.ns["after"].id) == gw.ns["before"].id


def test_failed_turn_does_not_become_the_head(gw):
    gw.run("%%interaction --model echo --out ok\nfine")
    result = gw.run("%%interaction --model no-such-model\nthis fails")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(
        "unknown model 'no-such-model': use one of ['broken', 'echo', "
    )
    assert gw.run("%interactions threads").result.rows[0][1] == gw.ns["ok"].id


def test_gemini_model_without_a_key_says_what_to_do(gw):
    result = gw.run("%%interaction --model gemini-flash-latest\nhello")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == (
        "model 'gemini-flash-latest' runs on Google's service: "
        "set GEMINI_API_KEY for the gateway, or use model='local' offline"
    )


def test_configured_default_model(gw):
    gw.run("%config InteractionMagics.model = 'echo'")
    gw.run("%%interaction --out r\nconfigured")
    assert gw.ns["r"].model == "echo" and gw.ns["r"].text == "configured"


def test_function_tools_run_in_the_kernel(gw):
    gw.run("def add(a: int, b: int):\n    'Add two numbers.'\n    return a + b\n")
    gw.run('%%interaction --model echo --tools add --out r\ncall add {"a": 2, "b": 3}')
    reply = gw.ns["r"]
    assert reply.text == "add returned: 5"
    assert len(reply.interaction_ids) == 2  # the call, then the answer to its result
    (final,) = gw.finals()
    assert final["data"]["text/plain"].splitlines() == [
        '[add] {"a": 2, "b": 3}',
        "[add result] 5",
        "add returned: 5",
    ]


def test_background_job_while_other_cells_run(gw):
    words = " ".join(f"w{i}" for i in range(100))  # `slow`: one word per 50 ms, 5 s at least
    result = gw.run(f"%%interaction --model slow --background --out job\n{words}")
    assert result.error_in_exec is None
    assert gw.run("1 + 1").result == 2  # the kernel is free meanwhile...
    job = gw.ns["job"]
    assert job.status in ("queued", "in_progress")  # ...while the job still streams
    reply = job.result(timeout=120)
    assert reply.text.split() == words.split() and job.status == "completed"
    assert job.steps >= 1
    # The server's times (whole seconds), not how long this kernel followed the job.
    assert job.transcript.created and job.transcript.updated
    assert job.elapsed == run_seconds(job.transcript) and job.elapsed >= 4  # 100 words, 50 ms
    rows = gw.run("%interactions jobs").result.rows
    assert [row[:3] for row in rows] == [[job.id, "completed", "default"]]
    # The finished job became the thread head, so the next cell continues it.
    assert gw.run("%interactions threads").result.rows[0][1] == job.id


async def test_await_a_job(gateway, isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    session = Session("await-test.ipynb", model="echo")
    try:
        job = session.start("awaited", thread="t")
        reply = await job
        assert reply.text == "awaited"
        # Re-attaching by id (as after a restart): the gateway's list says it ended.
        other = Session("await-test.ipynb")
        again = other.job(job.id)
        assert again is not job and again.result(timeout=30).text == "awaited"
        other.close()
    finally:
        session.close()


def test_python_api_matches_the_magic(gateway, isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    session = Session("api-test.ipynb")
    try:
        first = session.ask("one", model="echo", thread="api")
        second = session.thread("api").ask("two", model="echo")
        assert (first.text, second.text) == ("one", "two")
        assert previous(gateway, second.id) == first.id
        session.fork("api", first.id)
        assert session.thread("api").head == first.id
        third = session.ask("three", model="echo", thread="api")
        assert previous(gateway, third.id) == first.id
    finally:
        session.close()


def test_live_updates_are_throttled(gw):
    words = " ".join(f"w{i}" for i in range(30))  # `slow` sends one word every 50 ms
    started = time.monotonic()
    gw.run(f"%%interaction --model slow --out r\n{words}")
    seconds = time.monotonic() - started
    updates = [o for o in gw.outputs if o["update"]]
    assert seconds > 1.4
    assert 3 <= len(updates) <= seconds * 10 + 2  # ~10 per second at most, plus the clear
    assert gw.ns["r"].text.split() == words.split()


def test_model_failing_mid_stream(gw):
    gw.run("%%interaction --model echo --out ok\nfine")
    result = gw.run("%%interaction --model broken\nhello")
    assert isinstance(result.error_in_exec, UsageError)
    assert re.fullmatch(
        r"the model failed: RuntimeError: the model crashed on purpose \(interaction int_\w+\); "
        r"the thread is unchanged, re-run the cell to retry",
        str(result.error_in_exec),
    )
    assert gw.run("%interactions threads").result.rows[0][1] == gw.ns["ok"].id


def test_cancel_a_background_job(gw):
    words = " ".join(["word"] * 200)  # 10 s of streaming unless cancelled
    gw.run(f"%%interaction --model slow --background --out job\n{words}")
    job = gw.ns["job"]
    gw.run("job.cancel()")
    with pytest.raises(InteractionFailed) as failed:
        job.result(timeout=30)
    assert job.status == "cancelled"
    assert failed.value.message == f"cancelled (interaction {job.id}); the thread is unchanged"
    assert gw.run("%interactions threads").result.rows == []
    rows = gw.run("%interactions jobs").result.rows
    assert [row[:2] for row in rows] == [[job.id, "cancelled"]]


def test_direct_mode_keeps_heads_locally(ipython, gateway, isolated, monkeypatch):
    # --direct talks to "Google's service": here the gateway stands in for it (same
    # protocol), with its token as the key. Heads then live in a local JSON file.
    monkeypatch.setenv("GEMINI_API_KEY", gateway.token)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_DIRECT_URL", gateway.url)
    monkeypatch.setenv("JPY_SESSION_NAME", "direct.ipynb")
    ipython.run("%%interaction --direct --model echo --out d1\none")
    ipython.run("%%interaction --direct --model echo --out d2\ntwo")
    assert previous(gateway, ipython.ns["d2"].id) == ipython.ns["d1"].id
    rows = ipython.run("%interactions threads --direct").result.rows
    assert [row[:4] for row in rows] == [["default", ipython.ns["d2"].id, "echo", 2]]
    heads = json.loads((isolated / "data" / "direct-threads.json").read_text())
    assert heads["direct.ipynb"]["default"]["head"] == ipython.ns["d2"].id
    assert gateway.token not in json.dumps(heads)


def test_job_resumes_after_a_dropped_stream(proxy, gateway, isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", proxy.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    session = Session("dropped.ipynb")
    # 300 words take `slow` at least 15 s, so the stream still runs when the client, however
    # far behind on a loaded machine, has seen 6 events and the proxy cuts it: it must resume.
    words = " ".join(f"w{i}" for i in range(300))
    try:
        job = session.start(words, model="slow").attach()  # following its own stream
        deadline = time.monotonic() + 120  # a bound on hangs only
        while job.transcript.events < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        connections = proxy.accepted
        proxy.cut()
        reply = job.result(timeout=600)  # a bound on hangs only
        assert reply.text.split() == words.split()  # nothing lost, nothing repeated
        assert proxy.accepted > connections  # it reconnected...
        client = sdk(gateway)
        with client.interactions.get(job.id, stream=True) as replay:
            everything = sum(1 for _ in replay)
        client.close()
        assert job.transcript.events == everything  # ...after the last event it had seen
    finally:
        session.close()


def test_agent_steps_are_shown_apart_from_the_answer(gw):
    config = json.dumps({"type": "antigravity", "model": "scripted"})
    gw.run(
        f"%%interaction --agent local-agent --agent-config '{config}' --out r\n"
        "Run this:\n```python\nprint(6 * 7)\n```"
    )
    reply = gw.ns["r"]
    (final,) = gw.finals()
    assert final["data"]["text/plain"].splitlines()[:2] == ["[Code] print(6 * 7)", "[Output] 42"]
    markdown = final["data"]["text/markdown"]
    assert markdown.startswith(
        "**Code**\n\n```python\nprint(6 * 7)\n```\n\n**Output**\n\n```\n42\n```"
    )
    assert final["metadata"][METADATA_KEY]["agent"] == "local-agent"
    assert "model" not in final["metadata"][METADATA_KEY]
    assert reply.agent == "local-agent" and "42" in reply.text


def test_bad_agent_config(gw):
    result = gw.run("%%interaction --agent local-agent --agent-config '{oops'\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith("--agent-config must be a JSON object: ")


def test_wrong_token(ipython, gateway, monkeypatch, capsys):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", "not-the-token")
    result = ipython.run("%%interaction --model echo\nhello")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == (
        f"the gateway at {gateway.url} rejected our token (401); unset "
        "JUPYTER_INTERACTIONS_TOKEN or restart the kernel to find the running gateway again"
    )
    assert "not-the-token" not in capsys.readouterr().err


SCRIPTED = """'{"type": "dynamic", "model": "scripted"}'"""
TINY_PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
AGENT = f"""%%interaction --agent local-agent --agent-config {SCRIPTED} --out r
```python
from IPython.display import display
display({{"image/png": "{TINY_PNG}"}}, raw=True)
```
```python
kept = 6 * 7
open("note.txt", "w").write("from the first turn")
print(kept)
```
"""


def test_an_agent_thread_keeps_its_environment_across_cells(gw, gateway):
    gw.run(AGENT)
    first = gw.ns["r"]
    assert first.status == "completed" and "42" in first.text
    assert first.environment_id
    (final,) = gw.finals()
    record = final["metadata"][METADATA_KEY]
    assert record["agent"] == "local-agent"
    assert record["environment_id"] == first.environment_id
    # The plot-like output shows as an image in the final Markdown (from the completed steps).
    assert "![image/png output](data:image/png;base64,iVBORw0KGgo" in final["data"]["text/markdown"]
    gw.run(AGENT.replace("kept = 6 * 7", "kept += 1").replace('"w"', '"a"'))
    second = gw.ns["r"]
    assert second.environment_id == first.environment_id
    assert "43" in second.text  # the kernel's variables carried over
    client = sdk(gateway)
    try:
        listing = client.environments.files.list(first.environment_id, "workspace")
        assert "note.txt" in {f.name for f in listing.files}
    finally:
        client.close()


def test_an_environment_from_a_variable_keeps_its_secret_out_of_the_cell(gw):
    secret = "tok-" + "x" * 20
    gw.ns["sandbox"] = {"type": "remote", "env": {"SERVICE_TOKEN": secret}}
    gw.run(
        f"%%interaction --agent local-agent --agent-config {SCRIPTED} --environment sandbox "
        "--new --out r\n```bash\necho ${#SERVICE_TOKEN} ${SERVICE_TOKEN:0:4}\n```"
    )
    first = gw.ns["r"]
    assert first.status == "completed" and "24 tok-" in first.text
    (final,) = gw.finals()
    assert secret not in json.dumps(final)
    # A Reply names its environment for a later cell, even in another thread.
    gw.run(
        f"%%interaction --agent local-agent --agent-config {SCRIPTED} --environment r "
        "--thread other --out again\n```bash\necho ${#SERVICE_TOKEN}\n```"
    )
    again = gw.ns["again"]
    assert again.environment_id == first.environment_id and "24" in again.text


def test_environment_errors(gw):
    gw.ns["number"] = 3
    for line, message in [
        ("--model echo --environment '{}'", "an environment is for agents: choose one"),
        ("--agent local-agent --environment number", "--environment number: expected a dict"),
        ("--agent local-agent --environment '{oops'", "--environment must be a JSON object: "),
    ]:
        result = gw.run(f"%%interaction {line}\nhi")
        assert isinstance(result.error_in_exec, UsageError), line
        assert str(result.error_in_exec).startswith(message), str(result.error_in_exec)


def test_a_turn_stopped_by_a_limit_is_shown_and_the_thread_goes_on(gw, gateway):
    budget = """'{"type": "dynamic", "model": "scripted", "max_steps": 1}'"""
    gw.run(
        f"%%interaction --agent local-agent --agent-config {budget} --thread limited --out r\n"
        "```python\nprint('one')\n```\n```python\nprint('two')\n```"
    )
    stopped = gw.ns["r"]
    assert stopped.status == "incomplete" and "max_steps" in stopped.text
    (final,) = gw.finals()
    assert final["data"]["text/plain"].splitlines()[-1] == (
        "[incomplete] stopped early: an output or step limit was reached; ask it to go on"
    )
    assert final["metadata"][METADATA_KEY]["status"] == "incomplete"
    gw.run(
        f"%%interaction --agent local-agent --agent-config {SCRIPTED} --thread limited --out r2\n"
        "```python\nprint('two')\n```"
    )
    assert previous(gateway, gw.ns["r2"].id) == stopped.id


def test_an_agent_plot_is_an_image_with_no_placeholder_text(gw):
    code = f'from IPython.display import display\ndisplay({{"image/png": "{TINY_PNG}"}}, raw=True)'
    gw.run(
        f"%%interaction --agent local-agent --agent-config {SCRIPTED} --thread plot --out r\n"
        f"```python\n{code}\n```"
    )
    (final,) = gw.finals()
    assert final["data"]["text/markdown"] == (
        f"**Code**\n\n```python\n{code}\n```\n\n**Output**\n\n"
        f"![image/png output](data:image/png;base64,{TINY_PNG})\n\nRan 1 code block."
    )
    assert final["data"]["text/plain"] == f"[Code] {code}\n[Output]\nRan 1 code block."


def test_a_reattached_job_shows_the_servers_times(gw, client):
    gw.run("%%interaction --model echo --background --out job\nlater")
    job_id = gw.ns["job"].id
    gw.ns["job"].result(timeout=30)
    gw.run("%unload_ext jupyter_interactions")  # as after a kernel restart
    gw.run("%load_ext jupyter_interactions")
    gw.run(f"%interactions job {job_id}")
    magics = gw.shell.magics_manager.registry["InteractionMagics"]
    magics.session()._jobs[job_id].result(timeout=30)  # the view ends on the final state
    (view,) = gw.kept()
    header = view["data"]["text/markdown"].splitlines()[0]
    created = client.interactions.get(job_id).created  # e.g. 2026-12-01T14:06:37Z
    started = created.replace("T", " ").removesuffix("Z")
    assert re.fullmatch(
        rf"\*\*Job\*\* `{job_id}` · echo · thread `default` · \*\*completed\*\* · 1 step · "
        rf"started {started} UTC · took \d+ s",
        header,
    )
    assert view["data"]["text/plain"] == "Job echo in thread 'default': completed\nlater"


def test_cancel_says_what_it_did(gw):
    gw.run(f"%%interaction --model slow --background --out job\n{' '.join(['word'] * 200)}")
    job_id = gw.ns["job"].id
    assert repr(gw.run(f"%interactions cancel {job_id}").result) == f"cancelled {job_id}"
    assert repr(gw.run(f"%interactions cancel {job_id}").result) == (
        f"{job_id} had already ended (cancelled): nothing to cancel"
    )
    result = gw.run("%interactions cancel int_nosuchthing")
    assert isinstance(result.error_in_exec, UsageError)
    assert "not found" in str(result.error_in_exec)
