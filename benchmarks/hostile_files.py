"""How long the file routes take on a sandbox's hostile entries, beside the same routes on
plain ones, in one run on this machine (loopback only).

A local-agent turn fills an environment's workspace with a FIFO, a socket, a symlink loop,
links out of it and a directory of 10,000 empty files (as tests/reliability/
test_hostile_files.py does; that test asserts what each route answers, this script how long
it takes). Each route is timed RUNS times, interleaved with its plain counterpart:

- download of a FIFO, a socket and a symlink loop (each a 400), against a regular file;
- listing the 10,000-entry directory page by page (1000 a page), and the whole environment
  recursively, against a 1-entry directory;
- the workspace as a tar (its one regular file), and a fork of the whole environment.

Issue 7 asks for an answer within 2 s: the last column says whether the slowest sample of
each was (for a listing walked page by page, each request is one answer).

Run: `python benchmarks/hostile_files.py` (or `make bench`); a few minutes.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx2 as httpx

from gateway import start, stop  # benchmarks/gateway.py: a gateway process, started and stopped
from jupyter_interactions.launch import serve_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.reliability.test_hostile_files import HOSTILE_CODE, MANY

RUNS = 10
BOUND_MS = 2000.0
# The entries the reliability test makes, and a 1-entry directory to list beside them.
CODE = HOSTILE_CODE + "os.makedirs('one')\nopen('one/only.txt', 'w').close()\n"


def files(env_id: str, path: str = "") -> str:
    return f"v1/environments/{env_id}/files/{quote(path)}"


def timed(call: Callable[[], int], expected: int) -> float:
    started = time.perf_counter()
    status = call()
    elapsed = (time.perf_counter() - started) * 1000
    if status != expected:
        raise SystemExit(f"answered {status}, not {expected}")
    return elapsed


def main() -> None:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.json").write_text(json.dumps({"warm_pool_size": 0}))
        env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
        env.update(HOME=tmp, JUPYTER_RUNTIME_DIR=str(work / "runtime"))
        env["JUPYTER_INTERACTIONS_CONFIG"] = str(work / "config.json")
        command = [*serve_command(token=token, data_dir=work / "data"), "--log-level=WARNING"]
        proc, url = start(command, env)
        try:
            with httpx.Client(base_url=url, headers={"x-goog-api-key": token}, timeout=600) as http:
                report(http)
        finally:
            stop(proc)


def report(http: httpx.Client) -> None:
    turn = http.post(
        "v1/interactions",
        json={
            "agent": "local-agent",
            "agent_config": {"type": "dynamic", "model": "scripted"},
            "environment": {"type": "remote"},
            "input": f"```python\n{CODE}```",
        },
    ).json()
    if turn.get("status") != "completed":
        raise SystemExit(f"the agent turn did not complete: {turn}")
    env = turn["environment_id"]
    walked: dict[str, list[float]] = {"workspace/many": [], "": []}

    def get(path: str, **params: str) -> Callable[[], int]:
        return lambda: http.get(files(env, path), params=params).status_code

    def pages(path: str, **params: str) -> Callable[[], int]:
        """One page of 1000 after another, each request timed on its own."""

        def walk() -> int:
            token = ""
            while True:
                query = {**params, "page_size": "1000", **({"page_token": token} if token else {})}
                started = time.perf_counter()
                answer = http.get(files(env, path), params=query)
                walked[path].append((time.perf_counter() - started) * 1000)
                token = answer.json().get("next_page_token", "")
                if answer.status_code != 200 or not token:
                    return answer.status_code

        return walk

    def fork() -> int:
        return http.post("v1/environments", json={"from_environment": env}).status_code

    cases: list[tuple[str, Callable[[], int], int]] = [
        ("download a regular file", get("workspace/data.txt", alt="media"), 200),
        ("download a FIFO (400)", get("workspace/trap", alt="media"), 400),
        ("download a socket (400)", get("workspace/sock", alt="media"), 400),
        ("download a symlink loop (400)", get("workspace/loop_a", alt="media"), 400),
        ("download a link out (400)", get("workspace/escape", alt="media"), 400),
        ("list a 1-entry directory", get("workspace/one"), 200),
        (f"list {MANY:,} entries, all 10 pages", pages("workspace/many"), 200),
        ("list everything recursively, all pages", pages("", recursive="true"), 200),
        ("the workspace as a tar", get("workspace", alt="media"), 200),
        (f"fork ({MANY:,} files, a FIFO, links)", fork, 200),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(RUNS):  # interleaved: every route sees the same machine conditions
        for name, call, expected in cases:
            samples[name].append(timed(call, expected))
    load = os.getloadavg()[0]
    print(f"file routes on hostile entries, {RUNS} runs each (ms; load average {load:.1f})")
    print(f"{'route':<38}{'p50':>9}{'max':>9}  within {BOUND_MS / 1000:.0f} s")
    samples[f"  one page of the {MANY:,} entries"] = walked["workspace/many"]
    samples["  one page of the recursive listing"] = walked[""]
    for name, values in samples.items():
        slowest = max(values)
        print(
            f"{name:<38}{statistics.median(values):>9.1f}{slowest:>9.1f}  "
            f"{'yes' if slowest < BOUND_MS else 'NO'}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
