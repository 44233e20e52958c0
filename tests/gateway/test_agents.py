"""The local agent through the real SDK against a real gateway subprocess: code runs in the
environment's live sandbox (a real kernel), steps stream, files come back byte for byte,
variables survive to the next turn, budgets and cancel stop it, custom agents build on it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import re
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.conftest import Api, GatewayProcess, start_gateway

SCRIPTED = {"type": "dynamic", "model": "scripted"}


def fence(code: str, language: str = "python") -> str:
    return f"```{language}\n{code}\n```"


def kinds(interaction: Any) -> list[str]:
    """Step types, without the sandbox notes (thoughts) that depend on the machine."""
    return [step.type for step in interaction.steps or [] if step.type != "thought"]


def results(interaction: Any) -> list[Any]:
    return [s for s in interaction.steps or [] if s.type == "code_execution_result"]


def thoughts(interaction: Any) -> str:
    """The sandbox's notes: the text of the interaction's thought steps."""
    return " ".join(
        block.text
        for step in interaction.steps
        if step.type == "thought"
        for block in step.summary or []
    )


def text_of(result: Any) -> str:
    if isinstance(result, str):
        return result
    return "".join(getattr(block, "text", "") or "" for block in result)


@pytest.fixture(scope="module")
def agent_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway for this module: its sandboxes stop with it."""
    process = start_gateway(tmp_path_factory.mktemp("agents"))
    yield process
    process.stop()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, agent_gateway: GatewayProcess) -> AsyncIterator[Api]:
    sdk = agent_gateway.client()
    yield Api(sdk, request.param)
    await sdk.aio.aclose()
    sdk.close()


@pytest.fixture
async def aio(agent_gateway: GatewayProcess) -> AsyncIterator[Any]:
    async with agent_gateway.aio() as aio:
        yield aio


PLOT_CODE = """\
import csv, hashlib
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [(i, i * i) for i in range(10)]
with open("out.csv", "w", newline="") as handle:
    csv.writer(handle).writerows(rows)
plt.plot([a for a, _ in rows], [b for _, b in rows])
plt.savefig("plot.png")
for name in ("out.csv", "plot.png"):
    print(name, hashlib.sha256(open(name, "rb").read()).hexdigest())"""

SHOW_CODE = """\
from IPython.display import Image, display
display(Image(filename="plot.png"))
total = sum(b for _, b in rows)
print("total", total)"""


