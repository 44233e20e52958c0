"""AgentPanel: start runs from a widget (`AgentPanel()`, `%interactions panel`).

A prompt, a model/agent picker and an environment picker filled from the gateway, options
(thread, background, max tokens) and Run; each run is started in the background on the kernel
(the call answers at once with its id) and shown as a run view below. A Run pressed while a
foreground run is going waits in the front end's queue; the kernel serializes starts too.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import traitlets

from ..session import DEFAULT_THREAD
from .base import CallError, ViewWidget, asset
from .calls import quiet, serve_files, serve_interactions, take_over, wire
from .frontend import FRONT_END

if TYPE_CHECKING:
    from ..session import Session, TurnOptions

# Offered until (or unless) the gateway lists what it runs.
KNOWN_MODELS = ["local", "echo", "scripted"]
KNOWN_AGENTS = ["local-agent"]


class AgentPanel(ViewWidget):
    _esm = traitlets.Unicode().tag(sync=True)
    models = traitlets.List(traitlets.Unicode()).tag(sync=True)
    agents = traitlets.List(traitlets.Unicode()).tag(sync=True)
    environments = traitlets.List(traitlets.Unicode()).tag(sync=True)
    default_model = traitlets.Unicode("local").tag(sync=True)
    thread = traitlets.Unicode(DEFAULT_THREAD).tag(sync=True)
    started = traitlets.List(traitlets.Unicode()).tag(sync=True)  # ids, for the fallback

    def __init__(self, session: Session | None = None, *, thread: str = DEFAULT_THREAD) -> None:
        if session is None:
            from ..session import Session

            session = Session()
        super().__init__(
            _esm=asset("panel.js").read_text(),
            thread=thread,
            models=KNOWN_MODELS,
            agents=KNOWN_AGENTS,
            default_model=session.model or "local",
            follower=FRONT_END.follower_for(session),
            gateway=FRONT_END.gateway_for(FRONT_END.follower_for(session)),
        )
        self.session = session
        self._starting = threading.Lock()
        serve_interactions(self, session)
        serve_files(self, session)
        self.answer("run", self.run)
        self.pickers_filled = threading.Thread(
            target=self._fill_pickers, name="panel-pickers", daemon=True
        )
        self.pickers_filled.start()

    def _fill_pickers(self) -> None:
        """Models, agents and this notebook's environments, from the gateway (best effort):
        its models list names `models/<id>` and `agents/<id>` (saved agents included)."""
        models: list[str] = []
        agents = list(KNOWN_AGENTS)
        try:
            with quiet():
                for listed in self.session.client.models.list():
                    kind, _, ident = (listed.name or "").partition("/")
                    picker = models if kind == "models" else agents if kind == "agents" else None
                    if picker is not None and ident and ident not in picker:
                        picker.append(ident)
        except Exception:
            pass
        try:
            with quiet():
                saved = self.session.client.agents.list()
            agents += [a.id for a in getattr(saved, "agents", None) or [] if a.id not in agents]
        except Exception:
            pass
        environments: list[str] = []
        try:
            for record in self.session.jobs():
                if record.get("agent"):
                    env = wire(self.session.client.interactions.get(record["id"])).get(
                        "environment_id"
                    )
                    if env and env not in environments:
                        environments.append(env)
        except Exception:
            pass
        with self.hold_sync():
            self.models = models or KNOWN_MODELS
            self.agents = agents
            self.environments = environments

    def run(
        self,
        input: str,
        model: str | None = None,
        agent: str | None = None,
        thread: str = DEFAULT_THREAD,
        environment: str | None = None,
        background: bool = False,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Start one run (always in the background on the kernel) and answer its id."""
        if not input or not input.strip():
            raise CallError("write a prompt first")
        options: TurnOptions = {"thread": thread or DEFAULT_THREAD}
        if agent:
            options["agent"] = agent
            if environment:
                options["environment"] = environment
            if max_tokens:
                options["agent_config"] = {"type": "dynamic", "max_total_tokens": int(max_tokens)}
        else:
            options["model"] = model or self.default_model
            if max_tokens:
                raise CallError("max tokens is an agent's budget here; leave it empty for models")
        with self._starting:  # two Runs never race for the thread's head
            self.session.threads()  # the head as the gateway has it now
            job = self.session.start(input, **options)
        self.started = [*self.started, job.id]
        if job.id and agent and environment is None:
            threading.Thread(target=self._fill_pickers, daemon=True).start()
        return {"id": job.id}

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        take_over(self, self.session, content)

    def fallback(self) -> dict[str, str]:
        runs = ", ".join(self.started) or "no runs yet"
        return {"text/plain": f"AgentPanel: {runs}", "text/markdown": f"*Agent panel: {runs}*"}

    def __repr__(self) -> str:
        return f"AgentPanel(runs={len(self.started)})"
