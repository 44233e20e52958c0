"""A seeded fuzzer over every route of a real gateway: the requests google-genai sends
(recorded from the SDK), mutated from plausible to hostile, in bodies, paths, queries,
headers and methods. Every answer must be below 500, strict JSON (or an SSE stream of
strict JSON, or a file's bytes for alt=media), in the reference's error shape when it is
an error; and a 200 create must be retrievable, and not failed with an `internal` error.

`make test` sends FUZZ_REQUESTS (default 2,000) with FUZZ_SEED (default below); the `soak`
variant sends 100,000 with a fresh seed. A failure prints the seed that reproduces it:
FUZZ_SEED=<seed> pytest tests/reliability/test_fuzz.py
"""

from __future__ import annotations

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
from tests.reliability.mutations import Mutator
from tests.reliability.wire_seeds import Seed, record

SEED = int(os.environ.get("FUZZ_SEED", "20260601"))
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "2000"))
BODY_LIMIT = 256 * 1024  # small, so that bodies past it are cheap to send
_VERSION = r"/(?:v1|v1beta|v1alpha|v1beta1)(?:/projects/[^/]+/locations/[^/]+)?"
CREATES = {
    "interaction": re.compile(_VERSION + r"/interactions/?$"),
    "agent": re.compile(_VERSION + r"/agents/?$"),
    "environment": re.compile(_VERSION + r"/environments/?$"),
}
DOWNLOAD = re.compile(_VERSION + r"/environments/[^/]+/files/")


@dataclass
class Report:
    seed: int
    sent: int = 0
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
            f"FUZZ_SEED={self.seed} FUZZ_REQUESTS={self.sent}\n{head}"
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
    with httpx.Client(base_url=gateway.url.rstrip("/"), headers=auth, timeout=120) as http:
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
            response = http.send(built)
            report.statuses[response.status_code] += 1
            check(http, request, response, report, ids)
    return report


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
    _harvest(request, response, body, ids)
    _retrievable(http, request, path, body, report)


def _internal(body: Any) -> list[Any]:
    """The `internal` errors of an interaction: an unvalidated value reached model code."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors or [] if isinstance(e, dict) and e.get("code") == "internal"]


def _harvest(request: Seed, response: httpx.Response, body: Any, ids: dict[str, list[str]]) -> None:
    if not isinstance(body, dict):
        return
    if CREATES["interaction"].search(request.target.split("?")[0]) and body.get("id"):
        ids["{interaction}"].append(body["id"])
    if body.get("environment_id"):
        ids["{environment}"].append(body["environment_id"])
    if CREATES["environment"].search(request.target.split("?")[0]) and body.get("id"):
        ids["{environment}"].append(body["id"])
    if CREATES["agent"].search(request.target.split("?")[0]) and body.get("id"):
        ids["{agent}"].append(body["id"])
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


def run(gateway_factory: Any, count: int, seed: int) -> Report:
    gateway = gateway_factory(settings={"max_body_bytes": BODY_LIMIT})
    report = fuzz(gateway, count, seed)
    statuses = dict(sorted(report.statuses.items()))
    print(f"fuzz: seed {seed}, {report.sent} requests, statuses {statuses}")
    log = gateway.stderr_path.read_text()[-6000:]
    assert not report.failures, f"{report.summary()}\nthe gateway's log ends:\n{log}"
    assert report.sent >= count
    return report


@pytest.mark.timeout(1200)
def test_fuzz_every_route(gateway_factory: Any) -> None:
    run(gateway_factory, REQUESTS, SEED)


@pytest.mark.soak
@pytest.mark.timeout(6 * 3600)
def test_fuzz_soak(gateway_factory: Any) -> None:
    seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    run(gateway_factory, int(os.environ.get("FUZZ_SOAK_REQUESTS", "100000")), seed)
