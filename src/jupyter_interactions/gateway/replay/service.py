"""`Cassettes`: which session (notebook) records or replays into which cassette, and the two
hooks the engine calls: `route` when an interaction is created, `started` once it runs.

Modes, per session:
- `record`: every interaction runs for real and is written to the cassette when it ends;
- `replay`: every interaction is served from the cassette; a request with no match is a 400
  naming the cell, with a diff; nothing runs, nothing reaches Google;
- `auto`: what needs Google while the gateway has no key is served from the cassette (a
  no-match is the same 400); everything else runs for real;
- `off`.
A session's mode is set by the kernel (`%interactions record|replay`), else it follows the
`cassettes` setting for a notebook that has a cassette beside it (the session key is the
notebook's path under Jupyter).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import GatewayConfig
from ...errors import ConfigError, NotFoundError, RequestError
from ...protocol import notebook_cassette
from ..runs.executors import Choose, Route, UpstreamRoute
from ..state.store import Store
from .cassette import Cassette
from .matching import Request, cell_label, no_match_message, request_of
from .player import EnvironmentAliases, Player
from .recorder import NotRecorded, check_secrets, entry_of, follow_events, read_files

log = logging.getLogger(__name__)

MODES = ("record", "replay", "auto", "off")
_WAIT_SECONDS = 30.0  # what a status read waits for recordings of finished interactions


class ReplayMismatch(RequestError):
    """A request that replay has no recording for."""

    code = "replay_no_match"


@dataclass
class SessionCassette:
    """One session's cassette and what it does with it."""

    mode: str
    cassette: Cassette
    origin: str  # "kernel" (set by %interactions) or "notebook" (found beside the notebook)
    aliases: EnvironmentAliases = field(default_factory=EnvironmentAliases)
    problems: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded_mtime: float = -1.0

    async def refresh(self) -> None:
        """Read the cassette again if it changed on disk since (another process recorded)."""
        mtime = await asyncio.to_thread(self.cassette.index_mtime)
        if mtime and mtime != self.loaded_mtime:
            await asyncio.to_thread(self.cassette.load)
            self.loaded_mtime = mtime

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "path": str(self.cassette.path),
            "origin": self.origin,
            "interactions": len(self.cassette.entries),
            "recorded": self.cassette.recorded,
            "problems": list(self.problems),
        }