async def test_agent_writes_files_and_the_next_turn_sees_them(api: Api) -> None:
    it = await api.call(
        "interactions.create",
        agent="local-agent",
        agent_config=SCRIPTED,
        input=f"Make data and a plot.\n{fence(PLOT_CODE)}\nThen show it.\n{fence(SHOW_CODE)}",
    )
    assert it.status == "completed", it
    assert kinds(it) == [
        "code_execution_call",
        "code_execution_result",
        "code_execution_call",
        "code_execution_result",
        "model_output",
    ]
    calls = [s for s in it.steps if s.type == "code_execution_call"]
    assert calls[0].arguments.code == PLOT_CODE and calls[0].arguments.language == "python"
    first, second = results(it)
    assert first.call_id == calls[0].id and second.call_id == calls[1].id
    assert not first.is_error and not second.is_error
    printed = dict(re.findall(r"^(\S+) ([0-9a-f]{64})$", text_of(first.result), re.M))
    assert set(printed) == {"out.csv", "plot.png"}
    assert "total 285" in text_of(second.result)
    assert "total 285" in it.output_text  # the answer quotes the last output

    # Every agent run has an environment, even when the request named none.
    env = it.environment_id
    assert env and env.startswith("env_")
    listing = await api.call("environments.files.list", env, "workspace")
    assert {"out.csv", "plot.png"} <= {f.name for f in listing.files}
    downloads = {}
    for name in ("out.csv", "plot.png"):
        data = await api.call(
            "environments.files.download", environment=env, path=f"workspace/{name}"
        )
        assert hashlib.sha256(data).hexdigest() == printed[name]
        downloads[name] = data
    assert downloads["plot.png"].startswith(b"\x89PNG")

    # The displayed image is content of the result step, the same bytes as the file.
    images = [b for b in second.result if getattr(b, "type", "") == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert base64.b64decode(images[0].data) == downloads["plot.png"]

    # Next turn, same environment: the kernel kept `rows` and `total`; the files are there.
    again = await api.call(
        "interactions.create",
        agent="local-agent",
        agent_config=SCRIPTED,
        previous_interaction_id=it.id,
        environment=env,
        input=fence("print(total, len(rows), len(open('out.csv').read().splitlines()))"),
    )
    assert again.status == "completed", again
    assert again.environment_id == env
    assert text_of(results(again)[0].result).strip() == "285 10 10"

    # Continuing the conversation without naming the environment stays in it, too.
    third = await api.call(
        "interactions.create",
        agent="local-agent",
        agent_config=SCRIPTED,
        previous_interaction_id=again.id,
        input=fence("print(total * 2)"),
    )
    assert third.environment_id == env
    assert text_of(results(third)[0].result) == "570\n"


async def test_output_streams_while_the_code_runs(aio: Any) -> None:
    # The code goes on only once "first" has reached this client: streamed, not buffered.
    code = (
        "import os, time\nprint('first', flush=True)\n"
        "while not os.path.exists('go'):\n    time.sleep(0.02)\nprint('second')"
    )
    stream = await aio.interactions.create(
        agent="local-agent", agent_config=SCRIPTED, input=fence(code), stream=True
    )
    seen: list[Any] = []
    async for event in stream:
        seen.append(event)
        delta = getattr(event, "delta", None)
        if "first" in (getattr(delta, "result", None) or ""):
            env = seen[0].interaction.environment_id
            await aio.environments.files.upload(environment=env, path="workspace/go", file=b"")
    types = [e.event_type for e in seen]
    assert types[0] == "interaction.created" and types[-1] == "interaction.completed"
    assert seen[0].interaction.environment_id.startswith("env_")
    assert seen[-1].interaction.status == "completed"
    result_index = next(
        e.index
        for e in seen
        if e.event_type == "step.start" and e.step.type == "code_execution_result"
    )
    deltas = [e.delta for e in seen if e.event_type == "step.delta" and e.index == result_index]
    assert "".join(d.result for d in deltas if d.result) == "first\nsecond\n"
    assert deltas[-1].is_error is False


async def test_error_in_code_is_a_result_and_the_agent_goes_on(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        input=fence("1/0") + "\n" + fence("echo after", "bash"),
    )
    assert it.status == "completed"
    failed, after = results(it)
    assert failed.is_error is True and "ZeroDivisionError" in text_of(failed.result)
    assert after.is_error is False and text_of(after.result) == "after\n"
    assert "Failed: block 1" in it.output_text


async def test_step_budget_stops_incomplete(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config={**SCRIPTED, "max_steps": "1"},  # int64s arrive as strings
        input=fence("print('one')") + "\n" + fence("print('two')"),
    )
    assert it.status == "incomplete"
    assert kinds(it) == ["code_execution_call", "code_execution_result", "model_output"]
    assert text_of(results(it)[0].result) == "one\n"
    assert "max_steps" in it.output_text and "1" in it.output_text


async def test_token_budget_stops_budget_exceeded(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config={**SCRIPTED, "max_total_tokens": "3"},
        input="Please run this for me now.\n" + fence("print('never')"),
    )
    assert it.status == "budget_exceeded"
    assert "code_execution_call" not in kinds(it)
    assert "max_total_tokens" in it.output_text
    assert it.usage.total_tokens > 3


async def test_wall_time_budget_interrupts_the_code_and_stops_incomplete(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config={**SCRIPTED, "max_wall_seconds": 1},
        input=fence("import time\nprint('start', flush=True)\ntime.sleep(300)"),
    )
    assert it.status == "incomplete"
    result = results(it)[0]
    assert result.is_error is True and text_of(result.result).startswith("start\n")
    assert "time limit" in text_of(result.result)  # stopped, not run to its end
    assert "max_wall_seconds" in it.output_text


async def test_a_kernel_that_dies_is_restarted_and_the_run_says_so(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        input=fence("x = 1\nimport os\nos._exit(3)") + "\n" + fence("print('x' in globals())"),
    )
    assert it.status == "completed"
    died, after = results(it)
    assert died.is_error is True and "variables are lost" in text_of(died.result)
    assert text_of(after.result) == "False\n"  # a fresh kernel ran the next block


async def test_cancel_interrupts_running_code_and_the_sandbox_stays_usable(aio: Any) -> None:
    job = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        input=fence("y = 7\nprint('set')") + "\n" + fence("while True:\n    pass"),
        background=True,
    )
    env = job.environment_id
    assert env.startswith("env_")
    stream = await aio.interactions.get(job.id, stream=True)
    results_started = 0
    async for event in stream:
        if event.event_type == "step.start" and event.step.type == "code_execution_result":
            results_started += 1
            if results_started == 2:
                break  # the endless loop is running now
    await stream.close()
    cancelled = await aio.interactions.cancel(job.id)
    assert cancelled.status == "cancelled"
    final = await aio.interactions.get(job.id)
    assert final.status == "cancelled"
    assert "interrupted" in text_of(results(final)[-1].result)

    # The same environment still runs code, and kept the variable set before the loop.
    after = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        environment=env,
        input=fence("print(y * 6)"),
    )
    assert after.status == "completed"
    assert text_of(results(after)[0].result) == "42\n"


