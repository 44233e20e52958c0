"""Record the wire events the widgets' reducer is tested against, from a real gateway.

Run from the repository root: `.venv/bin/python js/tests/record_fixtures.py`. It starts a
private gateway (tests/conftest.py's `start_gateway`, everything under a temp dir), drives
each scenario over raw HTTP as the browser does (the SSE stream of a create, or of a GET with
`last_event_id`), and writes `js/tests/fixtures/<name>.json`: `{"events": [...],
"interaction": {...}}`, the events as sent and the interaction as GET returns it afterwards.
Ids and times differ from run to run; the tests compare structure, never ids.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.conftest import start_gateway  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SCRIPTED = {"type": "dynamic", "model": "scripted"}


def fence(code: str) -> str:
    return f"```python\n{textwrap.dedent(code).strip()}\n```"


AGENT_INPUT = "\n\n".join(
    [
        fence("""
            import csv
            rows = [(x, x * x) for x in range(5)]
            with open("data.csv", "w", newline="") as f:
                csv.writer(f).writerows([("x", "square"), *rows])
            print(sum(y for _, y in rows))
        """),
        fence("""
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            from IPython.display import Image, display
            plt.plot([0, 1, 2, 3, 4], [0, 1, 4, 9, 16])
            plt.savefig("plot.png")
            display(Image(filename="plot.png"))
        """),
        fence("1 / 0"),
    ]
)


class Wire:
    def __init__(self, url: str, token: str) -> None:
        self.base = f"{url.rstrip('/')}/v1beta/interactions"
        self.http = httpx.Client(headers={"x-goog-api-key": token}, timeout=120)

    def events(self, method: str, url: str, **kwargs: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        with self.http.stream(method, url, **kwargs) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line[len("data: ") :]))
        return events

    def create(self, **body: Any) -> list[dict[str, Any]]:
        return self.events("POST", self.base, json={**body, "stream": True})

    def follow(self, interaction_id: str, last_event_id: str | None = None) -> list[dict[str, Any]]:
        params = {"stream": "true", **({"last_event_id": last_event_id} if last_event_id else {})}
        return self.events("GET", f"{self.base}/{interaction_id}", params=params)

    def get(self, interaction_id: str) -> dict[str, Any]:
        return self.http.get(f"{self.base}/{interaction_id}").raise_for_status().json()


def save(wire: Wire, name: str, events: list[dict[str, Any]], **extra: Any) -> None:
    interaction_id = events[0]["interaction"]["id"]
    record = {"events": events, "interaction": wire.get(interaction_id), **extra}
    (FIXTURES / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{name}: {len(events)} events, status {record['interaction']['status']}")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        # The `limits` tier: the agent says so in a thought step, so a thought is recorded too.
        gateway = start_gateway(Path(root), settings={"sandbox_options": {"tier": "limits"}})
        try:
            wire = Wire(gateway.url, gateway.token)
            echo = wire.create(model="echo", input="Hello **world**: `x = 1` and\n\n- one\n- two")
            save(wire, "echo", echo)
            # A dropped stream resumed from the third event: what the gateway sends after it.
            resumed = wire.follow(echo[0]["interaction"]["id"], echo[2]["event_id"])
            save(wire, "echo_resumed", echo, resumed_after=echo[2]["event_id"], resumed=resumed)

            ask = 'call get_weather {"city": "Oslo"}'
            paused = wire.create(model="echo", input=ask, tools=[WEATHER])
            save(wire, "function_call", paused)
            call = next(
                e["step"] for e in paused if e["event_type"] == "step.start"
                and e["step"]["type"] == "function_call"
            )  # fmt: skip
            result = {"type": "function_result", "call_id": call["id"], "result": "sunny"}
            answered = wire.create(
                model="echo", input=[result], tools=[WEATHER],
                previous_interaction_id=paused[0]["interaction"]["id"],
            )  # fmt: skip
            save(wire, "function_result", answered)

            agent = wire.create(agent="local-agent", agent_config=SCRIPTED, input=AGENT_INPUT)
            save(wire, "agent_files", agent)

            save(wire, "error", wire.create(model="broken", input="hi"))

            started = wire.http.post(
                wire.base, json={"model": "slow", "input": "word " * 200, "background": True}
            ).json()
            seen: list[dict[str, Any]] = []
            follower = threading.Thread(target=lambda: seen.extend(wire.follow(started["id"])))
            follower.start()
            time.sleep(1.0)  # some words have streamed
            wire.http.post(f"{wire.base}/{started['id']}/cancel").raise_for_status()
            follower.join(30)
            save(wire, "cancel", seen)
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
