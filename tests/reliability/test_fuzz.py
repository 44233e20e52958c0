"""A seeded fuzzer over every route of a real gateway: the requests google-genai sends
(recorded from the SDK), mutated from plausible to hostile, in bodies, paths, queries,
headers and methods. Every answer must be below 500, strict JSON (or an SSE stream of
strict JSON, or a file's bytes for alt=media), in the reference's error shape when it is
an error; and a 200 create must be retrievable, and not failed with an `internal` error.

The live route (a WebSocket) gets the same treatment, message by message: every message the
gateway sends back is strict JSON, no error it reports is `internal`, and it never closes a
socket as broken (1011).

`make test` sends FUZZ_REQUESTS (default 2,000) requests and FUZZ_LIVE_MESSAGES (default 300)
live messages with RELIABILITY_SEED (default 7); the `soak` variant sends 100,000 requests and
10,000 messages with a fresh seed. A failure prints the seed that reproduces it:
RELIABILITY_SEED=<seed> pytest tests/reliability/test_fuzz.py
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest
import websockets
from tests.reliability.mutations import Mutator
from tests.reliability.wire_seeds import Seed, record

SEED = int(os.environ.get("RELIABILITY_SEED", "7"))
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "2000"))
LIVE_MESSAGES = int(os.environ.get("FUZZ_LIVE_MESSAGES", "300"))
# The events a live socket takes (live.py); {interaction} is filled with a live id.
LIVE_FIRST = [
    b'{"event_type": "interaction.create", "model": "echo"}',
    b'{"event_type": "interaction.create", "model": "echo", "system_instruction": "Be brief."}',
    b'{"event_type": "interaction.connect", "id": "{interaction}", "next_output_seq_num": 2}',
]
LIVE_NEXT = [
    b'{"event_type": "input", "content": [{"type": "text", "text": "hello there"}]}',
    b'{"events": [{"event_type": "input", "content": [{"type": "text", "text": "two"}]}]}',
    b'{"event_type": "interaction.complete"}',
    b'{"event_type": "interaction.cancel"}',
    b'{"event_type": "interaction.disconnect"}',
]
BODY_LIMIT = 256 * 1024  # small, so that bodies past it are cheap to send
ANSWER_WITHIN = 20  # seconds without a byte of an answer: a request the gateway dropped
_VERSION = r"/(?:v1|v1beta|v1alpha|v1beta1)(?:/projects/[^/]+/locations/[^/]+)?"
CREATES = {
    "interaction": re.compile(_VERSION + r"/interactions/?$"),
    "agent": re.compile(_VERSION + r"/agents/?$"),
    "environment": re.compile(_VERSION + r"/environments/?$"),
}
DOWNLOAD = re.compile(_VERSION + r"/environments/[^/]+/files/")
# A session's stream of job changes stays open while the gateway runs: its first event is read.
SESSION_EVENTS = re.compile(_VERSION + r"/sessions/[^/]+/events/?$")


@dataclass
class Report:
    seed: int
    sent: int = 0
    live_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, request: Seed, status: int, why: str) -> None:
        shown = request.target if len(request.target) < 200 else request.target[:200] + "..."
        self.failures.append(
            f"#{self.sent} {request.method} {shown} {request.body[:300]!r} -> {status}: {why}"
        )

    def summary(self) -> str:
        head = "\n".join(self.failures[:15])
        return (
            f"{len(self.failures)} failures in {self.sent} requests; reproduce with "
            f"RELIABILITY_SEED={self.seed} FUZZ_REQUESTS={self.sent}\n{head}"
        )


def strict_json(text: str | bytes) -> Any:
    """json.loads that refuses NaN, Infinity and numbers that overflow to infinity."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    def finite(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(f"{token} is not a finite number")
        return value

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def fuzz(gateway: Any, count: int, seed: int) -> Report:
    seeds = record(gateway.url, gateway.token)
    ids: dict[str, list[str]] = {"{interaction}": [], "{environment}": [], "{agent}": []}
    mutator = Mutator(seed, BODY_LIMIT)
    report = Report(seed)
    auth = {"x-goog-api-key": gateway.token}
    timeout = httpx.Timeout(120, read=ANSWER_WITHIN)
    with httpx.Client(base_url=gateway.url.rstrip("/"), headers=auth, timeout=timeout) as http:
        while report.sent < count:
            request = mutator.request(seeds, ids)
            try:
                built = http.build_request(
                    request.method,
                    request.target,
                    headers=request.headers,
                    content=request.body or None,
                )
            except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError, ValueError):
                continue  # the client itself refuses to send it; nothing reached the gateway
            report.sent += 1
            response = http.send(built, stream=True)
            report.statuses[response.status_code] += 1
            try:
                answer = _first_event(response) if _open_ended(request, response) else response
                answer.read()
            except httpx.ReadTimeout:
                _still_running(http, request, response, report)
                continue
            finally:
                response.close()
            check(http, request, answer, report, ids)
    return report