async def test_custom_agent_reads_its_base_environment(aio: Any) -> None:
    await aio.agents.create(
        id="reader",
        base_agent="local-agent",
        system_instruction="Read the data file.",
        # The SDK types an Agent's config as antigravity-shaped; its `model` is honoured.
        agent_config={"type": "antigravity", "model": "scripted"},
        base_environment={
            "type": "remote",
            "sources": [
                {"type": "inline", "content": "hello from a source", "target": "workspace/data.txt"}
            ],
        },
    )
    it = await aio.interactions.create(
        agent="reader",  # its own agent_config picks the scripted model
        input=fence("print(open('data.txt').read().upper())"),
    )
    assert it.status == "completed", it
    assert it.agent == "reader"
    assert text_of(results(it)[0].result) == "HELLO FROM A SOURCE\n"
    # Each run of the custom agent gets its own copy of the base environment.
    other = await aio.interactions.create(
        agent="reader", input=fence("import os; print(os.listdir())")
    )
    assert other.environment_id != it.environment_id
    assert "data.txt" in text_of(results(other)[0].result)


async def test_function_tools_pause_the_agent(aio: Any) -> None:
    """A client function tool the model calls pauses the run at requires_action."""
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config={"type": "dynamic", "model": "echo"},
        tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        input='call lookup {"key": "a"}',
    )
    assert it.status == "requires_action"
    call = next(s for s in it.steps if s.type == "function_call")
    assert call.name == "lookup" and call.arguments == {"key": "a"}
    done = await aio.interactions.create(
        agent="local-agent",
        agent_config={"type": "dynamic", "model": "echo"},
        previous_interaction_id=it.id,
        environment=it.environment_id,
        input=[{"type": "function_result", "call_id": call.id, "name": "lookup", "result": "A"}],
    )
    assert done.status == "completed"
    assert done.output_text == "lookup returned: A"


async def test_unknown_model_fails_with_a_clear_error(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent", agent_config={"type": "dynamic", "model": "nope"}, input="hi"
    )
    assert it.status == "failed"
    assert "unknown model 'nope'" in it.errors[0].message


async def test_isolation_warnings_are_shown_once_per_environment(gateway_factory: Any) -> None:
    gateway = gateway_factory(settings={"sandbox_options": {"tier": "limits"}})

    async with gateway.aio() as aio:
        first = await aio.interactions.create(
            agent="local-agent", agent_config=SCRIPTED, input=fence("print(1)")
        )
        assert first.status == "completed"
        assert first.steps[0].type == "thought"  # before any code runs
        assert "NOT isolated" in thoughts(first)
        second = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment=first.environment_id,
            input=fence("print(2)"),
        )
        assert second.status == "completed" and "NOT isolated" not in thoughts(second)


async def test_idle_sandbox_stops_and_the_next_turn_says_variables_are_lost(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory(settings={"sandbox_idle_seconds": 0.5})
    async with gateway.aio() as aio:
        first = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            input=fence("z = 5\nopen('keep.txt', 'w').write('kept')"),
        )
        assert first.status == "completed"
        stopped = f"stopping the idle sandbox of {first.environment_id}"
        while stopped not in gateway.stderr_path.read_text():  # the idle timer fired
            await asyncio.sleep(0.05)
        second = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment=first.environment_id,
            input=fence("print(open('keep.txt').read(), 'z' in globals())"),
        )
        assert second.status == "completed"
        assert text_of(results(second)[0].result) == "kept False\n"
        assert "variables from earlier turns are lost" in thoughts(second)


