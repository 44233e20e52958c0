"""Kernel-side client: builds the google-genai client for a `launch.Connection`, calls the
gateway's session routes, and maps the SDK's errors to ours (the one place that does).
Finding or starting the gateway is `launch.py`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import config
from ._sdk import speed_up_sdk
from .errors import (
    AuthError,
    GatewayError,
    InteractionsError,
    NotFoundError,
    RequestError,
    UpstreamError,
)
from .launch import Connection, read_json
from .protocol import now

try:  # the same HTTP library the SDK uses, for our few non-protocol routes
    import httpx as _http
except ImportError:  # pragma: no cover - depends on what google-genai pulled in
    import httpx2 as _http  # type: ignore[no-redef]

ATTEMPTS = 3  # SDK attempts for 429/5xx (first try included) before we give up


# --- the SDK client ----------------------------------------------------------------------


def build_client(connection: Connection, session_key: str) -> Any:
    """A google-genai client for this connection; reuse it for every call of the kernel."""
    from google import genai

    speed_up_sdk()

    headers = {} if connection.direct else {"x-interactions-session": session_key}
    headers.update(connection.headers)
    http_options = genai.types.HttpOptions(
        base_url=connection.base_url,
        headers=headers,
        retry_options=genai.types.HttpRetryOptions(attempts=ATTEMPTS),
    )
    return genai.Client(api_key=connection.token or "none", http_options=http_options)


# --- our session routes (non-protocol; gateway only) -------------------------------------


class SessionRoutes:
    """GET/PUT/DELETE on {base}/v1/sessions/{key}: thread heads and jobs kept by the gateway."""

    def __init__(self, connection: Connection, key: str) -> None:
        self.connection = connection
        self.key = key
        self._http = _http.Client(timeout=30.0)
        self._base = f"{connection.base_url}v1/sessions/{urllib.parse.quote(key, safe='')}"

    def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        headers = {
            "x-goog-api-key": str(self.connection.token or ""),
            **dict(self.connection.headers),
        }
        try:
            response = self._http.request(method, self._base + path, json=body, headers=headers)
        except _http.HTTPError:
            raise GatewayError(unreachable_message(self.connection)) from None
        if response.status_code == 401:
            raise AuthError(_auth_message(self.connection))
        if response.status_code == 404 and method == "GET":
            return {"key": self.key, "threads": [], "jobs": []}
        if response.status_code in (400, 404):  # the request's own fault: say what it was
            error = NotFoundError if response.status_code == 404 else RequestError
            raise error(_body(response))
        if response.status_code >= 400:
            raise GatewayError(f"the gateway answered {response.status_code}: {_body(response)}")
        return response.json() if response.content else {}

    def get(self) -> dict[str, Any]:
        """The session's record: {key, threads, jobs} (empty if the gateway has none)."""
        return self._call("GET")

    def set_head(self, thread: str, head: str | None) -> None:
        """Point `thread` at `head` (None: its next turn starts anew)."""
        self._call("PUT", f"/threads/{urllib.parse.quote(thread, safe='')}", {"head": head})

    def delete(self, thread: str | None = None) -> None:
        """Forget one thread, or all of the session's threads."""
        suffix = f"/threads/{urllib.parse.quote(thread, safe='')}" if thread else "/threads"
        self._call("DELETE", suffix)

    def cassette(self, setting: dict[str, Any] | None = None) -> dict[str, Any]:
        """The session's record/replay state; with `setting` ({mode, path}), set it first."""
        return dict(self._call("PUT" if setting else "GET", "/cassette", setting))

    def events(self, last_event_id: str | None = None) -> SessionEvents:
        """This session's job changes as they happen (GET .../events, SSE): `session.jobs`
        first unless resumed after `last_event_id`, then each `job.updated`."""
        return SessionEvents(self, last_event_id)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


class SessionEvents:
    """An open stream of a session's job changes: iterate it for the events (dicts); it ends
    when the gateway closes it, and `close()` (from any thread) stops it."""

    def __init__(self, routes: SessionRoutes, last_event_id: str | None) -> None:
        self.last_event_id = last_event_id
        self._closed = False
        params = {"last_event_id": last_event_id} if last_event_id else {}
        headers = {"x-goog-api-key": str(routes.connection.token or "")}
        request = routes._http.build_request(
            "GET", routes._base + "/events", params=params, headers=headers,
            timeout=_http.Timeout(30.0, read=None),  # quiet for as long as no job changes
        )  # fmt: skip
        try:
            self._response = routes._http.send(request, stream=True)
        except _http.HTTPError:
            raise GatewayError(unreachable_message(routes.connection)) from None
        if self._response.status_code == 401:
            self._response.close()
            raise AuthError(_auth_message(routes.connection))
        if self._response.status_code >= 400:
            self._response.read()
            self._response.close()
            raise GatewayError(
                f"the gateway answered {self._response.status_code}: {_body(self._response)}"
            )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        data: list[str] = []
        try:
            for line in self._response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    text, data = "\n".join(data), []
                    if text == "[DONE]":
                        return
                    event = json.loads(text)
                    self.last_event_id = event.get("event_id") or self.last_event_id
                    yield event
        except _http.HTTPError:
            if self._closed:
                return
            raise GatewayError("the gateway's event stream was cut") from None
        except _http.StreamError:  # closed (by close()) between two reads
            return
        finally:
            self._response.close()

    def close(self) -> None:
        """Stop the stream (from any thread): iterating it then ends, at once. The connection
        is shut down first: closing it alone would leave a read that waits on it (the feed is
        quiet while no job changes) waiting until the next change."""
        self._closed = True
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()