def _open_ended(request: Seed, response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    path = request.target.split("?")[0]
    return kind.startswith("text/event-stream") and bool(SESSION_EVENTS.search(path))


def _first_event(response: httpx.Response) -> httpx.Response:
    """The answer up to the end of its first event (a ReadTimeout if none comes in time)."""
    lines: list[str] = []
    for line in response.iter_lines():
        lines.append(line)
        if not line and any(seen.startswith("data:") for seen in lines):
            break
    text = "\n".join(lines) + "\n"
    headers = {"content-type": response.headers["content-type"]}
    return httpx.Response(response.status_code, headers=headers, content=text.encode())


def _still_running(
    http: httpx.Client, request: Seed, response: httpx.Response, report: Report
) -> None:
    """A stream of an interaction that is still running (a live one waits minutes for input)
    may stay quiet; anything else must answer within ANSWER_WITHIN seconds."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        path = request.target.split("?")[0].rstrip("/")
        interaction_id = path.rsplit("/", 1)[-1]
        got = http.get(f"/v1/interactions/{interaction_id}")
        if got.status_code == 200 and got.json().get("status") in ("in_progress", "queued"):
            return
    report.fail(request, response.status_code, f"no answer within {ANSWER_WITHIN} s")


def check(
    http: httpx.Client,
    request: Seed,
    response: httpx.Response,
    report: Report,
    ids: dict[str, list[str]],
) -> None:
    status = response.status_code
    if status >= 500:
        report.fail(request, status, f"a 5xx: {response.text[:300]}")
    kind = response.headers.get("content-type", "")
    path = request.target.split("?")[0]
    try:
        if kind.startswith("text/event-stream"):
            events = [
                strict_json(line[5:])
                for line in response.text.splitlines()
                if line.startswith("data:") and line.strip() != "data: [DONE]"
            ]
            body: Any = events[0].get("interaction", {}) if events else {}
            internal = [e for e in events if e.get("error", {}).get("code") == "internal"]
        elif kind.startswith("application/json"):
            body = strict_json(response.content)
            internal = _internal(body)
        elif status == 200 and DOWNLOAD.search(path) and "alt=media" in request.target:
            return  # a file's own bytes
        else:
            report.fail(request, status, f"not JSON ({kind!r}): {response.text[:200]!r}")
            return
    except (ValueError, AttributeError) as exc:
        report.fail(request, status, f"not strict JSON: {exc}: {response.text[:200]!r}")
        return
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(error, dict) and error.get("code") and error.get("message")):
            report.fail(request, status, f"not the reference's error shape: {body!r:.200}")
        return
    if internal:
        report.fail(request, status, f"a 200 holding an internal failure: {internal[0]}")
    _harvest(request, response, body, ids, report)
    _retrievable(http, request, path, body, report)


def _internal(body: Any) -> list[Any]:
    """The `internal` errors of an interaction: an unvalidated value reached model code."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors or [] if isinstance(e, dict) and e.get("code") == "internal"]


def _harvest(
    request: Seed, response: httpx.Response, body: Any, ids: dict[str, list[str]], report: Report
) -> None:
    """Keep the ids an answer names, for later requests; an id that is not a string is the
    gateway's failure (it echoed an unvalidated value), reported with the request."""
    if not isinstance(body, dict):
        return
    path = request.target.split("?")[0]
    found = [
        ("{interaction}", body.get("id") if CREATES["interaction"].search(path) else None),
        ("{environment}", body.get("environment_id")),
        ("{environment}", body.get("id") if CREATES["environment"].search(path) else None),
        ("{agent}", body.get("id") if CREATES["agent"].search(path) else None),
    ]
    for placeholder, value in found:
        if not value:
            continue
        if not isinstance(value, str):
            report.fail(request, response.status_code, f"{placeholder} in the answer: {value!r}")
            continue
        ids[placeholder].append(value)
    upload = response.headers.get("x-goog-upload-url", "")
    if "upload_id=" in upload:
        ids.setdefault("{upload}", []).append(upload.split("upload_id=")[1])


def _retrievable(http: httpx.Client, request: Seed, path: str, body: Any, report: Report) -> None:
    """A 200 create must have stored what it answered (unless it asked for store=false)."""
    if request.method != "POST" or not isinstance(body, dict) or not body.get("id"):
        return
    for kind, pattern in CREATES.items():
        if not pattern.search(path):
            continue
        try:
            sent = json.loads(request.body)
        except (ValueError, RecursionError):
            sent = {}
        if kind == "interaction" and isinstance(sent, dict) and sent.get("store") is False:
            return
        got = http.get(f"/v1/{kind}s/{body['id']}")
        if got.status_code != 200:
            report.fail(
                request, 200, f"a 200 create, but GET {kind} {body['id']} gave {got.status_code}"
            )
        elif _internal(strict_json(got.content)):  # a background run fails after its 200
            report.fail(request, 200, f"GET {body['id']}: failed with an internal error")


async def fuzz_live(gateway: Any, count: int, seed: int, report: Report) -> None:
    """Sockets opened one after another, each with a (mutated) first event and up to four
    more, read until the gateway has been quiet for a moment or closes the socket."""
    mutator = Mutator(seed, BODY_LIMIT)
    ids = {"{interaction}": [strict_json(_create(gateway))["id"]]}
    url = gateway.url.replace("http", "ws", 1) + "v1/interactions/live"
    headers = {"x-goog-api-key": gateway.token}
    sent = 0
    while sent < count:
        pick = mutator.random
        messages = [pick.choice(LIVE_FIRST), *pick.sample(LIVE_NEXT, pick.randrange(5))]
        async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
            for text in messages:
                message = mutator.message(text, ids)
                sent += 1
                try:
                    await socket.send(message.decode("utf-8", "replace"))
                    await _replies(socket, message, report, ids)
                except websockets.ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd is not None else 1006
                    if code in (1006, 1011):  # dropped, or closed as broken: a crash
                        report.fail(Seed("WS", "/live", {}, message), code, "socket broken")
                    break
    report.live_sent += sent


async def _replies(socket: Any, message: bytes, report: Report, ids: dict[str, list[str]]) -> None:
    while True:
        try:
            text = await asyncio.wait_for(socket.recv(), timeout=0.3)
        except TimeoutError:
            return
        try:
            event = strict_json(text)
        except ValueError as exc:
            report.fail(Seed("WS", "/live", {}, message), 0, f"not strict JSON: {exc}")
            continue
        if _internal({"errors": [event.get("error") or {}]}):
            report.fail(Seed("WS", "/live", {}, message), 0, f"an internal error: {event}")
        if event.get("interaction_id"):
            ids["{interaction}"].append(event["interaction_id"])


def _create(gateway: Any) -> bytes:
    with httpx.Client(base_url=gateway.url, headers={"x-goog-api-key": gateway.token}) as http:
        return http.post("/v1/interactions", json={"model": "echo", "background": True}).content


def run(gateway_factory: Any, count: int, seed: int, live_messages: int = 0) -> Report:
    gateway = gateway_factory(settings={"max_body_bytes": BODY_LIMIT})
    report = fuzz(gateway, count, seed)
    if live_messages:
        asyncio.run(fuzz_live(gateway, live_messages, seed, report))
    statuses = dict(sorted(report.statuses.items()))
    print(
        f"fuzz: seed {seed}, {report.sent} requests (statuses {statuses}), "
        f"{report.live_sent} live messages, {len(report.failures)} failures"
    )
    log = gateway.stderr_path.read_text()[-6000:]
    assert not report.failures, f"{report.summary()}\nthe gateway's log ends:\n{log}"
    assert report.sent >= count and report.live_sent >= live_messages
    return report


@pytest.mark.timeout(1200)
def test_fuzz_every_route(gateway_factory: Any) -> None:
    run(gateway_factory, REQUESTS, SEED, LIVE_MESSAGES)


@pytest.mark.soak
@pytest.mark.timeout(6 * 3600)
def test_fuzz_soak(gateway_factory: Any) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2**32))
    requests = int(os.environ.get("FUZZ_SOAK_REQUESTS", "100000"))
    print(f"RELIABILITY_SEED={seed}")  # shown with a failure, to run it again
    run(gateway_factory, requests, seed, int(os.environ.get("FUZZ_SOAK_LIVE", "10000")))
