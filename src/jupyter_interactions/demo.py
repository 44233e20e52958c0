"""`python -m jupyter_interactions.demo`: a two-minute tour through the real SDK, offline.

Starts a gateway on a free loopback port, then, through google-genai: streams an answer from
the local model, continues the conversation with `previous_interaction_id`, and starts a
background job that it attaches to. Always stops the gateway; exits 0 when all went well.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from google import genai
from google.genai import _interactions as sdk_errors


def start_gateway(work: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    # A private runtime dir: the demo's gateway must not replace a user's running one.
    env["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    command = [
        sys.executable,
        "-m",
        "jupyter_interactions.gateway.cli",
        "serve",
        "--port",
        "0",
        f"--token={token}",  # a generated token may start with "-"
        "--data-dir",
        str(work / "data"),
        "--log-level",
        "WARNING",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Serving on "):
        proc.kill()
        raise SystemExit("the gateway did not start; run `jupyter-interactions serve` to see why")
    return proc, line.removeprefix("Serving on ").strip()


def stop_gateway(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def stream_answer(client: Any, **request: Any) -> tuple[str, str]:
    """Stream one turn, printing text as it arrives; returns (interaction id, status)."""
    interaction_id, status = "", ""
    for event in client.interactions.create(stream=True, **request):
        if event.event_type == "interaction.created":
            interaction_id = event.interaction.id
        elif event.event_type == "step.delta" and event.delta.type == "text":
            print(event.delta.text, end="", flush=True)
        elif event.event_type == "error":
            print(f"\n  [error] {event.error.message}", flush=True)
        elif event.event_type == "interaction.completed":
            status = event.interaction.status
    print()
    return interaction_id, status


def pick_model(client: Any) -> str:
    try:
        client.interactions.create(
            model="local", input="hi", store=False, generation_config={"max_output_tokens": 1}
        )
        return "local"
    except sdk_errors.BadRequestError as exc:
        print(f"  (the local model is not available here: {exc.body['error']['message']})")
        print("  (falling back to the `echo` model, which repeats your input)\n")
        return "echo"


def tour(client: Any) -> bool:
    print("1. Choosing a model")
    model = pick_model(client)
    limits = {"max_output_tokens": 60, "temperature": 0.2}

    question = "What is the capital of France? Answer in one sentence."
    print(f"\n2. Streaming an answer from model={model!r}\n  you: {question}\n  model: ", end="")
    first_id, status = stream_answer(client, model=model, input=question, generation_config=limits)
    print(f"  -> {first_id} ({status})")

    follow_up = "And what is the capital of Italy?"
    print(f"\n3. Continuing the conversation (previous_interaction_id={first_id})")
    print(f"  you: {follow_up}\n  model: ", end="")
    second_id, second_status = stream_answer(
        client,
        model=model,
        input=follow_up,
        previous_interaction_id=first_id,
        generation_config=limits,
    )
    print(f"  -> {second_id} ({second_status})")

    print("\n4. A background job (echo), then attaching to its event stream")
    job = client.interactions.create(
        model="echo", input="a background job streams these words back", background=True
    )
    print(f"  started {job.id}: status {job.status}")
    started = time.perf_counter()
    events = list(client.interactions.get(job.id, stream=True))
    text = "".join(e.delta.text for e in events if e.event_type == "step.delta")
    final = client.interactions.get(job.id)
    print(f"  attached: {len(events)} events in {(time.perf_counter() - started) * 1000:.0f} ms")
    print(f"  output: {text!r}\n  final status: {final.status}")

    ok = {status, second_status, final.status} <= {"completed", "incomplete"}
    print("\nDone." if ok else "\nSomething did not complete; see above.")
    return ok


def main() -> int:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="jupyter-interactions-demo-") as tmp:
        work = Path(tmp)
        print("Starting a gateway on loopback...")
        proc, url = start_gateway(work, token)
        print(f"  gateway at {url} (data in a temporary directory)\n")
        client = genai.Client(
            api_key=token, http_options={"base_url": url, "retry_options": {"attempts": 1}}
        )
        try:
            ok = tour(client)
        finally:
            client.close()
            stop_gateway(proc)
    print(
        textwrap.dedent(
            """
        Next: `jupyter-interactions serve` runs a gateway you keep; point any google-genai
        client at it with genai.Client(api_key=TOKEN, http_options={"base_url": URL}).
        """
        ).rstrip()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
