"""Kernel > Interrupt in a real kernel (SIGINT, as a frontend sends it), against the real gateway:
a streaming cell is cancelled on the server and keeps what came; a wait on a job stops, the job
does not; a failed cell keeps nothing but its error."""

from __future__ import annotations

import re

from jupyter_interactions.render.bundle import METADATA_KEY
from jupyter_interactions.session import Session

WORDS = " ".join(f"w{i}" for i in range(400))  # `slow`: one word per 50 ms, 20 s unless stopped

# Prints "waiting" once the kernel's main thread is blocked inside job.result(), read from
# its stack: the test interrupts then, never on a guess of time.
WAIT_FOR_THE_JOB = """
import sys, threading, time

def _announce(main=threading.main_thread().ident):
    while True:
        frame, names = sys._current_frames().get(main), set()
        while frame is not None:
            names.add(frame.f_code.co_name)
            frame = frame.f_back
        if {"result", "wait"} <= names:
            print("waiting", flush=True)
            return
        time.sleep(0.01)

threading.Thread(target=_announce, daemon=True).start()
job.result()
"""


def live_words(message: dict) -> int:
    """Words shown by a live-view update (0 for any other message)."""
    if message["msg_type"] != "update_display_data":
        return 0
    return len(message["content"]["data"].get("text/plain", "").split())


def head(gateway, key: str) -> str | None:
    session = Session(key, url=gateway.url, token=gateway.token)
    try:
        return session.thread("default").head
    finally:
        session.close()


def test_interrupting_a_streaming_cell_cancels_it_and_keeps_what_came(kernel, gateway, client):
    before = kernel.run("%%interaction --model echo --out first\nbefore")
    first_id = before.outputs[0]["metadata"][METADATA_KEY]["interaction_ids"][0]
    cell = kernel.execute(f"%%interaction --model slow --out r\n{WORDS}")
    cell.wait_for(lambda m: live_words(m) >= 3)  # the model is mid-stream
    kernel.interrupt()
    reply = cell.finish()

    # The cell ends as an interrupted one (a Run All stops here), with two outputs: the
    # partial answer and one line naming the cancelled interaction. No traceback.
    assert (reply["status"], reply["ename"]) == ("error", "Interrupted")
    display, error = cell.outputs
    (line,) = error["traceback"]
    interaction_id = re.fullmatch(r"interrupted: cancelled (int_\w+)", line)[1]
    partial = display["data"]["text/plain"].split()
    assert 3 <= len(partial) < 400 and partial == WORDS.split()[: len(partial)]
    record = display["metadata"][METADATA_KEY]
    assert (record["status"], record["interaction_ids"]) == ("cancelled", [interaction_id])

    # The server stopped it, and kept exactly what the cell shows.
    interaction = client.interactions.get(interaction_id)
    assert interaction.status == "cancelled"
    assert interaction.output_text.split() == partial
    # The thread's head did not move, on the server or in the kernel.
    assert head(gateway, kernel.session_name) == first_id
    kernel.run("%%interaction --model echo --out after\nagain")
    after_id = kernel.run("print(after.id)").text().strip()
    assert client.interactions.get(after_id).previous_interaction_id == first_id


def test_interrupting_a_wait_on_a_job_leaves_the_job_running(kernel, client):
    kernel.run(f"%%interaction --model slow --background --out job\n{WORDS}")
    job_id = kernel.run("print(job.id)").text().strip()
    cell = kernel.execute(WAIT_FOR_THE_JOB)
    cell.wait_for(lambda m: m["msg_type"] == "stream" and "waiting" in m["content"]["text"])
    kernel.interrupt()
    reply = cell.finish()

    assert (reply["status"], reply["ename"]) == ("error", "Interrupted")
    (error,) = [o for o in cell.outputs if o["output_type"] == "error"]
    assert error["traceback"] == [
        f"interrupted the wait; job {job_id} is still running: job.cancel() or "
        f"%interactions cancel {job_id} stops it"
    ]
    assert client.interactions.get(job_id).status == "in_progress"
    # Cancelling says what it did, and a second time that there was nothing left to do.
    cancelled = kernel.run("job.cancel()")
    assert cancelled.outputs[0]["data"]["text/plain"] == f"cancelled {job_id}"
    assert client.interactions.get(job_id).status == "cancelled"
    again = kernel.run(f"%interactions cancel {job_id}")
    assert again.outputs[0]["data"]["text/plain"] == (
        f"{job_id} had already ended (cancelled): nothing to cancel"
    )


def test_a_failed_cell_keeps_only_its_error(kernel):
    for source, message in [
        ("%%interaction --model no-such-model\nhi", "UsageError: unknown model 'no-such-model'"),
        ("%%interaction --model broken\nhello", "UsageError: the model failed: RuntimeError"),
    ]:
        cell = kernel.execute(source)
        assert cell.finish()["status"] == "error"
        (output,) = cell.outputs  # no empty live display before the error
        assert output["name"] == "stderr" and output["text"].startswith(message), output