def _body(response: Any) -> str:
    try:
        return str(response.json().get("error", {}).get("message") or response.text)
    except ValueError:
        return response.text[:200]


class LocalHeads:
    """Direct mode keeps thread heads in a small JSON file (Google keeps no sessions for us;
    there is no server-side jobs list in direct mode)."""

    def __init__(self, key: str, path: Path | None = None) -> None:
        self.key = key
        self.path = path or config.data_dir() / "direct-threads.json"

    def _load(self) -> dict[str, Any]:
        return read_json(self.path) or {}

    def get(self) -> dict[str, Any]:
        """The session's record as SessionRoutes.get gives it (no jobs in direct mode)."""
        threads = self._load().get(self.key, {})
        return {"key": self.key, "threads": list(threads.values()), "jobs": []}

    def set_head(self, thread: str, head: str | None, **fields: Any) -> None:
        """Point `thread` at `head`, keeping `fields` (model, agent, turns) beside it."""
        data = self._load()
        threads = data.setdefault(self.key, {})
        entry = threads.get(thread) or {"name": thread, "turns": 0}
        entry.update(fields, head=head, updated=now())
        threads[thread] = entry
        self._save(data)

    def delete(self, thread: str | None = None) -> None:
        """Forget one thread, or all of this key's threads."""
        data = self._load()
        if thread is None:
            data.pop(self.key, None)
        else:
            data.get(self.key, {}).pop(thread, None)
        self._save(data)

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def close(self) -> None:
        """Nothing to close (the file is written at each change)."""


# --- error mapping: the one place SDK errors become ours ---------------------------------


def _auth_message(connection: Connection) -> str:
    if connection.direct:
        return "Google's service rejected GEMINI_API_KEY (401); check the key and re-run the cell"
    if connection.origin == "jupyter-server":
        server = connection.base_url.removesuffix("interactions/")
        if connection.token is None:  # a server without auth lets every kernel in
            return (
                f"the Jupyter server at {server} asks for a login (a password) and gives its "
                "kernels no token, so this kernel cannot use its interactions gateway: start "
                "Jupyter with a token as well (JUPYTER_TOKEN=... or "
                "--IdentityProvider.token=...), or run "
                "`jupyter-interactions serve` and set JUPYTER_INTERACTIONS_URL and "
                "JUPYTER_INTERACTIONS_TOKEN in the kernel's environment"
            )
        return (
            f"the Jupyter server at {server} refused its own token (401): it has a new one "
            "since this kernel read it (restarted, or its token changed); restart the kernel "
            "to read the server's token again"
        )
    return (
        f"{connection.where} rejected our token (401); unset JUPYTER_INTERACTIONS_TOKEN "
        "or restart the kernel to find the running gateway again"
    )


def unreachable_message(connection: Connection) -> str:
    """What to tell the user when `connection` cannot be reached."""
    if connection.direct:
        return f"cannot reach Google's service at {connection.base_url}; check the network"
    if connection.origin == "explicit":
        return (
            f"cannot reach the gateway at {connection.base_url} (JUPYTER_INTERACTIONS_URL); "
            "start it, or unset that variable to use one found or started here"
        )
    return (
        f"cannot reach the gateway at {connection.base_url}; re-run the cell "
        "(a new gateway starts if the old one is gone)"
    )


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", "") or exc)


def map_error(
    exc: BaseException, connection: Connection, interaction_id: str | None = None
) -> InteractionsError:
    """One SDK (or transport) exception as one of ours, with a one-line message and its
    context: the HTTP status the server answered, and `interaction_id` (the interaction the
    call was about), unless the error names one already."""
    error = _mapped(exc, connection)
    if error.interaction_id is None:
        error.interaction_id = interaction_id
    return error


def _mapped(exc: BaseException, connection: Connection) -> InteractionsError:
    from ._sdk import errors as sdk

    if isinstance(exc, InteractionsError):
        return exc
    status = getattr(exc, "status_code", None)
    service = "Google's service" if connection.direct else "the gateway"
    if isinstance(exc, sdk.RateLimitError) or status == 429:
        return UpstreamError(
            f"Google's service is busy (429) after {ATTEMPTS} attempts; wait and re-run the cell",
            status=429,
        )
    if isinstance(exc, sdk.InternalServerError) or (status is not None and status >= 500):
        return UpstreamError(
            f"{service} failed ({status}) after {ATTEMPTS} attempts; wait and re-run the cell",
            status=status,
        )
    if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return AuthError(_auth_message(connection))
    if isinstance(exc, sdk.NotFoundError):
        return NotFoundError(_server_message(exc))
    if isinstance(exc, sdk.APIConnectionError):
        return GatewayError(unreachable_message(connection))
    if isinstance(exc, sdk.APIStatusError):
        error = RequestError(_server_message(exc))
        if isinstance(status, int):
            error.http_status = status  # e.g. 413 or 422, as the server answered
        return error
    if isinstance(exc, ValueError | TypeError):
        return RequestError(str(exc))
    return InteractionsError(f"{type(exc).__name__}: {exc}")
