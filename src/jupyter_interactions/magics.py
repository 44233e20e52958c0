"""The `%%interaction` cell magic and the `%interactions` line magic: parsing only.

Everything they do is a call on `Session`; our errors become IPython's UsageError, which
IPython shows as one line without a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode

from .errors import InteractionsError
from .recording import CellWatch
from .render.live import owned_cell
from .reply import Reply
from .session import DEFAULT_THREAD, Session, TurnOptions

__all__ = ["InteractionMagics", "load_ipython_extension", "unload_ipython_extension"]


@magics_class
class InteractionMagics(Magics):
    """Defaults are configurable: `%config InteractionMagics.model = "echo"`."""

    model = Unicode(
        None, allow_none=True, help="Default model (else local, or Gemini with a key)."
    ).tag(config=True)
    agent = Unicode(
        None, allow_none=True, help="Default agent, used when no --model is given."
    ).tag(config=True)
    thread = Unicode(DEFAULT_THREAD, help="Default thread name.").tag(config=True)
    direct = Bool(False, help="Talk to Google's service directly, without the gateway.").tag(
        config=True
    )
    stream = Bool(True, help="Stream text as it is generated (False: one final display).").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._sessions: dict[bool, Session] = {}
        self._cells = CellWatch(shell, lambda: list(self._sessions.values()))
        if shell is not None:
            self._cells.register()

    @property
    def _user_ns(self) -> dict[str, Any]:
        assert self.shell is not None, "the magics are registered with a shell"
        return self.shell.user_ns

    def session(self, direct: bool | None = None) -> Session:
        """The kernel's session (one for the gateway, one for --direct)."""
        direct = self.direct if direct is None else direct
        if direct not in self._sessions:
            self._sessions[direct] = Session(direct=direct)
        return self._sessions[direct]

    @magic_arguments()
    @argument("--model", "-m", help="model id, e.g. local, echo, gemini-flash-latest")
    @argument("--agent", "-a", help="agent id (instead of a model)")
    @argument(
        "--agent-config", metavar="JSON", help='e.g. \'{"type": "antigravity", "model": "local"}\''
    )
    @argument(
        "--environment",
        "-e",
        metavar="ENV",
        help="an agent's environment: an id, a Reply, a dict variable (e.g. with 'env': keep "
        "secrets out of the cell) or a JSON object",
    )
    @argument("--thread", "-t", help="conversation thread name (default: 'default')")
    @argument("--new", action="store_true", help="start the thread afresh")
    @argument(
        "--from",
        dest="parent",
        metavar="ID",
        help="fork from an interaction id or a Reply variable",
    )
    @argument("--background", "-b", action="store_true", help="return a Job at once")
    @argument("--system", "-s", help="system instruction")
    @argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="cap the answer at N tokens (the turn then ends incomplete with what came)",
    )
    @argument("--tools", nargs="+", default=[], help="built-in tool names or Python function names")
    @argument("--out", "-o", metavar="VAR", help="also bind the Reply (or Job) to VAR")
    @argument("--no-stream", action="store_true", help="no live updates; one final display")
    @argument(
        "--direct", action="store_true", help="use Google's service directly (GEMINI_API_KEY)"
    )
    @cell_magic
    def interaction(self, line: str, cell: str) -> Any:
        """Send the cell to a model or agent; the next cell in the same thread continues it."""
        args = parse_argstring(self.interaction, line)
        if args.model and args.agent:
            raise UsageError("give --model or --agent, not both")
        agent_config = None
        if args.agent_config:
            agent_config = _json_object(args.agent_config, "--agent-config")
        environment = self._environment(args.environment)
        if not cell.strip():
            raise UsageError("the cell is empty: write what to ask below the %%interaction line")
        options: TurnOptions = {
            "model": args.model or (None if args.agent else self.model),
            "agent": args.agent or (None if args.model else self.agent),
            "thread": args.thread or self.thread,
            "new": args.new,
            "parent": self._parent(args.parent),
            "system": args.system,
            "tools": [self._tool(name) for name in args.tools],
            "agent_config": agent_config,
            "environment": environment,
            "max_output_tokens": args.max_tokens,
        }
        session = self.session(args.direct or None)
        try:
            with owned_cell():  # the cell's outputs are all ours: the live view leaves none
                if args.background:
                    result: Any = session.start(cell.strip(), show=True, **options)
                else:
                    result = session.ask(
                        cell.strip(),
                        stream=self.stream and not args.no_stream,
                        show=True,
                        **options,
                    )
        except InteractionsError as exc:
            raise UsageError(exc.message) from None
        if args.out:
            self._user_ns[args.out] = result
        return None  # the output is already shown: a live Job view, or the final display

    def _cassette(self, session: Session, command: str, name: str | None, auto: bool) -> Any:
        """record / replay [--auto] / cassette [off]: set or show where interactions go."""
        if command == "cassette":
            if name not in (None, "off"):
                raise UsageError("%interactions cassette shows the state; 'cassette off' stops")
            mode, name = ("off" if name else None), None
        else:
            if auto and command != "replay":
                raise UsageError("--auto goes with replay: %interactions replay --auto")
            mode = "auto" if auto else command
        state = session.cassette(mode, name)
        if mode is not None:
            self._cells.recording = session if state.mode == "record" else None
        return state

    def _parent(self, name: str | None) -> str | None:
        if not name:
            return None
        value = self._user_ns.get(name) if name.isidentifier() else None
        if isinstance(value, Reply):
            return value.id
        if value is not None and hasattr(value, "id") and hasattr(value, "transcript"):
            return value.id  # a Job
        return name

    def _environment(self, given: str | None) -> str | dict[str, Any] | None:
        """--environment: a variable (a Reply's environment, a dict, an id), JSON, or an id."""
        if not given:
            return None
        value = self._user_ns.get(given) if given.isidentifier() else None
        if isinstance(value, Reply):
            if not value.environment_id:
                raise UsageError(f"{given} is a Reply without an environment (not an agent's)")
            return value.environment_id
        if isinstance(value, (dict, str)):
            return value
        if value is not None:
            raise UsageError(
                f"--environment {given}: expected a dict, an id or a Reply, not "
                f"{type(value).__name__}"
            )
        if given.lstrip("'\"").startswith("{"):
            return _json_object(given, "--environment")
        return given

    def _tool(self, name: str) -> Any:
        value = self._user_ns.get(name)
        return value if callable(value) else name

    @magic_arguments()
    @argument(
        "command",
        choices=[
            *("threads", "jobs", "reset", "job", "cancel", "files", "panel"),
            *("record", "replay", "cassette"),
        ],
        help="what to do",
    )
    @argument(
        "name",
        nargs="?",
        help="a thread (reset), a job id (job, cancel), an environment (files), a cassette "
        "folder (record, replay; default <notebook>.interactions beside the notebook) or off "
        "(cassette)",
    )
    @argument(
        "--auto",
        action="store_true",
        help="replay only what needs Google, while the gateway has no key; run the rest",
    )
    @argument("--direct", action="store_true", help="the direct-mode session")
    @line_magic
    def interactions(self, line: str) -> Any:
        """%interactions threads | jobs | reset [THREAD] | job ID | cancel ID | files [ENV]
        | panel | record [PATH] | replay [PATH] [--auto] | cassette [off]"""
        args = parse_argstring(self.interactions, line)
        session = self.session(args.direct or None)
        try:
            if args.command in ("record", "replay", "cassette"):
                return self._cassette(session, args.command, args.name, args.auto)
            if args.command == "threads":
                return session.threads_table()
            if args.command == "jobs":
                return _widgets().job_board(session) or session.jobs_table()
            if args.command == "files":
                return session.files(args.name)
            if args.command == "panel":
                return _widgets().panel(session)
            if args.command == "reset":
                session.reset(args.name)
                return None
            if not args.name:
                raise UsageError(f"%interactions {args.command} needs a job id")
            if args.command == "cancel":
                return session.cancel(args.name)  # says what happened
            session.job(args.name, show=True)
            return None
        except InteractionsError as exc:
            raise UsageError(exc.message) from None


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(InteractionMagics)
    _widgets().install()


def _widgets() -> Any:
    """The widgets package (imported on first use: anywidget stays out of plain imports)."""
    from .widgets import hooks

    return hooks


def unload_ipython_extension(ipython: Any) -> None:
    magics = ipython.magics_manager.registry.get("InteractionMagics")
    if magics is not None:
        magics._cells.unregister()
        for session in magics._sessions.values():
            session.close()
        magics._sessions.clear()
    _widgets().uninstall()


def _json_object(raw: str, option: str) -> dict[str, Any]:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]  # IPython's splitting keeps the quotes around one argument
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{option} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object")
    return value
