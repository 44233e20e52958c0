"""Seeded mutations of wire requests, from plausible (one field of another type) to hostile
(NaN, lone surrogates, 5,000-deep nesting, 300-byte names, invalid UTF-8, bodies past the
limit). `Mutator(seed).request(seeds, ids)` gives one request; the same seed gives the same
sequence of choices."""

from __future__ import annotations

import json
import random
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tests.reliability.wire_seeds import Seed


@dataclass(frozen=True)
class Raw:
    """JSON text that json.dumps cannot write: NaN, 1e999, a lone surrogate escape, ..."""

    text: str


DEEP = 5000
# Values a field might receive from a careless or hostile client.
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    5,
    2**31,
    2**63 - 1,
    Raw(str(2**63)),
    Raw(str(-(2**63) - 1)),
    Raw("1" + "0" * 24),
    1.5,
    -0.0,
    1e308,
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e999"),
    "",
    " ",
    "x" * 10_000,
    "\x00",
    Raw('"\\ud800"'),
    Raw('"a\\udfffb"'),
    "\U0001f600",
    "\u00b2",
    "ev_\u00b2",
    "ev_" + "9" * 23,
    "nan",
    "inf",
    "-1e999",
    "true",
    "USER_INPUT",
    "../../../etc/passwd",
    "/etc/passwd",
    "a" * 300,
    "environments/env_x",
    # The echo model's function-call syntax, with arguments JSON cannot carry.
    'call get_weather {"city": NaN}',
    'call get_weather {"t": 1e999}',
    'call get_weather {"t": -Infinity, "u": [1e400]}',
    {},
    [],
    [None],
    {"type": "nope"},
    {"type": "user_input", "content": 5},
    Raw("[" * 150 + "]" * 150),
    Raw("[" * DEEP + "]" * DEEP),
    Raw('{"a":' * 120 + "1" + "}" * 120),
]
HOSTILE_IDS = [
    "a" * 300,
    "%00",
    "%ff",
    "%ED%A0%80",
    "..",
    "%2E%2E",
    "%2Fetc%2Fpasswd",
    "%C2%B2",
    "x%20y",
    "int_" + "f" * 200,
    "%F0%9F%98%80",
    "-",
    "%0A",
]
HOSTILE_PATHS = [
    "a" * 300,
    "workspace/" + "b" * 256,
    "/".join(["d"] * 2100),
    "../../etc/passwd",
    "%2E%2E/%2E%2E/etc",
    "workspace/%00x",
    "workspace/%ff",
    "//etc/passwd",
    "workspace/trap?",
    "",
]
HOSTILE_QUERY = [
    "10" + "0" * 24,
    "-1",
    "0",
    "ev_%C2%B2",
    "ev_" + "1" * 23,
    "ev_-1",
    "TRUE",
    "yes",
    "",
    "%ff",
    "%00",
    "1e999",
    "NaN",
    "x" * 5000,
    "self_hosted",
    "ON_DEMAND",
]
QUERY_NAMES = [
    "stream",
    "include_input",
    "last_event_id",
    "page_size",
    "page_token",
    "alt",
    "recursive",
    "overwrite",
    "extract",
    "upload_id",
    "parent",
    "key",
    "mode",
    "pageSize",
    "pageToken",
    "filter",
]
HEADER_NAMES = [
    "x-interactions-session",
    "x-interactions-thread",
    "x-interactions-cell",
    "X-Goog-Upload-Command",
    "X-Goog-Upload-Offset",
    "X-Goog-Upload-Header-Content-Length",
    "Last-Event-ID",
    "content-type",
]
HOSTILE_HEADERS = [
    "a" * 3000,
    "%00",
    "%ff",
    "%ED%A0%80",
    "\u00b2",
    "-1",
    "1" + "0" * 30,
    "start, upload, finalize",
    "cancel",
    "query",
    "finalize",
    "",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
FIELD_NAMES = [
    *("model", "agent", "input", "stream", "background", "store", "environment"),
    *("previous_interaction_id", "agent_config", "generation_config", "tools", "head", "id"),
    *("sources", "base_environment", "from_environment", "environment_id", "mode"),
    "\ud800",
]


class Mutator:
    def __init__(self, seed: int, body_limit: int) -> None:
        self.random = random.Random(seed)
        self.body_limit = body_limit

    def request(self, seeds: list[Seed], ids: dict[str, list[str]]) -> Seed:
        """One request: a seed, its placeholders filled, then 0-3 mutations."""
        pick = self.random
        base = pick.choice(seeds)
        request = Seed(base.method, base.target, dict(base.headers), base.body)
        request = self._fill(request, ids)
        for _ in range(pick.choice([0, 1, 1, 1, 2, 2, 3])):
            mutate = pick.choice(
                [self._body] * 6
                + [self._raw_body] * 2
                + [self._path] * 2
                + [self._query] * 3
                + [self._header] * 2
                + [self._method, self._version]
            )
            request = mutate(request)
        return request

    def message(self, text: bytes, ids: dict[str, list[str]]) -> bytes:
        """A live socket's event (JSON text), its placeholders filled, then 0-2 mutations of
        its JSON or its bytes (kept under the body limit: a socket message has its own)."""
        message = self._fill(Seed("WS", "", {}, text), ids)
        for _ in range(self.random.choice([0, 1, 1, 2])):
            mutate = self.random.choice([self._body] * 4 + [self._raw_body])
            message = mutate(message)
        return message.body[: self.body_limit]

    # -- placeholders ---------------------------------------------------------------------------

    def _fill(self, request: Seed, ids: dict[str, list[str]]) -> Seed:
        target, body = request.target, request.body.decode("utf-8", "replace")
        for placeholder in ("{interaction}", "{environment}", "{agent}", "{upload}"):
            while placeholder in target:
                target = target.replace(placeholder, self._id(ids.get(placeholder)), 1)
            while placeholder in body:
                body = body.replace(placeholder, self._id(ids.get(placeholder), quoted=True), 1)
        return Seed(request.method, target, request.headers, body.encode())

    def _id(self, live: list[str] | None, quoted: bool = False) -> str:
        if live and self.random.random() < 0.9:
            return self.random.choice(live[-50:])
        hostile = self.random.choice(HOSTILE_IDS)
        return urllib.parse.unquote(hostile) if quoted else hostile

    # -- mutations ------------------------------------------------------------------------------

    def _body(self, request: Seed) -> Seed:
        """Change one place of a JSON body (or make one)."""
        pick = self.random
        try:
            value = json.loads(request.body) if request.body.strip() else {}
        except (ValueError, RecursionError):  # a body an earlier mutation damaged
            value = {}
        places = list(_places(value))
        path, node = pick.choice(places)
        action = pick.random()
        if path and action < 0.6:
            value = _replace(value, path, pick.choice(HOSTILE_VALUES))
        elif path and action < 0.75:
            value = _replace(value, path, _DELETE)
        elif isinstance(node, dict):
            key = pick.choice(FIELD_NAMES)
            node[key] = pick.choice(HOSTILE_VALUES)
        elif isinstance(node, list):
            node.append(pick.choice(HOSTILE_VALUES))
        else:
            value = _replace(value, path, pick.choice(HOSTILE_VALUES)) if path else value
        return Seed(request.method, request.target, request.headers, dumps(value).encode())

    def _raw_body(self, request: Seed) -> Seed:
        """Damage the bytes: cut, invalid UTF-8, not an object, past the size limit."""
        pick = self.random
        body = request.body
        choice = pick.randrange(8)
        if choice == 0 and body:
            body = body[: pick.randrange(len(body))]
        elif choice == 1:
            at = pick.randrange(len(body) + 1)
            body = body[:at] + pick.choice([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00"]) + body[at:]
        elif choice == 2:
            body = pick.choice([b"null", b"[]", b"5", b'"x"', b"NaN", b"\xef\xbb\xbf{}", b"{"])
        elif choice == 3:
            body = b'{"input": "' + b"x" * (self.body_limit + 1000) + b'"}'
        elif choice == 4:
            body = b"[" * DEEP + b"]" * DEEP
        elif choice == 5:
            body = body + body
        elif choice == 6:
            body = b'{"model": "echo", "model": 5, "input": "dup"}'
        else:
            body = b""
        return Seed(request.method, request.target, request.headers, body)

    def _path(self, request: Seed) -> Seed:
        """A path segment (an id or a file path) made hostile."""
        path, _, query = request.target.partition("?")
        parts = path.split("/")
        if "files" in parts and self.random.random() < 0.6:
            at = parts.index("files")
            path = "/".join([*parts[: at + 1], self.random.choice(HOSTILE_PATHS)])
        else:
            at = self.random.randrange(1, len(parts))
            parts[at] = self.random.choice(HOSTILE_IDS)
            path = "/".join(parts)
        return Seed(
            request.method, path + ("?" + query if query else ""), request.headers, request.body
        )

    def _query(self, request: Seed) -> Seed:
        path, _, query = request.target.partition("?")
        pairs = [p for p in query.split("&") if p]
        name = self.random.choice(QUERY_NAMES)
        pairs = (
            [p for p in pairs if not p.startswith(name + "=")]
            if self.random.random() < 0.7
            else pairs
        )
        pairs.append(f"{name}={self.random.choice(HOSTILE_QUERY)}")
        return Seed(request.method, f"{path}?{'&'.join(pairs)}", request.headers, request.body)

    def _header(self, request: Seed) -> Seed:
        headers = dict(request.headers)
        headers[self.random.choice(HEADER_NAMES)] = self.random.choice(HOSTILE_HEADERS)
        return Seed(request.method, request.target, headers, request.body)

    def _method(self, request: Seed) -> Seed:
        return Seed(self.random.choice(METHODS), request.target, request.headers, request.body)

    def _version(self, request: Seed) -> Seed:
        version = self.random.choice(
            ["v1beta", "v1alpha", "v1beta1/projects/p/locations/l", "v9", "v1beta1/projects/%ff"]
        )
        target = request.target.replace("/v1/", f"/{version}/", 1)
        return Seed(request.method, target, request.headers, request.body)


_DELETE = object()


def _places(value: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, node) in a JSON value, the root included."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        found.append((path, node))
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    parent = value
    for part in path[:-1]:
        parent = parent[part]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return value


def dumps(value: Any) -> str:
    """JSON text with `Raw` pieces written as given."""
    raws: list[str] = []

    def default(item: Any) -> str:
        if isinstance(item, Raw):
            raws.append(item.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(type(item).__name__)

    text = json.dumps(value, default=default)
    for index, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{index}\\u0000"', raw)
    return text
