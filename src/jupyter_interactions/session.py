"""Session and Thread: the Python API that the magics wrap (a turn's Reply is reply.py's, a
background Job jobs.py's).

A Session is keyed to the kernel (the notebook path when Jupyter gives one), so the
gateway's record of its threads and jobs survives a kernel restart. Threads continue through
`previous_interaction_id`; a failed turn never becomes a thread's head.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from . import config
from .client import LocalHeads, SessionRoutes, build_client, map_error
from .errors import GatewayError, InteractionFailed, InteractionsError, Interrupted, RequestError
from .job_watch import JobWatch
from .jobs import Job
from .launch import Connection, connect
from .protocol import CELL_HEADER, TERMINAL
from .recording import CassetteState, cassette_path
from .render.bundle import live_bundle
from .render.listing import Listing, Note
from .render.live import LiveView, rich_view
from .render.transcript import Part, Transcript
from .reply import Reply, failure_message
from .streaming import TurnStream
from .tools import (
    MAX_TOOL_ROUNDS,
    follow_up,
    result_part,
    run_function,
    too_many_rounds,
    tool_declarations,
)

if sys.version_info >= (3, 12):
    from typing import Unpack
else:
    from typing_extensions import Unpack

DEFAULT_THREAD = "default"
DEFAULT_GEMINI_MODEL = "gemini-flash-latest"

log = logging.getLogger(__name__)


def kernel_key() -> str:
    """The notebook path when Jupyter provides it, else the kernel id, else ipython-<pid>."""
    name = config.notebook_session_name()
    if name:
        return name
    try:
        from ipykernel.connect import get_connection_file

        stem = os.path.basename(get_connection_file())
        if stem.startswith("kernel-") and stem.endswith(".json"):
            return stem[len("kernel-") : -len(".json")]
    except Exception:  # not inside a kernel: a plain IPython shell or a script
        pass
    return f"ipython-{os.getpid()}"


def default_model() -> str:
    """Offline unless a Gemini key is set in the kernel's environment."""
    return DEFAULT_GEMINI_MODEL if config.gemini_api_key() else "local"


class ThreadTurnOptions(TypedDict, total=False):
    """A turn's options other than `thread`: the keywords of `Thread.ask` and `Thread.start`
    (the thread is theirs). `help(TurnOptions)` says what each does."""

    model: str | None
    agent: str | None
    new: bool
    parent: str | None
    system: str | None
    tools: Iterable[Any] | None
    agent_config: dict[str, Any] | None
    environment: str | dict[str, Any] | None
    max_output_tokens: int | None


class ThreadStartOptions(ThreadTurnOptions, total=False):
    """`Thread.start`'s keywords: a turn's options but `thread`, and `Session.start`'s
    `show`."""

    show: bool


class ThreadAskOptions(ThreadStartOptions, total=False):
    """`Thread.ask`'s keywords: `Thread.start`'s, and `Session.ask`'s `stream`."""

    stream: bool


class TurnOptions(ThreadTurnOptions, total=False):
    """The options of a turn, as keywords of `Session.ask` and `Session.start` (and a
    Thread's, but for `thread`); each may be left out:

    - `model`: the model that answers. Default: the session's, else `default_model()`
      (Gemini with a GEMINI_API_KEY, else "local"). Give a model or an agent, not both.
    - `agent`: an agent to run the turn instead (e.g. "local-agent"). Default: the
      session's, when no model is given.
    - `thread`: the conversation the turn belongs to (default "default"); the turn
      continues the thread's head, and if answered becomes its new head.
    - `new`: start the thread afresh instead of continuing its head.
    - `parent`: continue from this earlier interaction id instead of the thread's head.
    - `system`: a system instruction.
    - `tools`: built-in tool names, tool declarations (dicts) or Python functions; `ask`
      runs the functions here and sends their results back.
    - `agent_config`: the agent's settings, e.g. `{"type": "dynamic", "max_total_tokens":
      5000}`.
    - `environment`: where an agent works: an environment id, or a dict that describes one.
      For agents only.
    - `max_output_tokens`: caps a model's answer (generation_config); past it the turn
      ends `incomplete` with what came. For models only: an agent's turns are capped in its
      `agent_config`.
    """

    thread: str