class Cassettes:
    def __init__(self, config: GatewayConfig, store: Store, environments: Any) -> None:
        if config.cassettes not in MODES:
            raise ConfigError(f"cassettes must be one of {list(MODES)}, not {config.cassettes!r}")
        self.config = config
        self.store = store
        self.environments = environments
        self._kernel: dict[str, SessionCassette | None] = {}  # set by the kernel; None = off
        self._notebooks: dict[str, SessionCassette] = {}
        # The runs followed per session (task -> run), so a status read can wait for the
        # recordings of those that have ended.
        self._following: dict[str, dict[asyncio.Task[None], Any]] = {}

    # -- which cassette a session has ----------------------------------------------------------

    async def active(self, session: str | None) -> SessionCassette | None:
        if not session:
            return None
        if session in self._kernel:
            chosen = self._kernel[session]
        else:
            chosen = await self._beside_notebook(session)
        if chosen is not None:
            await chosen.refresh()
        return chosen

    async def _beside_notebook(self, session: str) -> SessionCassette | None:
        """A notebook's own cassette, as the `cassettes` setting says to use it."""
        mode = self.config.cassettes
        if mode == "off" or not _is_notebook(session):
            return None
        found = self._notebooks.get(session)
        if found is None:
            cassette = Cassette(Path(notebook_cassette(session)))
            if mode != "record" and not await asyncio.to_thread(cassette.exists):
                return None
            found = self._notebooks[session] = SessionCassette(mode, cassette, "notebook")
        return found

    async def set(self, session: str, mode: str, path: str | None) -> dict[str, Any]:
        """Set a session's mode (from the kernel, as http/requests.set_cassette checked it:
        one of MODES, with a path unless "off"); returns its state."""
        if mode == "off" or path is None:
            self._kernel[session] = None
            return {"mode": "off"}
        chosen = SessionCassette(mode, Cassette(Path(path)), "kernel")
        exists = await asyncio.to_thread(chosen.cassette.exists)
        if mode != "record" and not exists:
            raise NotFoundError(
                f"no cassette at {path}: record one first (%interactions record), or name the "
                "folder that holds cassette.json"
            )
        if exists:
            await chosen.refresh()
        self._kernel[session] = chosen
        return chosen.describe()

    async def describe(self, session: str) -> dict[str, Any]:
        """A session's state, once the recordings of its finished interactions are written."""
        following = self._following.get(session, {})
        finishing = [task for task, run in following.items() if run.done.done()]
        if finishing:
            await asyncio.wait(finishing, timeout=_WAIT_SECONDS)
        chosen = await self.active(session)
        return chosen.describe() if chosen is not None else {"mode": "off"}

    # -- the engine's hooks --------------------------------------------------------------------

    async def route(
        self,
        body: dict[str, Any],
        session: str | None,
        cell: str | None,
        route: Choose,
    ) -> Route:
        """Where a new interaction runs: `route()` (the engine's own choice), or a recording."""
        chosen = await self.active(session)
        if chosen is None or chosen.mode in ("record", "off"):
            return await route()
        no_key = None
        if chosen.mode == "auto":
            try:
                return await route()
            except ConfigError as exc:  # it needs Google, and the gateway has no key
                no_key = exc.message
        request = await self._request(body, chosen)
        entry = chosen.cassette.entries.get(request.key)
        if entry is None:
            message = no_match_message(
                request,
                chosen.cassette.entries.values(),
                cell=cell,
                cassette=str(chosen.cassette.path),
                resolve=chosen.cassette.resolve,
            )
            raise ReplayMismatch(f"{message}\n({no_key})" if no_key else message)
        player = Player(
            entry, chosen.cassette, chosen.aliases, self.environments, self.config.replay_pacing
        )
        return UpstreamRoute(player)

    def started(
        self, run: Any, body: dict[str, Any], session: str | None, cell: str | None
    ) -> None:
        """A run began: follow it, to name the environment it makes and, when recording,
        to write it to the cassette once it ends."""
        if not session or not self._may_have(session):
            return
        task = asyncio.ensure_future(self._follow(run, body, session, cell))
        self._following.setdefault(session, {})[task] = run
        task.add_done_callback(lambda done: self._followed(session, done))

    def _may_have(self, session: str) -> bool:
        if session in self._kernel:
            return self._kernel[session] is not None
        return self.config.cassettes != "off" and _is_notebook(session)

    def _followed(self, session: str, task: asyncio.Task[None]) -> None:
        self._following.get(session, {}).pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording failed", exc_info=task.exception())

    async def _follow(self, run: Any, body: dict[str, Any], session: str, cell: str | None) -> None:
        chosen = await self.active(session)
        if chosen is None:
            return
        try:
            request = await self._request(body, chosen)
            events = await follow_events(run)
            environment_id = run.resource.get("environment_id")
            alias = None
            if environment_id:
                alias = chosen.aliases.name(str(environment_id), request.key[:12])
            if chosen.mode == "record":
                async with chosen.lock:
                    await self._record(chosen, request, run, events, cell, alias, body)
        except NotRecorded as exc:
            number = len(chosen.problems) + 1
            chosen.problems.append({"n": number, "cell": cell_label(cell), "message": exc.message})
            log.warning("not recorded: %s", exc.message)

    async def _record(
        self,
        chosen: SessionCassette,
        request: Request,
        run: Any,
        events: list[dict[str, Any]],
        cell: str | None,
        alias: str | None,
        body: dict[str, Any],
    ) -> None:
        environment_id = run.resource.get("environment_id")
        files: list[dict[str, Any]] = []
        blobs: dict[str, bytes] = {}
        who = cell_label(cell) or "an interaction from no known cell"
        if environment_id:
            try:
                source = await self.environments.files(str(environment_id))
                files, blobs = await read_files(source, self.config.cassette_max_file_bytes)
            except Exception as exc:
                raise NotRecorded(
                    f"{who}: not recorded: the agent's files could not be read "
                    f"({type(exc).__name__}: {exc}); run the cell again"
                ) from None
        entry = entry_of(request, run, events, cell=cell, environment_alias=alias, files=files)
        known = await self._known_secrets(body, environment_id)
        found = check_secrets(entry, blobs, known)
        if found is not None:
            raise NotRecorded(
                f"{who}: not recorded: {found.what} would have been written to "
                f"{chosen.cassette.path} (in {found.where}). Take it out of the input, the "
                "answer or the agent's files and run the cell again, or stop recording "
                "(%interactions cassette off)"
            )
        try:
            await asyncio.to_thread(chosen.cassette.write, entry, blobs)
        except OSError as exc:
            raise NotRecorded(
                f"{who}: not recorded: cannot write {exc.filename}: {exc.strerror}"
            ) from None
        chosen.loaded_mtime = await asyncio.to_thread(chosen.cassette.index_mtime)

    async def _known_secrets(self, body: dict[str, Any], environment_id: Any) -> dict[str, str]:
        """The secrets this gateway knows that could leak into a recording."""
        known: dict[str, str] = {}
        if self.config.gemini_api_key:
            known["the gateway's Gemini key"] = str(self.config.gemini_api_key)
        if self.config.token:
            known["the gateway's token"] = str(self.config.token)
        environment = body.get("environment")
        if isinstance(environment, dict):
            for name, value in (environment.get("env") or {}).items():
                value = value.get("value") if isinstance(value, dict) else value
                known[f"the value of environment variable {name}"] = str(value or "")
            network = environment.get("network")
            rules = network.get("allowlist") or [] if isinstance(network, dict) else []
            for rule in rules:
                transform = rule.get("transform") if isinstance(rule, dict) else None
                for header, value in (transform or {}).items():
                    known[f"the {header} header of the network allowlist"] = str(value)
        if environment_id:
            try:
                variables = await self.environments.variables(str(environment_id))
            except Exception:  # an environment on Google's service keeps its own
                variables = {}
            for name, value in variables.items():
                known[f"the value of environment variable {name}"] = value
        return known

    async def _request(self, body: dict[str, Any], chosen: SessionCassette) -> Request:
        previous = body.get("previous_interaction_id")
        chain = await self.store.chain(str(previous)) if previous else []
        return request_of(body, chain, chosen.aliases.alias_of)

    async def close(self) -> None:
        """Wait (briefly) for recordings under way; the engine has stopped every run."""
        tasks = [task for following in self._following.values() for task in following]
        if tasks:
            await asyncio.wait(tasks, timeout=_WAIT_SECONDS)


def _is_notebook(session: str) -> bool:
    """Under Jupyter the session key is the notebook's absolute path."""
    return os.path.isabs(session) and session.endswith(".ipynb")