@pytest.mark.slow
async def test_local_model_takes_a_short_agent_turn(aio: Any) -> None:
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config={
            "type": "dynamic",
            "model": "local",
            "max_steps": 1,
            "max_output_tokens": 160,  # per model turn
            "temperature": 0,
            "seed": 7,
        },
        input="Use Python to print the sum of 2 and 3.",
    )
    assert it.status in ("completed", "incomplete"), it
    allowed = {"model_output", "thought", "code_execution_call", "code_execution_result"}
    assert it.steps and {s.type for s in it.steps} <= allowed
    assert it.steps[-1].type in ("model_output", "code_execution_result")
    assert it.environment_id.startswith("env_")


async def test_output_from_another_thread_reaches_the_stream_in_order() -> None:
    """Sandboxes may call on_output from a worker thread: the deltas still land on the loop,
    in order, and nothing arrives after the step has ended."""
    from jupyter_interactions.gateway.runs.emitter import Emitter
    from jupyter_interactions.gateway.runs.local_agent import _OutputSink

    published: list[dict[str, Any]] = []
    threads: set[int] = set()

    def publish(event: dict[str, Any]) -> None:
        threads.add(threading.get_ident())  # the emitter is not thread-safe: loop only
        published.append(event)

    emitter = Emitter(publish)
    index = emitter.start({"type": "code_execution_result", "call_id": "c", "result": ""})
    sink = _OutputSink(emitter, index)

    def produce() -> None:
        for n in range(50):
            sink.on_output("stdout", f"{n}\n")

    await asyncio.to_thread(produce)
    await asyncio.sleep(0)
    sink.closed = True
    sink.on_output("stdout", "late\n")
    await asyncio.sleep(0)
    expected = "".join(f"{n}\n" for n in range(50))
    assert emitter.steps[index]["result"] == expected == "".join(sink.streamed)
    assert [e["event_type"] for e in published].count("step.delta") == 50
    assert threads == {threading.get_ident()}


async def test_the_agent_can_read_and_change_files_uploaded_to_its_environment(aio: Any) -> None:
    first = await aio.interactions.create(
        agent="local-agent", agent_config=SCRIPTED, input=fence("print('ready')")
    )
    env = first.environment_id
    await aio.environments.files.upload(environment=env, path="workspace/in/data.txt", file=b"up")
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        previous_interaction_id=first.id,
        input=fence(
            "print(open('in/data.txt').read())\n"
            "with open('in/data.txt', 'a') as f: f.write('+edited')\n"
            "with open('in/new.txt', 'w') as f: f.write('made beside it')"
        ),
    )
    assert it.environment_id == env
    result = results(it)[0]
    assert not result.is_error and text_of(result.result) == "up\n", text_of(result.result)
    data = await aio.environments.files.download(environment=env, path="workspace/in/data.txt")
    assert data == b"up+edited"


async def test_uploads_land_on_the_environments_disk_for_its_sandbox_to_change(
    aio: Any, agent_gateway: GatewayProcess
) -> None:
    """After a sandbox started (its quota disk mounted, where this machine gives one: another
    filesystem than the gateway's partial uploads), a file and an archive's files land there,
    owned by the sandbox's uid; an existing target without overwrite is a 400 that says so."""
    first = await aio.interactions.create(
        agent="local-agent", agent_config=SCRIPTED, input=fence("print('ready')")
    )
    env = first.environment_id
    root = agent_gateway.data_dir / "environments" / env
    owner = os.stat(root).st_uid
    await aio.environments.files.upload(environment=env, path="workspace/one.txt", file=b"1")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("inner/two.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"2"))
    await aio.environments.files.upload(
        environment=env, path="workspace/unpacked", file=archive.getvalue(), extract=True
    )
    for placed in ("workspace/one.txt", "workspace/unpacked/inner/two.txt"):
        assert os.lstat(root / placed).st_uid == owner, placed
    with pytest.raises(Exception) as refused:
        await aio.environments.files.upload(environment=env, path="workspace/one.txt", file=b"x")
    assert getattr(refused.value, "status_code", getattr(refused.value, "code", None)) == 400
    assert "overwrite=True" in str(refused.value)
    it = await aio.interactions.create(
        agent="local-agent",
        agent_config=SCRIPTED,
        previous_interaction_id=first.id,
        input=fence(
            "for name in ('one.txt', 'unpacked/inner/two.txt'):\n"
            "    with open(name, 'a') as f: f.write('+')\n"
            "print(open('one.txt').read(), open('unpacked/inner/two.txt').read())"
        ),
    )
    result = results(it)[0]
    assert not result.is_error and text_of(result.result) == "1+ 2+\n", text_of(result.result)