class Thread:
    """A named conversation in a session; `head` is the interaction the next turn continues."""

    def __init__(self, session: Session, name: str, record: dict[str, Any] | None = None) -> None:
        record = record or {}
        self.session = session
        self.name = name
        self.head: str | None = record.get("head")
        self.model: str | None = record.get("model")
        self.agent: str | None = record.get("agent")
        self.turns: int = int(record.get("turns") or 0)
        self.updated: str | None = record.get("updated")

    # The keywords, and their defaults, are the Session's: these only add the thread.
    def ask(self, input: Any, **options: Unpack[ThreadAskOptions]) -> Reply:
        """One turn in this thread: `Session.ask(input, thread=name, ...)`."""
        return self.session.ask(input, thread=self.name, **options)

    def start(self, input: Any, **options: Unpack[ThreadStartOptions]) -> Job:
        """A background turn in this thread: `Session.start(input, thread=name, ...)`."""
        return self.session.start(input, thread=self.name, **options)

    def fork(self, from_id: str) -> None:
        """Continue this thread from the earlier interaction `from_id`."""
        self.session.fork(self.name, from_id)

    def reset(self) -> None:
        """Forget this thread: its next turn starts a new conversation."""
        self.session.reset(self.name)

    def __repr__(self) -> str:
        return f"Thread({self.name!r}, head={self.head!r}, turns={self.turns})"


