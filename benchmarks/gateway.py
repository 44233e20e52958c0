"""Gateway speed, measured side by side in one run on this machine (loopback only).

- unary create latency (p50/p90) through the gateway with the echo model, against the floor:
  a minimal tornado server answering the same route with a canned Interaction JSON. Both are
  called with the same client (google-genai's sync client; and raw httpx2, the SDK's HTTP
  library), so the ratio isolates the server;
- SSE events per second: one stream of ~10,000 step.delta events (the echo model configured
  with chunks=10000), consumed through the SDK stream, and raw;
- time to first event: p50 over repeated streams through the SDK;
- the same three through the SDK as the kernel side runs it (_sdk.py applied).

Run: `python benchmarks/gateway.py` (or `make bench`). Takes well under a minute.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
from google import genai

from jupyter_interactions._sdk import patch_state, speed_up_sdk
from jupyter_interactions.launch import serve_command

UNARY_RUNS = 200
WARMUP = 30
STREAM_WORDS = 10_000
STREAM_RUNS = 2
FIRST_EVENT_RUNS = 30

PATCHED = "SDK, kernel side"  # the SDK with _sdk.py's patches applied, as in a notebook
LABELS = ("SDK", "httpx2", PATCHED)
TARGET_RATIO = 3.0
TARGET_EVENTS_PER_SECOND = 5_000
TARGET_FIRST_EVENT_MS = 10.0

FLOOR_SERVER = r"""
import asyncio, json, socket, sys
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

class Create(tornado.web.RequestHandler):
    async def post(self):
        body = json.loads(self.request.body)
        if body.get("stream"):
            await self.stream(body)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({
            "id": "int_floor", "status": "completed", "model": body.get("model"),
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "steps": [{"type": "model_output",
                       "content": [{"type": "text", "text": body.get("input", "")}]}],
            "usage": {"total_input_tokens": 1, "total_output_tokens": 1, "total_tokens": 2},
        }))

    async def stream(self, body):
        # The least a server can do for the same stream: canned events, written in batches.
        self.set_header("Content-Type", "text/event-stream")
        words = str(body.get("input", "")).split()
        events = [{"event_type": "interaction.created",
                   "interaction": {"id": "int_floor", "status": "in_progress"}},
                  {"event_type": "step.start", "index": 0,
                   "step": {"type": "model_output", "content": []}}]
        events += [{"event_type": "step.delta", "index": 0,
                    "delta": {"type": "text", "text": w + " "}} for w in words]
        events += [{"event_type": "step.stop", "index": 0},
                   {"event_type": "interaction.completed",
                    "interaction": {"id": "int_floor", "status": "completed"}}]
        for start in range(0, len(events), 64):
            chunk = events[start:start + 64]
            self.write("".join(
                f"data: {json.dumps({**e, 'event_id': f'ev_{start + i + 1}'})}\n\n"
                for i, e in enumerate(chunk)))
            await self.flush()
        self.finish("data: [DONE]\n\n")


