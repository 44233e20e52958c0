"""One entry per route: its path parameters, query, headers and body, checked before any of
it reaches the engine, a model or a sandbox. Each returns what the handler needs, typed, or
raises a RequestError (400) that names the field and says what to send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

from ...errors import RequestError
from ...protocol import CELL_HEADER
from ..environments.manager import MODES
from ..replay import MODES as CASSETTE_MODES
from ..runs.job_feed import EVENT_ID
from ..validation import bodies, rules
from ..validation.strict_json import loads

__all__ = [
    "CassetteChoice",
    "EnvironmentListing",
    "FilesRead",
    "InteractionRead",
    "NewInteraction",
    "Page",
    "SessionFollow",
    "ThreadHead",
    "UploadChunk",
    "UploadStart",
    "agent",
    "auth_token",
    "create_agent",
    "create_auth_token",
    "create_environment",
    "create_interaction",
    "environment",
    "interaction",
    "json_object",
    "list_environments",
    "list_models",
    "listing",
    "model",
    "put_thread",
    "read_files",
    "read_interaction",
    "session",
    "session_events",
    "session_headers",
    "set_cassette",
    "start_upload",
    "thread",
    "upload_chunk",
]

T = TypeVar("T")

SESSION_HEADER = "x-interactions-session"
THREAD_HEADER = "x-interactions-thread"
MAX_SESSION_KEY = 1024  # a notebook path or a kernel id
MAX_THREAD_NAME = 256
MAX_AUTH_TOKEN = 256  # auth_tokens/ and 64 hex digits
MAX_CELL = 256  # "<execution count> <cell id>"; nbformat's cell ids are at most 64
_UPLOAD_COMMANDS = frozenset({"start", "upload", "finalize"})


class Incoming(Protocol):
    """What a route reads of a request (tornado's HTTPServerRequest has all of it)."""

    @property
    def body(self) -> bytes: ...
    @property
    def query_arguments(self) -> Mapping[str, list[bytes]]: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class NewInteraction:
    body: dict[str, Any]
    session: str | None
    thread: str | None
    cell: str | None  # where the request came from, for record and replay


@dataclass(frozen=True)
class InteractionRead:
    interaction_id: str
    stream: bool
    include_input: bool
    after: int  # the sequence number of last_event_id (0: from the start)


@dataclass(frozen=True)
class Page:
    """A page of a list: up to `size` entries from `offset` (what a page token carries).
    `token_key` is the answer's name for the next page's token (models.list's is camelCase)."""

    offset: int
    size: int
    token_key: str = "next_page_token"

    @property
    def fetch(self) -> int:
        """How many entries to read from `offset`: one past the page says a next one exists."""
        return self.size + 1

    def window(self, entries: Sequence[T]) -> Sequence[T]:
        """What to read of a whole list: `fetch` entries from `offset`."""
        return entries[self.offset : self.offset + self.fetch]

    def answer(self, key: str, read: Sequence[Any]) -> dict[str, Any]:
        """The list's answer from what was read: the page, and the next page's token if the
        read found more."""
        body: dict[str, Any] = {key: read[: self.size]}
        if len(read) > self.size:
            body[self.token_key] = str(self.offset + self.size)
        return body


@dataclass(frozen=True)
class EnvironmentListing:
    page: Page
    mode: str | None  # one of environments.MODES, lower case


@dataclass(frozen=True)
class FilesRead:
    environment_id: str
    path: str
    media: bool  # alt=media: the file's bytes, not a listing
    recursive: bool
    page: Page


@dataclass(frozen=True)
class UploadStart:
    environment_id: str
    path: str
    size: int | None
    overwrite: bool
    extract: bool


@dataclass(frozen=True)
class UploadChunk:
    upload_id: str
    offset: int
    finalize: bool


@dataclass(frozen=True)
class CassetteChoice:
    session: str
    mode: str  # one of replay.MODES
    path: str | None  # None only for "off"


@dataclass(frozen=True)
class SessionFollow:
    session: str
    last_event_id: str | None  # an id of the session's stream (job_feed.EVENT_ID), to resume


@dataclass(frozen=True)
class ThreadHead:
    session: str
    name: str
    head: str | None


# -- interactions ------------------------------------------------------------------------------


async def create_interaction(request: Incoming) -> NewInteraction:
    """POST /interactions."""
    body = json_object(request)
    await bodies.interaction_body(body)
    return NewInteraction(body, *session_headers(request), _header(request, CELL_HEADER, MAX_CELL))


def session_headers(request: Incoming) -> tuple[str | None, str | None]:
    """The kernel's session key and thread name, sent along with a create (or a live socket)."""
    return (
        _header(request, SESSION_HEADER, MAX_SESSION_KEY),
        _header(request, THREAD_HEADER, MAX_THREAD_NAME),
    )


def read_interaction(request: Incoming, interaction_id: str) -> InteractionRead:
    """GET /interactions/{id}?stream&include_input&last_event_id."""
    _no_body(request)
    stream = rules.flag(_query(request, "stream"), "stream")
    last_event_id = _query(request, "last_event_id")
    if last_event_id and not stream:
        raise RequestError("last_event_id needs stream=true", field="last_event_id")
    return InteractionRead(
        rules.resource_id(interaction_id, "interaction id", "an interaction"),
        stream,
        rules.flag(_query(request, "include_input"), "include_input"),
        rules.event_seq(last_event_id),
    )


def interaction(request: Incoming, interaction_id: str) -> str:
    """POST /interactions/{id}/cancel and DELETE /interactions/{id}."""
    _no_body(request)
    return rules.resource_id(interaction_id, "interaction id", "an interaction")


async def create_auth_token(request: Incoming, interaction_id: str) -> dict[str, Any]:
    """POST /interactions/{id}/auth_tokens: {expire_time?, scope?, uses?}."""
    body = json_object(request)
    await bodies.auth_token_body(body)
    rules.resource_id(interaction_id, "interaction id", "an interaction")
    return body


def auth_token(request: Incoming, interaction_id: str, token: str) -> tuple[str, str]:
    """DELETE /interactions/{id}/auth_tokens/{token}."""
    _no_body(request)
    interaction_id = rules.resource_id(interaction_id, "interaction id", "an interaction")
    return interaction_id, rules.name(token, "auth token", MAX_AUTH_TOKEN)


# -- agents and environments -------------------------------------------------------------------


def listing(request: Incoming) -> Page:
    """GET /agents: page_size, page_token."""
    _no_body(request)
    return _page(request)


def list_environments(request: Incoming) -> EnvironmentListing:
    """GET /environments?mode&page_size&page_token. google-genai's EnvironmentListParams
    leaves `mode` open (any string); the modes are the gateway's (environments.MODES)."""
    page = listing(request)
    mode = _query(request, "mode")
    if not mode:
        return EnvironmentListing(page, None)
    if mode.lower() not in MODES:
        raise RequestError(
            f"mode={mode[:32]!r} is not one of {list(MODES)}; leave it out for all", field="mode"
        )
    return EnvironmentListing(page, mode.lower())


async def create_agent(request: Incoming) -> dict[str, Any]:
    """POST /agents."""
    body = json_object(request)
    await bodies.agent_body(body)
    if body.get("id") is not None:
        rules.resource_id(body["id"], "id", "an agent")
    return body


def agent(request: Incoming, agent_id: str) -> str:
    """GET and DELETE /agents/{id}."""
    _no_body(request)
    return rules.resource_id(agent_id, "agent id", "an agent")


async def create_environment(request: Incoming) -> dict[str, Any]:
    """POST /environments."""
    body = json_object(request)
    await bodies.environment_body(body)
    return body


def environment(request: Incoming, environment_id: str) -> str:
    """GET and DELETE /environments/{id}."""
    _no_body(request)
    return _environment_id(environment_id)


def read_files(request: Incoming, environment_id: str, path: str) -> FilesRead:
    """GET /environments/{id}/files/{path}?alt=media|recursive&page_size&page_token."""
    _no_body(request)
    alt = _query(request, "alt")
    if alt not in (None, "", "json", "media"):
        raise RequestError(
            f"alt={alt[:32]!r} is not served; leave it out for a listing, or alt=media for "
            "the file's bytes",
            field="alt",
        )
    return FilesRead(
        _environment_id(environment_id),
        rules.file_path(path.lstrip("/"), "path"),
        alt == "media",
        rules.flag(_query(request, "recursive"), "recursive"),
        _page(request),
    )


def start_upload(request: Incoming, environment_id: str, path: str) -> UploadStart:
    """PUT /upload/{v}/environments/{id}/files/{path}?overwrite&extract: a resumable start."""
    _no_body(request)
    if _upload_commands(request) != {"start"}:
        raise RequestError(
            "start an upload with X-Goog-Upload-Command: start", field="X-Goog-Upload-Command"
        )
    size = _header(request, "X-Goog-Upload-Header-Content-Length", 20)
    return UploadStart(
        _environment_id(environment_id),
        rules.file_path(path.lstrip("/"), "path"),
        None if size is None else _count(size, "X-Goog-Upload-Header-Content-Length"),
        rules.flag(_query(request, "overwrite"), "overwrite"),
        rules.flag(_query(request, "extract"), "extract"),
    )


def upload_chunk(request: Incoming, environment_id: str, path: str) -> UploadChunk:
    """POST <X-Goog-Upload-URL>: bytes of an upload; the body is the file's, not JSON."""
    _environment_id(environment_id)
    rules.file_path(path.lstrip("/"), "path")
    commands = _upload_commands(request)
    if not commands or not commands <= {"upload", "finalize"}:
        raise RequestError(
            "send a chunk with X-Goog-Upload-Command: upload (and finalize on the last)",
            field="X-Goog-Upload-Command",
        )
    offset = _header(request, "X-Goog-Upload-Offset", 20)
    return UploadChunk(
        rules.resource_id(_query(request, "upload_id") or "", "upload_id", "an upload"),
        0 if offset is None else _count(offset, "X-Goog-Upload-Offset"),
        "finalize" in commands,
    )


# -- models ------------------------------------------------------------------------------------

_MODELS_QUERY = ("pageSize", "pageToken", "filter")  # what the SDK's models.list sends


async def list_models(request: Incoming) -> Page:
    """GET /models?pageSize&pageToken: google-genai's ListModelsConfig, by its wire names.
    The gateway lists everything it runs; it does not filter."""
    _no_body(request)
    query = {name: value for name in _MODELS_QUERY if (value := _query(request, name))}
    await bodies.models_query(query)
    if "filter" in query:
        raise RequestError(
            "filter is not served here: the gateway lists every model and agent it runs; "
            "leave it out and pick from the list",
            field="filter",
        )
    return Page(
        rules.page_token(query.get("pageToken"), "pageToken", "nextPageToken"),
        rules.page_size(query.get("pageSize"), "pageSize"),
        token_key="nextPageToken",
    )


def model(request: Incoming, model_id: str) -> str:
    """GET /models/{id}."""
    _no_body(request)
    return rules.resource_id(model_id, "model id", "a model")


# -- sessions: thread heads and jobs -------------------------------------------------------------


def session(request: Incoming, key: str) -> str:
    """GET /sessions/{key}, GET /sessions/{key}/cassette and DELETE /sessions/{key}/threads."""
    _no_body(request)
    return rules.name(key, "session key", MAX_SESSION_KEY)


def session_events(request: Incoming, key: str) -> SessionFollow:
    """GET /sessions/{key}/events?last_event_id (or a Last-Event-ID header, as EventSource
    sends on reconnect): an id this stream gave. One of another gateway process (or one no
    longer kept) starts again from the session's jobs; anything else is a 400."""
    key = session(request, key)
    for field, last in (
        ("last_event_id", _query(request, "last_event_id")),
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
    ):
        if not last:
            continue
        if EVENT_ID.fullmatch(last) is None:
            raise RequestError(
                f"{field} {last[:64]!r} is not an event id of a session's stream (they look "
                "like 'se_0123abcd_12'); pass the id of the last event you received, or none",
                field=field,
            )
        return SessionFollow(key, last)
    return SessionFollow(key, None)


def thread(request: Incoming, key: str, name: str) -> tuple[str, str]:
    """DELETE /sessions/{key}/threads/{name}."""
    return session(request, key), rules.name(name, "thread name", MAX_THREAD_NAME)


def put_thread(request: Incoming, key: str, name: str) -> ThreadHead:
    """PUT /sessions/{key}/threads/{name} with {"head": "<interaction id>" | null}."""
    body = json_object(request)
    if "head" not in body:
        raise RequestError('send {"head": "<interaction id>"} or {"head": null}', field="head")
    head = body["head"]
    return ThreadHead(
        rules.name(key, "session key", MAX_SESSION_KEY),
        rules.name(name, "thread name", MAX_THREAD_NAME),
        None if head is None else rules.resource_id(head, "head", "an interaction"),
    )


def set_cassette(request: Incoming, key: str) -> CassetteChoice:
    """PUT /sessions/{key}/cassette with {"mode": ..., "path": "/abs/<notebook>.interactions"}.
    Our own route: google-genai has no type for it, so the check is written here."""
    body = json_object(request)
    for field in sorted(set(body) - {"mode", "path"}):
        raise RequestError(f"{field[:32]}: not a cassette setting; send mode and path", field)
    mode, path = body.get("mode"), body.get("path")
    if mode not in CASSETTE_MODES:
        raise RequestError(f"mode: {mode!r:.40} is not one of {list(CASSETTE_MODES)}", "mode")
    if path is None and mode != "off":
        raise RequestError("path: give the cassette's folder, '<notebook>.interactions'", "path")
    return CassetteChoice(
        rules.name(key, "session key", MAX_SESSION_KEY),
        mode,
        None if path is None else rules.file_path(path, "path"),
    )


# -- the parts ----------------------------------------------------------------------------------


def json_object(request: Incoming) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `{}`)."""
    raw = request.body
    if not raw or not raw.strip():
        return {}
    body = loads(raw)
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


def _no_body(request: Incoming) -> None:
    if json_object(request):
        raise RequestError("this route takes no request body; send none")


def _environment_id(value: str) -> str:
    return rules.resource_id(value, "environment id", "an environment")


def _query(request: Incoming, name: str) -> str | None:
    """The last value of a query parameter, as text."""
    values = request.query_arguments.get(name)
    if not values:
        return None
    try:
        return values[-1].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise RequestError(f"query parameter {name} is not UTF-8", field=name) from None


def _header(request: Incoming, name: str, limit: int) -> str | None:
    """A header's value, %-decoded (names and paths may be any text), or None."""
    value = request.headers.get(name)
    if not value:
        return None
    return rules.name(unquote(value), name, limit)


def _page(request: Incoming) -> Page:
    return Page(
        rules.page_token(_query(request, "page_token")),
        rules.page_size(_query(request, "page_size")),
    )


def _upload_commands(request: Incoming) -> set[str]:
    given = request.headers.get("X-Goog-Upload-Command", "")
    commands = {part.strip().lower() for part in given.split(",") if part.strip()}
    unknown = commands - _UPLOAD_COMMANDS
    if unknown:
        raise RequestError(
            f"X-Goog-Upload-Command {sorted(unknown)[0][:32]!r} is not served here; use start, "
            "upload and finalize",
            field="X-Goog-Upload-Command",
        )
    return commands


def _count(value: str, field: str) -> int:
    return int(rules.number(value, field, 0, 2**53, whole=True))
