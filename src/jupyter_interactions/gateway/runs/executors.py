"""Where an interaction runs, as a typed route, and how each kind of route runs it: a local
model (`ModelRoute`), an agent runner (`AgentRoute`), or Google's service or a recording of
it (`UpstreamRoute`). The engine decides the route once, at create (engine.py); each route
checks what it cannot honour (`plan`) and runs the interaction (`execute`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ...config import GatewayConfig
from ..environments.placement import Environments
from ..models import ModelRegistry
from ..models.base import Message, Model, ToolSpec
from ..state.agents import AgentResource
from .capabilities import Plan, check_request
from .emitter import Emitter
from .history import messages_from_steps
from .mcp import McpServer
from .model_turn import model_turn
from .run import Run


class Forwarder(Protocol):
    """What runs an interaction elsewhere: Google's service (upstream/forward.py) or a
    recording of it (replay/player.py)."""

    async def run(
        self, body: dict[str, Any], previous_upstream_id: str | None, emitter: Emitter
    ) -> Any:
        """Run the interaction upstream, reporting steps through `emitter` (set
        `emitter.status` for a final status other than completed/requires_action); return
        its `id` upstream (kept for the next turn's `previous_upstream_id`) and the
        `environment_id` of the sandbox it ran in there, if any (an `UpstreamRun`)."""


class Upstream(Forwarder, Protocol):
    """Forwarding to Google's service (upstream/forward.py): also which ids it takes."""

    def handles(self, model: str | None, agent: str | None) -> bool:
        """True if the upstream can run this id (one the engine does not serve itself)."""

    async def models(self) -> list[tuple[str, str]]:
        """The ids Google lists that would be forwarded, as ("models"|"agents", id)."""


@dataclass
class AgentContext:
    """What an agent runner gets for one interaction."""

    interaction_id: str
    agent: str
    body: dict[str, Any]
    messages: tuple[Message, ...]
    emitter: Emitter
    models: ModelRegistry
    config: GatewayConfig
    system_instruction: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    definition: AgentResource | None = None  # the custom Agent resource, if agent= names one
    environment_id: str | None = None
    environment_root: Path | None = None  # the environment's directory; code runs in workspace/
    extra: dict[str, Any] = field(default_factory=dict)
    # A model call whose tools run here (code_execution, mcp_server) runs as a tool loop:
    # its own model and generation_config instead of an agent_config's.
    model: str | None = None
    generation: dict[str, Any] | None = None
    code_execution: bool = True
    mcp: tuple[McpServer, ...] = ()


class LiveTurns(Protocol):
    """The turns of a live interaction (live.py): it answers inputs as they come, on one model,
    until the client completes it."""

    async def run(
        self, model: Model, body: dict[str, Any], messages: list[Message], emitter: Emitter
    ) -> str:
        """Answer each input in turn; return the final status."""


class AgentRunner(Protocol):
    async def run(self, ctx: AgentContext) -> None:
        """Do the work, reporting through ctx.emitter; set ctx.emitter.status to end other
        than completed (requires_action is derived from unanswered function_call steps)."""


@dataclass
class Execution:
    """One run as the engine hands it to its route: the request, the conversation so far and
    what the plan asks for, plus the engine's services a route may need."""

    run: Run
    body: dict[str, Any]
    history: list[dict[str, Any]]
    input: list[dict[str, Any]]
    previous_upstream_id: str | None
    plan: Plan
    agent_context: Callable[[AgentResource | None], AgentContext]
    tool_runner: AgentRunner | None
    environments: Environments | None

    def messages(self) -> list[Message]:
        return messages_from_steps(self.history + self.input)


@dataclass(frozen=True)
class ModelRoute:
    """A model served here: one turn (or a live conversation), or the tool loop when the
    request's tools run here (code_execution, mcp_server)."""

    model: Model
    kind: Literal["model"] = "model"
    definition: None = None

    def plan(self, body: dict[str, Any]) -> Plan:
        return check_request(body, who=f"model {body['model']!r}", model=self.model)

    async def execute(self, ex: Execution) -> str | None:
        if ex.plan.needs_loop and ex.tool_runner is not None:
            await ex.tool_runner.run(ex.agent_context(None))
            return ex.run.emitter.status
        turns = model_turn if ex.run.live is None else ex.run.live.run
        return await turns(self.model, ex.body, ex.messages(), ex.run.emitter)


@dataclass(frozen=True)
class AgentRoute:
    """An agent runner here, as itself or as the base of a custom agent (`definition`)."""

    runner: AgentRunner
    definition: AgentResource | None = None
    kind: Literal["agent"] = "agent"

    def plan(self, body: dict[str, Any]) -> Plan:
        who = f"agent {body['agent']!r}"
        if self.definition is not None:
            who += f" (built on {self.definition['base_agent']!r})"
        tools = body.get("tools") or (self.definition or {}).get("tools")
        return check_request(body, who=who, tools=tools)

    async def execute(self, ex: Execution) -> str | None:
        await self.runner.run(ex.agent_context(self.definition))
        return ex.run.emitter.status


@dataclass(frozen=True)
class UpstreamRoute:
    """Google's service (or a recording of it): it decides for itself what it honours."""

    upstream: Forwarder
    kind: Literal["upstream"] = "upstream"
    definition: None = None

    def plan(self, body: dict[str, Any]) -> Plan:
        return Plan()

    async def execute(self, ex: Execution) -> str | None:
        run = ex.run
        ran = await self.upstream.run(ex.body, ex.previous_upstream_id, run.emitter)
        run.row["upstream_id"] = ran.id
        if ran.environment_id and ex.environments is not None:
            await ex.environments.adopt_upstream(ran.environment_id)
            run.resource["environment_id"] = ran.environment_id
        return run.emitter.status


Route = ModelRoute | AgentRoute | UpstreamRoute
Choose = Callable[[], Awaitable[Route]]
"""The engine's own choice of route, made only when called."""


class RouteHook(Protocol):
    """Record and replay (replay/service.py): may serve a create from a recording instead of
    the engine's own route, and follows each run of a session that records."""

    async def route(
        self, body: dict[str, Any], session: str | None, cell: str | None, route: Choose
    ) -> Route: ...

    def started(
        self, run: Run, body: dict[str, Any], session: str | None, cell: str | None
    ) -> None: ...