async def main():
    app = tornado.web.Application([(r"/v1/interactions", Create)])
    sockets = bind_sockets(0, "127.0.0.1")
    HTTPServer(app).add_sockets(sockets)
    print(f"Serving on http://127.0.0.1:{sockets[0].getsockname()[1]}/", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def start(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Serving on "):
        proc.kill()
        raise SystemExit(f"server did not start: {command[:4]}")
    return proc, line.removeprefix("Serving on ").strip()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_calls(call, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def unary_samples(calls: dict) -> dict[str, list[float]]:
    """Unary latencies per server, interleaved so both see the same machine conditions."""
    for call in calls.values():
        time_calls(call, WARMUP)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(UNARY_RUNS // 10):
        for name, call in calls.items():
            samples[name] += time_calls(call, 10)
    return samples


def sdk_first_event_ms(client) -> float:
    t0 = time.perf_counter()
    stream = client.interactions.create(model="echo", input="hi", stream=True)
    next(iter(stream))
    elapsed = (time.perf_counter() - t0) * 1000
    stream.close()
    return elapsed


def sdk_events_per_second(client, body: dict) -> float:
    t0 = time.perf_counter()
    events = sum(1 for _ in client.interactions.create(**body))
    return events / (time.perf_counter() - t0)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ji-bench-"))
    token = secrets.token_urlsafe(16)
    config = work / "jupyter_interactions.json"
    config.write_text(json.dumps({"models": {"echo-many": {"adapter": "echo", "chunks": 100_000}}}))
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(JUPYTER_RUNTIME_DIR=str(work / "runtime"), JUPYTER_INTERACTIONS_CONFIG=str(config))
    gateway, gateway_url = start(
        [*serve_command(token=token, data_dir=work / "data"), "--log-level=WARNING"],
        env,
    )
    floor, floor_url = start([sys.executable, "-c", FLOOR_SERVER], env)
    try:
        return run(gateway_url, floor_url, token)
    finally:
        stop(gateway)
        stop(floor)


def run(gateway_url: str, floor_url: str, token: str) -> int:
    options = {"retry_options": {"attempts": 1}}
    via_gateway = genai.Client(api_key=token, http_options={"base_url": gateway_url, **options})
    via_floor = genai.Client(api_key=token, http_options={"base_url": floor_url, **options})
    body = {"model": "echo", "input": "hello from the benchmark"}
    headers = {"x-goog-api-key": token}
    try:
        with httpx.Client(headers=headers, timeout=60) as http:
            sdk = {
                "gateway": lambda: via_gateway.interactions.create(**body),
                "floor": lambda: via_floor.interactions.create(**body),
            }
            raw = {
                "gateway": lambda: http.post(f"{gateway_url}v1/interactions", json=body).json(),
                "floor": lambda: http.post(f"{floor_url}v1/interactions", json=body).json(),
            }
            results = {
                label: unary_samples(calls) for label, calls in (("SDK", sdk), ("httpx2", raw))
            }

            words = " ".join(f"w{i}" for i in range(STREAM_WORDS))
            urls = {"gateway": gateway_url, "floor": floor_url}
            clients = {"gateway": via_gateway, "floor": via_floor}
            rates = {(label, name): [] for label in LABELS for name in urls}
            for _ in range(STREAM_RUNS):
                for name in urls:
                    stream_body = {"model": "echo-many", "input": words, "stream": True}
                    rates["SDK", name].append(sdk_events_per_second(clients[name], stream_body))
                    t0 = time.perf_counter()
                    with http.stream("POST", f"{urls[name]}v1/interactions", json=stream_body) as r:
                        n = sum(1 for line in r.iter_lines() if line.startswith("data: {"))
                    rates["httpx2", name].append(n / (time.perf_counter() - t0))
            events_count = n

            first = {(label, name): [] for label in LABELS for name in urls}
            for _ in range(FIRST_EVENT_RUNS):
                for name in urls:
                    first["SDK", name].append(sdk_first_event_ms(clients[name]))
                    stream_body = {"model": "echo", "input": "hi", "stream": True}
                    t0 = time.perf_counter()
                    with http.stream("POST", f"{urls[name]}v1/interactions", json=stream_body) as r:
                        next(line for line in r.iter_lines() if line.startswith("data: {"))
                        first["httpx2", name].append((time.perf_counter() - t0) * 1000)

            # Last, as the kernel side runs the SDK: with its model classes cached (global
            # patches, so measured after everything above).
            assert speed_up_sdk(), f"the kernel-side SDK patches are off: {patch_state()}"
            results[PATCHED] = unary_samples(sdk)
            for _ in range(STREAM_RUNS):
                for name in urls:
                    stream_body = {"model": "echo-many", "input": words, "stream": True}
                    rates[PATCHED, name].append(sdk_events_per_second(clients[name], stream_body))
            for _ in range(FIRST_EVENT_RUNS):
                for name in urls:
                    first[PATCHED, name].append(sdk_first_event_ms(clients[name]))
    finally:
        via_gateway.close()
        via_floor.close()

    print(f"jupyter-interactions gateway benchmark ({os.cpu_count()} CPUs, loopback)\n")
    print(f"{'':<34}{'unary p50':>10}{'p90 ms':>8}{'events/s':>11}{'1st event p50 ms':>18}")
    for label in LABELS:
        for name in ("floor", "gateway"):
            values = results[label][name]
            print(
                f"  {label + ' -> ' + name:<32}{percentile(values, 0.5):>10.2f}"
                f"{percentile(values, 0.9):>8.2f}{statistics.median(rates[label, name]):>11,.0f}"
                f"{percentile(first[label, name], 0.5):>18.2f}"
            )

    def p50(label: str, name: str) -> float:
        return percentile(results[label][name], 0.5)

    ratio_sdk = p50("SDK", "gateway") / p50("SDK", "floor")
    ratio_raw = p50("httpx2", "gateway") / p50("httpx2", "floor")
    eps_sdk = statistics.median(rates["SDK", "gateway"])
    eps_raw = statistics.median(rates["httpx2", "gateway"])
    eps_patched = statistics.median(rates[PATCHED, "gateway"])
    first_sdk = percentile(first["SDK", "gateway"], 0.5)
    first_raw = percentile(first["httpx2", "gateway"], 0.5)
    first_patched = percentile(first[PATCHED, "gateway"], 0.5)
    print()
    print(f"  stream size: {events_count} events; unary runs: {UNARY_RUNS} per row")
    print(f"  gateway / floor unary p50: {ratio_sdk:.2f}x through the SDK, {ratio_raw:.2f}x raw")
    print(
        "  note: the plain SDK builds a fresh pydantic model class for every request and every\n"
        "  event, so its own ceiling (the floor rows) bounds what goes through it; the kernel\n"
        f"  side ({PATCHED!r} rows) builds each class once (_sdk.py)."
    )
    print()
    checks = [
        (f"gateway p50 within {TARGET_RATIO:.0f}x of the floor, SDK", ratio_sdk <= TARGET_RATIO),
        (f"gateway p50 within {TARGET_RATIO:.0f}x of the floor, raw", ratio_raw <= TARGET_RATIO),
        (f">= {TARGET_EVENTS_PER_SECOND:,} events/s, raw", eps_raw >= TARGET_EVENTS_PER_SECOND),
        (f">= {TARGET_EVENTS_PER_SECOND:,} events/s, SDK", eps_sdk >= TARGET_EVENTS_PER_SECOND),
        (
            f">= {TARGET_EVENTS_PER_SECOND:,} events/s, {PATCHED}",
            eps_patched >= TARGET_EVENTS_PER_SECOND,
        ),
        (f"first event < {TARGET_FIRST_EVENT_MS:.0f} ms, raw", first_raw < TARGET_FIRST_EVENT_MS),
        (f"first event < {TARGET_FIRST_EVENT_MS:.0f} ms, SDK", first_sdk < TARGET_FIRST_EVENT_MS),
        (
            f"first event < {TARGET_FIRST_EVENT_MS:.0f} ms, {PATCHED}",
            first_patched < TARGET_FIRST_EVENT_MS,
        ),
    ]
    for label, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
