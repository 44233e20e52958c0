"""A session's job changes as SSE (`GET /v1/sessions/{key}/events`): the jobs as they are,
then each change as it happens (status at once, progress at most once a second per job),
resumed by event id; and the models list the SDK reads (`client.models.list()`)."""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from tests.gateway.test_http import raw

from jupyter_interactions.gateway.runs.job_feed import PROGRESS_SECONDS

WORDS = " ".join(f"w{i}" for i in range(400))  # `slow`: 20 s, one word per 50 ms


class Feed:
    """Reads a session's event stream in a thread; events arrive in `events` (a queue)."""

    def __init__(self, gateway: Any, key: str, last_event_id: str | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ids: list[str] = []
        params = {"last_event_id": last_event_id} if last_event_id else {}
        self._http = httpx.Client(base_url=gateway.url, timeout=httpx.Timeout(30, read=None))
        self._request = self._http.build_request(
            "GET", f"/v1/sessions/{quote(key, safe='')}/events", params=params,
            headers={"x-goog-api-key": gateway.token},
        )  # fmt: skip
        self._response: Any = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._response = self._http.send(self._request, stream=True)
            data: list[str] = []
            for line in self._response.iter_lines():
                if line.startswith("id:"):
                    self.ids.append(line[3:].strip())
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    text, data = "\n".join(data), []
                    self.events.put({"done": True} if text == "[DONE]" else json.loads(text))
        except httpx.HTTPError:
            pass  # closed by the test

    def next(self, timeout: float = 60) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def until(self, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
        """Events up to and including the first that satisfies `predicate`."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(deadline - time.monotonic(), 0.01))
            seen.append(event)
            if predicate(event):
                return seen

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._http.close()
        self._thread.join(10)


@pytest.fixture
def feeds() -> Iterator[Any]:
    opened: list[Feed] = []

    def open_feed(*args: Any, **kwargs: Any) -> Feed:
        opened.append(Feed(*args, **kwargs))
        return opened[-1]

    yield open_feed
    for feed in opened:
        feed.close()


def tagged_client(gateway: Any, key: str) -> Any:
    headers = {"x-interactions-session": quote(key, safe=""), "x-interactions-thread": "main"}
    return gateway.client(headers=headers)


def job_events(events: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [
        e["job"]
        for e in events
        if e.get("event_type") == "job.updated" and e["job"]["id"] == job_id
    ]


def test_a_sessions_jobs_then_each_change(gateway: Any, feeds: Any) -> None:
    key = f"events/{secrets.token_hex(4)}.ipynb"
    feed = feeds(gateway, key)
    first = feed.next()
    assert first == {"event_type": "session.jobs", "event_id": first["event_id"], "jobs": []}
    client = tagged_client(gateway, key)
    try:
        started = time.monotonic()
        job = client.interactions.create(model="slow", input=WORDS, background=True)
        seen = feed.until(
            lambda e: any(
                j["steps"] and j["status"] == "in_progress" for j in job_events([e], job.id)
            )
        )
        client.interactions.cancel(job.id)
        seen += feed.until(
            lambda e: any(j["status"] == "cancelled" for j in job_events([e], job.id))
        )
        elapsed = time.monotonic() - started
    finally:
        client.close()
    rows = job_events(seen, job.id)
    assert rows[0]["status"] == "in_progress" and rows[0]["thread"] == "main"
    assert rows[0]["model"] == "slow" and rows[0]["created"]
    assert rows[-1]["status"] == "cancelled" and rows[-1]["updated"]
    steps = [r["steps"] for r in rows]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 1  # progress, in order
    # Progress is coalesced: a status change at once, the rest once a PROGRESS_SECONDS.
    assert len(rows) <= 2 + elapsed / PROGRESS_SECONDS + 1
    ids = [int(i.rpartition("_")[2]) for i in feed.ids]
    assert ids == sorted(ids)

    # A new follower gets the job as it ended, in the jobs as they are.
    (listed,) = feeds(gateway, key).next()["jobs"]
    assert listed == rows[-1]


def test_resume_after_the_last_event_seen(gateway: Any, feeds: Any) -> None:
    key = f"events/{secrets.token_hex(4)}.ipynb"
    feed = feeds(gateway, key)
    feed.next()
    client = tagged_client(gateway, key)
    try:
        one = client.interactions.create(model="echo", input="one", background=True)
        feed.until(lambda e: any(j["status"] == "completed" for j in job_events([e], one.id)))
        last = feed.ids[-1]
        feed.close()
        two = client.interactions.create(model="echo", input="two", background=True)
        # Resumed: what was missed, from the change after `last`; no snapshot first.
        resumed = feeds(gateway, key, last_event_id=last)
        missed = resumed.until(
            lambda e: any(j["status"] == "completed" for j in job_events([e], two.id))
        )
    finally:
        client.close()
    assert all(e["event_type"] == "job.updated" for e in missed)
    assert {e["job"]["id"] for e in missed} == {two.id}
    assert int(resumed.ids[0].rpartition("_")[2]) == int(last.rpartition("_")[2]) + 1
    # An id of another gateway process (or one forgotten) starts again from the jobs as they are.
    fresh = feeds(gateway, key, last_event_id="se_00000000_3").next()
    assert fresh["event_type"] == "session.jobs"
    assert [j["id"] for j in fresh["jobs"]] == [one.id, two.id]
    assert [j["status"] for j in fresh["jobs"]] == ["completed", "completed"]


def test_the_stream_ends_when_the_gateway_stops(gateway_factory: Any, feeds: Any) -> None:
    private = gateway_factory()
    key = "events/stopping.ipynb"
    feed = feeds(private, key)
    client = tagged_client(private, key)
    try:
        job = client.interactions.create(model="echo", input="x " * 5000, background=True)
    finally:
        client.close()
    assert feed.next()["event_type"] == "session.jobs"
    private.stop()
    rest = feed.until(lambda e: e.get("done"))
    assert rest[-1] == {"done": True}
    assert all(e["job"]["id"] == job.id for e in rest[:-1])


def test_models_list_in_googles_shape(gateway: Any, client: Any) -> None:
    client.agents.create(id=f"helper-{secrets.token_hex(3)}", base_agent="local-agent")
    listed = {m.name: m for m in client.models.list(config={"page_size": 2})}  # pages
    for name in ("models/echo", "models/local", "models/scripted", "agents/local-agent"):
        assert listed[name].description.startswith("runs on this gateway"), name
    assert "SmolLM2" in listed["models/local"].description
    helper = [m for n, m in listed.items() if n.startswith("agents/helper-")]
    assert helper and "custom agent on local-agent" in helper[0].description
    assert not [m for m in listed.values() if "Google" in m.description]  # no key: none
    assert client.models.get(model="echo").display_name == "echo"


def test_with_a_key_the_ids_google_lists_say_they_are_forwarded(gateway_factory: Any) -> None:
    key = "AIza" + secrets.token_urlsafe(30)
    google = gateway_factory(token=key, models={"gemini-test": {"adapter": "echo"}})
    front = gateway_factory(
        env={"GEMINI_API_KEY": key}, settings={"upstream_url": google.url, "upstream_attempts": 1}
    )
    client = front.client()
    try:
        listed = {m.name: m.description for m in client.models.list()}
    finally:
        client.close()
    assert listed["models/gemini-test"] == "forwarded to Google's service with the gateway's key"
    # Google's own local ids are not forwarded (the gateway runs echo itself).
    assert listed["models/echo"].startswith("runs on this gateway")
    assert key not in json.dumps(listed)


# -- validation at the edge (validation/routes.py): a 400 that names the field -------------------


def refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_argument" and field in error["message"], error
    return str(error["message"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("pageSize=x", "pageSize"),
        ("pageSize=-1", "pageSize"),
        ("pageSize=1e999", "pageSize"),
        (f"pageToken={10**24}", "pageToken"),
        ("pageToken=abc", "pageToken"),
        ("filter=baseModel", "filter"),  # the gateway lists all it runs: no silent filter
    ],
)
def test_models_list_refuses_a_query_it_cannot_honour(gateway: Any, query: str, field: str) -> None:
    refused(raw(gateway, "GET", f"/v1beta/models?{query}"), field)


def test_models_list_pages_by_googles_names(gateway: Any) -> None:
    first = raw(gateway, "GET", "/v1beta/models?pageSize=1").json()
    assert len(first["models"]) == 1 and first["nextPageToken"] == "1"
    second = raw(gateway, "GET", f"/v1beta/models?pageSize=1&pageToken={first['nextPageToken']}")
    assert second.json()["models"] != first["models"]
    assert "pageToken" in refused(raw(gateway, "GET", "/v1beta/models?pageToken=x"), "pageToken")


def test_a_model_id_and_a_session_key_are_checked(gateway: Any) -> None:
    refused(raw(gateway, "GET", "/v1beta/models/%00echo"), "model id")
    assert raw(gateway, "GET", "/v1beta/models/nothing").status_code == 404
    refused(raw(gateway, "GET", f"/v1/sessions/{'k' * 1025}/events"), "session key")
    refused(raw(gateway, "GET", "/v1/sessions/%01/events"), "session key")


@pytest.mark.parametrize("last", ["ev_3", "se_xyz_3", "se_0123abcd_", f"se_0123abcd_{10**20}"])
def test_a_session_stream_resumes_only_from_its_own_ids(gateway: Any, last: str) -> None:
    path = "/v1/sessions/nb.ipynb/events"
    assert "se_" in refused(
        raw(gateway, "GET", path, params={"last_event_id": last}), "last_event_id"
    )
    header = raw(gateway, "GET", path, headers={"Last-Event-ID": last})
    refused(header, "Last-Event-ID")