class Session:
    """Runs interactions for one kernel. `Session()` finds (or starts) the gateway lazily."""

    max_tool_rounds = MAX_TOOL_ROUNDS  # rounds of function results one `ask` sends back

    def __init__(
        self,
        key: str | None = None,
        *,
        model: str | None = None,
        agent: str | None = None,
        direct: bool = False,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self.key = key or kernel_key()
        self.model = model
        self.agent = agent
        self.direct = direct
        self._url, self._token = url, token
        self._connection: Connection | None = None
        self._client: Any = None
        self._routes: SessionRoutes | LocalHeads | None = None
        self._heads: dict[str, dict[str, Any]] | None = None
        self._jobs: dict[str, Job] = {}
        self._watch: JobWatch | None = None  # watches the jobs nobody displays
        self._lock = threading.RLock()
        self.cell: str | None = None  # the cell running now ("<count> <id>"), sent with requests
        self.last_environment_id: str | None = None  # the latest agent reply's environment

    def __repr__(self) -> str:
        return f"Session({self.key!r}, direct={self.direct})"

    # --- plumbing --------------------------------------------------------------------------

    def _drop_if_gone(self) -> None:
        if self._connection is not None and not self._connection.alive:
            self._forget_connection()  # e.g. a gateway that exited when idle: find another

    @property
    def connection(self) -> Connection:
        """Where interactions go: found (or a gateway started) on first use, and again after
        the gateway it named went away."""
        with self._lock:
            self._drop_if_gone()
            if self._connection is None:
                self._connection = connect(self.direct, self._url, self._token)
            return self._connection

    @property
    def client(self) -> Any:
        """The google-genai client for the connection (built once per connection)."""
        with self._lock:
            self._drop_if_gone()
            if self._client is None:
                self._client = build_client(self.connection, self.key)
            return self._client

    @property
    def routes(self) -> SessionRoutes | LocalHeads:
        """The gateway's record of this session's threads and jobs (direct: a local file)."""
        with self._lock:
            self._drop_if_gone()
            if self._routes is None:
                self._routes = (
                    LocalHeads(self.key)
                    if self.direct
                    else SessionRoutes(self.connection, self.key)
                )
            return self._routes

    def close(self) -> None:
        """Stop following and watching jobs (they go on server-side) and close the
        connections."""
        for job in list(self._jobs.values()):
            job.detach()
        with self._lock:
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        if self._routes is not None:
            self._routes.close()
        if self._client is not None:
            self._client.close()
        self._client = self._routes = None

    def _state(self) -> dict[str, Any]:
        try:
            state = self.routes.get()
        except InteractionsError as exc:
            raise self.as_error(exc) from None
        with self._lock:
            self._heads = {t["name"]: t for t in state.get("threads", [])}
        return state

    def _head(self, thread: str) -> str | None:
        # A job of this thread that nothing in this kernel follows (a widget's page does) may
        # have moved the head on the server since: ask it.
        unsettled = any(j.thread == thread and not j.done() for j in self._jobs.values())
        if self._heads is None or unsettled:
            self._state()
        return (self._heads or {}).get(thread, {}).get("head")

    def advance(self, thread: str, head: str, model: str | None, agent: str | None) -> None:
        """Record that a turn by `model` or `agent` ended answered as `head`: the thread's next
        turn continues from it (the gateway moved its own record already; direct mode keeps
        the heads here)."""
        with self._lock:
            heads = self._heads if self._heads is not None else {}
            entry = heads.setdefault(thread, {"name": thread, "turns": 0})
            entry.update(head=head, model=model, agent=agent, turns=int(entry["turns"]) + 1)
            self._heads = heads
            if isinstance(self.routes, LocalHeads):
                self.routes.set_head(thread, head, model=model, agent=agent, turns=entry["turns"])

    def complete_steps(self, transcript: Transcript) -> None:
        """Fetch the finished interaction's steps when its code results may hold images
        (plots), which a stream cannot carry. Best effort: the text is already complete."""
        if not (transcript.interaction_id and transcript.done and transcript.lacks_result_images()):
            return
        try:
            transcript.take_steps(self.client.interactions.get(transcript.interaction_id))
        except Exception as exc:  # the answer stands without its images
            log.debug("could not fetch the steps of %s: %s", transcript.interaction_id, exc)

    def as_error(self, exc: BaseException, interaction_id: str | None = None) -> InteractionsError:
        """`exc` (from the SDK or our routes) as one of our errors, to raise, naming
        `interaction_id` if the call was about one. A gateway that cannot be reached is
        forgotten, so the next call finds (or starts) one again."""
        connection = self._connection
        if connection is None:  # finding the gateway itself failed
            error = exc if isinstance(exc, InteractionsError) else InteractionsError(str(exc))
            error.interaction_id = error.interaction_id or interaction_id
            return error
        error = map_error(exc, connection, interaction_id)
        if isinstance(error, GatewayError) and connection.origin != "explicit":
            self._forget_connection()  # the next call finds (or starts) a gateway again
        return error

    def _forget_connection(self) -> None:
        with self._lock:
            if self._routes is not None:
                self._routes.close()
            if self._client is not None:
                self._client.close()
            self._connection = self._client = self._routes = None

    # --- requests --------------------------------------------------------------------------

    def _create_args(
        self, input: Any, thread: str, options: TurnOptions
    ) -> tuple[dict[str, Any], dict[str, Callable[..., Any]]]:
        """The SDK's create arguments for a turn in `thread`, and the Python functions among
        its tools (by name)."""
        unknown = sorted(options.keys() - TurnOptions.__optional_keys__)
        if unknown:  # what a signature of named keywords would have refused
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r}; a turn's options are "
                f"{', '.join(TurnOptions.__annotations__)} (see TurnOptions)"
            )
        model, agent = options.get("model"), options.get("agent")
        environment = options.get("environment")
        max_output_tokens = options.get("max_output_tokens")
        if model and agent:
            raise RequestError("give either a model or an agent, not both", "agent")
        agent = agent or (None if model else self.agent)
        model = None if agent else (model or self.model or default_model())
        args: dict[str, Any] = {"input": input}
        if agent:
            args["agent"] = agent
            if options.get("agent_config"):
                args["agent_config"] = options["agent_config"]
            if environment is not None:
                args["environment"] = environment
        elif environment is not None:
            raise RequestError(
                "an environment is for agents: choose one, e.g. agent='local-agent' "
                "(--agent local-agent)",
                "environment",
            )
        else:
            args["model"] = model
        if max_output_tokens is not None:
            if agent:
                raise RequestError(
                    "max_output_tokens is for models; an agent's turns are capped in its "
                    'agent_config, e.g. {"type": "dynamic", "max_output_tokens": 200}',
                    "max_output_tokens",
                )
            if max_output_tokens < 1:
                raise RequestError(
                    f"max_output_tokens must be 1 or more, not {max_output_tokens}",
                    "max_output_tokens",
                )
            args["generation_config"] = {"max_output_tokens": max_output_tokens}
        previous = options.get("parent") or (None if options.get("new") else self._head(thread))
        if previous:
            args["previous_interaction_id"] = previous
        if options.get("system"):
            args["system_instruction"] = options["system"]
        declared, functions = tool_declarations(options.get("tools") or ())
        if declared:
            args["tools"] = declared
        if not self.direct:
            args["extra_headers"] = {"x-interactions-thread": thread}
            if self.cell:
                args["extra_headers"][CELL_HEADER] = self.cell
        return args, functions

    def ask(
        self,
        input: Any,
        *,
        stream: bool = True,
        show: bool = False,
        **options: Unpack[TurnOptions],
    ) -> Reply:
        """One turn in `thread` (continuing its head unless `new`, or from `parent`). The
        `options` are model, agent, thread, new, parent, system, tools, agent_config,
        environment and max_output_tokens: `help(TurnOptions)` says what each does.

        With `show`, text streams into a live display (unless not `stream`) and the final
        display is published; function tools given as Python callables are run here and their
        results sent back. Interrupted (KeyboardInterrupt), the turn is cancelled on the
        server and `Interrupted` is raised, carrying what came before; the thread is unchanged.
        """
        thread = options.get("thread", DEFAULT_THREAD)
        args, functions = self._create_args(input, thread, options)
        # A widget run view when a widget front end is live, else the Markdown live view.
        rich = rich_view("run", session=self, thread=thread) if show else None
        view = LiveView() if show and stream and rich is None else None
        try:
            transcript, ids = self._converse(args, functions, thread, view, rich)
        except Interrupted as interrupted:
            if show and rich is None and interrupted.reply is not None:
                interrupted.reply.show()  # what came before the interrupt stays in the cell
            raise
        if not transcript.answered:
            raise InteractionFailed(
                failure_message(transcript), transcript.interaction_id, transcript.status
            )
        self.advance(thread, transcript.interaction_id or "", transcript.model, transcript.agent)
        reply = Reply(transcript, thread=thread, interaction_ids=ids, session=self)
        if show and rich is None:
            reply.show()
        return reply

    def _converse(
        self,
        args: dict[str, Any],
        functions: dict[str, Callable[..., Any]],
        thread: str,
        view: LiveView | None,
        rich: Any,
    ) -> tuple[Transcript, list[str]]:
        """Turns until the model answers: each function-call round is run here and answered.
        `view` (Markdown) or `rich` (a widget run view), if any, shows them live."""
        ids: list[str] = []
        earlier: list[Part] = []
        transcript = Transcript()
        try:
            for rounds in range(self.max_tool_rounds + 1):
                transcript = Transcript(earlier=earlier)
                try:
                    self._turn(args, transcript, view, rich)
                except Interrupted as interrupted:  # what came, for the cell and the caller
                    named = [transcript.interaction_id] if transcript.interaction_id else []
                    interrupted.reply = Reply(
                        transcript, thread=thread, interaction_ids=ids + named, session=self
                    )
                    raise
                self.complete_steps(transcript)
                if transcript.interaction_id:
                    ids.append(transcript.interaction_id)
                calls = transcript.function_calls()
                if transcript.status != "requires_action" or not calls or not functions:
                    break
                if rounds == self.max_tool_rounds:
                    raise too_many_rounds(rounds, transcript.interaction_id)
                if view is not None:
                    view.shared_cell()  # the functions may print into the cell
                results = [run_function(functions, call) for call in calls]
                earlier = [*transcript.ordered(), *(result_part(r) for r in results)]
                args = follow_up(args, transcript.interaction_id, results)
        finally:
            if view is not None:
                view.clear()
            if transcript.environment_id:
                self.last_environment_id = transcript.environment_id
            if rich is not None:  # its final state before the cell returns, interrupted too
                rich.finish(transcript)
        return transcript, ids

    def _turn(
        self, args: dict[str, Any], transcript: Transcript, view: LiveView | None, rich: Any
    ) -> None:
        """One create, streamed into `transcript` (always streamed, so the server names the
        interaction at once and an interrupt can cancel it); `view`, if any, shows it live;
        `rich` (a widget view) gets each event from the worker that reads the stream."""
        on_event = None
        if rich is not None:

            def on_event(event: Any) -> None:
                rich.feed(transcript.interaction_id, event)

        stream = TurnStream(
            lambda: self.client.interactions.create(**args, stream=True),
            transcript,
            lambda interaction_id: self.cancel(interaction_id).status,
            on_event,
        ).start()
        on_change, interval = None, 0.0
        if view is not None:
            interval = view.throttle.interval  # wait() calls at this pace: no need to throttle

            def on_change() -> None:
                view.update(lambda: live_bundle(transcript), force=True)

        try:
            stream.wait(on_change, interval)
            return
        except KeyboardInterrupt:
            message = stream.stop()
        except Exception as exc:
            raise self.as_error(exc, transcript.interaction_id) from None
        if transcript.answered:  # it ended before the cancel: the server moved the head
            self._heads = None
        raise Interrupted(message, transcript.interaction_id) from None

    def start(self, input: Any, *, show: bool = False, **options: Unpack[TurnOptions]) -> Job:
        """Start a background interaction and return its Job at once. The `options` are
        `ask`'s (`help(TurnOptions)`), but Python functions among the tools are not run."""
        thread = options.get("thread", DEFAULT_THREAD)
        args, _ = self._create_args(input, thread, options)
        try:
            interaction = self.client.interactions.create(**args, background=True)
        except Exception as exc:
            raise self.as_error(exc) from None
        job = Job(
            self, interaction.id, thread=thread, model=args.get("model"), agent=args.get("agent"),
            status=interaction.status, created=interaction.created,
        )  # fmt: skip
        self._jobs[job.id] = job
        # A widget view follows the job itself (from the page, or a kernel thread that only
        # forwards events); the job is then watched only when asked for its result. A live
        # Markdown card needs every event: the job follows its own stream. Else it is watched.
        rich = rich_view("job", session=self, job=job) if show else None
        if rich is None:
            job.keep_followed(show)
        return job

    def watch(self, job: Job) -> bool:
        """Have the session's watcher follow `job` through the gateway's feed of this
        session's job changes (one stream for all the jobs nobody displays); False in direct
        mode, where Google keeps no such feed."""
        if self.direct:
            return False
        with self._lock:
            if self._watch is None:
                self._watch = JobWatch(self)
            watch = self._watch
        watch.add(job)
        return True

    def cancel(self, interaction_id: str) -> Note:
        """Ask the server to stop a running interaction; the Note says what became of it
        (`.status`: `cancelled`, or how it had already ended)."""
        try:
            interaction = self.client.interactions.cancel(interaction_id)
        except Exception as exc:
            error = self.as_error(exc, interaction_id)
            if not isinstance(error, RequestError):
                raise error from None
            try:  # refused: say so if it had already ended
                status = self.client.interactions.get(interaction_id).status
            except Exception:
                raise error from None
            if status not in TERMINAL:
                raise error from None
            return Note(f"{interaction_id} had already ended ({status}): nothing to cancel", status)
        return Note(f"cancelled {interaction_id}", interaction.status)

    # --- state -----------------------------------------------------------------------------

    def cassette(self, mode: str | None = None, path: str | None = None) -> CassetteState:
        """Record this notebook's interactions into a cassette, replay them from it, or stop:
        `mode` is "record", "replay", "auto" (replay only what needs Google while the gateway
        has no key) or "off"; `path` defaults to `<notebook>.interactions` beside the notebook.
        Without a mode, the current state (after the recordings of finished turns are written)."""
        if self.direct:
            raise RequestError("record and replay happen in the gateway: drop --direct to use them")
        setting = None
        if mode is not None:
            setting = {
                "mode": mode,
                "path": None if mode == "off" else cassette_path(path, self.key),
            }
        routes = self.routes
        assert isinstance(routes, SessionRoutes)
        try:
            return CassetteState(routes.cassette(setting))
        except GatewayError as exc:
            raise self.as_error(exc) from None

    def thread(self, name: str = DEFAULT_THREAD) -> Thread:
        """The thread `name` as last known (its head, model or agent, turns)."""
        if self._heads is None:
            self._state()
        return Thread(self, name, (self._heads or {}).get(name))

    def threads(self) -> list[Thread]:
        """This session's threads as the gateway has them now, by name."""
        self._state()
        return [Thread(self, name, record) for name, record in sorted((self._heads or {}).items())]

    def threads_table(self) -> Listing:
        """The threads as a table (thread, head, model/agent, turns, updated)."""
        rows = [[t.name, t.head, t.agent or t.model, t.turns, t.updated] for t in self.threads()]
        return Listing("threads", ["thread", "head", "model/agent", "turns", "updated"], rows)

    def files_table(self, environment_id: str) -> Listing:
        """An environment's files as a table (path, bytes, modified)."""
        try:
            with warnings.catch_warnings():  # the SDK calls environments experimental
                warnings.filterwarnings("ignore", "Environments usage", UserWarning)
                listing = self.client.environments.files.list(
                    environment_id, "", recursive=True, page_size=1000
                )
        except Exception as exc:
            raise self.as_error(exc) from None
        rows = [
            [f.path, f.size_bytes, f.modified] for f in listing.files or [] if f.type != "directory"
        ]
        return Listing(f"files in {environment_id}", ["path", "bytes", "modified"], rows)

    def files(self, environment_id: str | None = None) -> Any:
        """An environment's files (default: the latest agent reply's): a file browser widget
        when a widget front end is live, else a table."""
        environment_id = environment_id or self.last_environment_id
        if not environment_id:
            raise RequestError(
                "no environment yet: name one (%interactions files ENV), or run an agent first"
            )
        view = rich_view("files", session=self, environment_id=environment_id)
        return view if view is not None else self.files_table(environment_id)

    def fork(self, thread: str, from_id: str) -> None:
        """Point `thread` at an earlier interaction; the next turn continues from there."""
        self.routes.set_head(thread, from_id)
        self._heads = None

    def reset(self, thread: str | None = None) -> None:
        """Forget one thread, or all of this session's threads."""
        self.routes.delete(thread)
        self._heads = None

    def jobs(self) -> list[dict[str, Any]]:
        """This session's jobs, as the gateway records them (including before a restart)."""
        records = {j["id"]: dict(j) for j in self._state().get("jobs", [])}
        for job_id, job in self._jobs.items():
            records.setdefault(job_id, {"id": job_id, "thread": job.thread})
            records[job_id].update(status=job.status, model=job.model, agent=job.agent)
        return list(records.values())

    def jobs_table(self) -> Listing:
        """The jobs as a table (job, status, thread, model/agent, created)."""
        rows = [
            [j["id"], j.get("status"), j.get("thread"), j.get("agent") or j.get("model"),
             j.get("created")]
            for j in self.jobs()
        ]  # fmt: skip
        return Listing("jobs", ["job", "status", "thread", "model/agent", "created"], rows)

    def job(self, job_id: str, show: bool = False) -> Job:
        """The Job for an id: the live one, or a new one re-attached to the gateway (shown, or
        not among this session's jobs: following its stream; else watched)."""
        job = self._jobs.get(job_id)
        if job is None:
            record = next((j for j in self.jobs() if j["id"] == job_id), {})
            job = Job(
                self, job_id, thread=record.get("thread"), model=record.get("model"),
                agent=record.get("agent"), status=record.get("status"),
                created=record.get("created"), listed=bool(record),
            )  # fmt: skip
            self._jobs[job_id] = job
        job.keep_followed(show)
        return job
