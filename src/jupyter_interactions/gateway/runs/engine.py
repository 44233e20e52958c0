"""The engine: runs interactions (model turns, function-call pauses, agents, upstream), as
tasks that outlive the request that started them, and answers get / cancel / delete.

Where an interaction runs is decided once, at create: a local model from the registry, an
agent runner from `Engine.agents`, or the `upstream` (Google's service). All three report
through the same `Emitter`, so streams, storage and resume work the same for each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...config import GatewayConfig
from ...errors import (
    ConfigError,
    ConflictError,
    InteractionsError,
    NotFoundError,
    RequestError,
    UnsupportedError,
)
from ...protocol import moves_head, now
from ..environments.placement import Environments, Placement
from ..models import ModelRegistry
from ..models.base import Message, Model, ToolSpec
from ..state.ids import new_id
from ..state.store import RESTARTED_ERROR, Store
from ..upstream.forward import runs_on_google
from .capabilities import Plan, check_request
from .emitter import Emitter
from .history import content_text, input_steps, messages_from_steps, pending_calls
from .job_feed import JobFeed
from .mcp import McpServer
from .model_turn import generation_settings, model_turn, tool_specs
from .run import Run, frame_from_stored

log = logging.getLogger(__name__)

_ECHOED = (
    "agent_config",
    "previous_interaction_id",
    "system_instruction",
    "tools",
    "generation_config",
    "response_format",
    "safety_settings",
    "service_tier",
    "labels",
    "environment",
)


def without_env_values(environment: dict[str, Any]) -> dict[str, Any]:
    """The environment object as echoed in the interaction: variable names, never values."""
    if not isinstance(environment.get("env"), dict):
        return environment
    return {**environment, "env": dict.fromkeys(environment["env"], "***")}


class Upstream(Protocol):
    """Forwarding to Google's service (written in upstream.py on top of this seam)."""

    def handles(self, model: str | None, agent: str | None) -> bool:
        """True if the upstream can run this id (one the engine does not serve itself)."""

    async def run(
        self, body: dict[str, Any], previous_upstream_id: str | None, emitter: Emitter
    ) -> Any:
        """Run the interaction upstream, reporting steps through `emitter` (set
        `emitter.status` for a final status other than completed/requires_action); return
        its `id` upstream (kept for the next turn's `previous_upstream_id`) and the
        `environment_id` of the sandbox it ran in there, if any (an `UpstreamRun`)."""

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
    definition: dict[str, Any] | None = None  # the custom Agent resource, if agent= names one
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


class Engine:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        models: ModelRegistry,
        upstream: Upstream | None = None,
        environments: Environments | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.models = models
        self.upstream = upstream
        self.environments = environments
        self.placement = Placement(store, environments)
        self.agents: dict[str, AgentRunner] = {}
        # (body, required) -> the turns of a live interaction, if the body is one (live.py).
        self.open_live: Callable[[dict[str, Any], bool], LiveTurns | None] | None = None
        # Runs a model call whose tools run here (code_execution, mcp_server): the local
        # agent's loop, with the model's own settings.
        self.tool_runner: AgentRunner | None = None
        self.runs: dict[str, Run] = {}
        # Record and replay (replay/service.py): may serve a create from a cassette, and
        # follows each run of a session that records.
        self.cassettes: Any = None
        self.job_feed = JobFeed(store, self.runs)  # each session's job changes, as events

    # -- create --------------------------------------------------------------------------------

    async def create(
        self,
        body: dict[str, Any],
        session: str | None = None,
        thread: str | None = None,
        live: bool = False,
        cell: str | None = None,
    ) -> Run:
        """Start an interaction. It is live (it waits for input; see live.py) when `live`, or
        when `open_live` finds that the body asks for one. The route that calls this has
        checked `body` (validation.bodies.interaction_body): exactly one of model or agent."""
        model, agent = body.get("model"), body.get("agent")
        new_input = input_steps(body.get("input"))
        if live and (agent or not self.models.serves(model or "")):
            raise UnsupportedError(
                f"live interactions run on this gateway's own models, not {model or agent!r}; "
                f"use one of {self.models.names()}"
            )
        route = functools.partial(self._route, body, model, agent)
        cassettes = self.cassettes
        execute = await (cassettes.route(body, session, cell, route) if cassettes else route())
        turns = None
        if execute[0] == "model" and self.open_live is not None:
            turns = self.open_live(body, live)  # refuses a live setup the model cannot honour
        if live and turns is None:
            raise UnsupportedError("this gateway serves no live interactions")

        previous_id = body.get("previous_interaction_id")
        plan = self._plan(body, execute)
        environment = await self.placement.config(body, execute[0], execute[2], plan.code_execution)
        if plan.mcp:
            plan.check_reach(await self.placement.allowlist(environment))

        history: list[dict[str, Any]] = []
        previous_upstream_id = None
        chain_length = 1
        if previous_id:
            history, previous_upstream_id, chain_length = await self._history(previous_id)

        stored = body.get("store", True) not in (False, "false")
        created = now()
        resource: dict[str, Any] = {
            "id": new_id("int"),
            "object": "interaction",
            "status": "in_progress",
            "created": created,
            "updated": created,
        }
        resource["model" if model else "agent"] = model or agent
        resource.update({k: body[k] for k in _ECHOED if body.get(k) is not None})
        if isinstance(resource.get("environment"), dict):
            resource["environment"] = without_env_values(resource["environment"])
        if execute[0] == "upstream":
            body = await self.placement.for_upstream(body, resource)
        elif environment is not None:
            resource["environment_id"] = await self.placement.resolve(environment)
        row = {
            "previous_id": previous_id,
            "upstream_id": None,
            "session": session,
            "thread": thread,
            "input": body.get("input"),
        }
        run = Run(resource, store=self.store if stored else None, row=row, on_end=self._ended)
        run.chain_length = chain_length
        run.live = turns
        self.runs[run.id] = run
        saved = run.persist()
        if body.get("background") and session and stored:
            self.store.add_job(run.id, session, thread, created)
            self.job_feed.watch(run, session)
        context = {
            "history": history,
            "input": new_input,
            "previous_upstream_id": previous_upstream_id,
            "plan": plan,
        }
        run.task = asyncio.create_task(self._execute(run, execute, body, context))
        run.task.add_done_callback(lambda task: self._task_done(run, task))
        if cassettes is not None:
            cassettes.started(run, body, session, cell)
        # What a background create answers: the job as accepted, even if a fast model has
        # already finished it by the time it is on disk.
        run.accepted = run.snapshot()
        if saved is not None and body.get("background"):
            await saved  # a background job is on disk before its id is handed out
        return run

    async def _route(self, body: dict[str, Any], model: str | None, agent: str | None) -> Any:
        """Decide where this runs; fail fast (before any event) when it cannot run. What is
        served here runs here; any other id goes to Google's service when there is a key."""
        upstream = self.upstream
        forwarding = upstream is not None and upstream.handles(model, agent)
        if agent:
            if agent in self.agents:
                return ("agent", self.agents[agent], None)
            definition = await self.store.get_resource("agents", agent)
            if definition is not None and definition.get("base_agent") in self.agents:
                return ("agent", self.agents[definition["base_agent"]], definition)
            if forwarding:
                return ("upstream", upstream, None)
            if runs_on_google(None, agent):
                raise ConfigError(
                    f"agent {agent!r} runs on Google's service: set GEMINI_API_KEY for the "
                    "gateway, or use a local agent offline"
                )
            known = sorted(self.agents)
            raise RequestError(
                f"unknown agent {agent!r}: local agents here are {known or 'none yet'}; create "
                "a custom one with client.agents.create(id=..., base_agent=...), or set "
                "GEMINI_API_KEY for the gateway to use Google's agents"
            )
        assert model is not None
        if self.models.serves(model):
            return ("model", self.models.get(model), None)
        if forwarding:
            return ("upstream", upstream, None)
        if self.models.forwards(model) or runs_on_google(model, None):
            raise ConfigError(
                f"model {model!r} runs on Google's service: set GEMINI_API_KEY for the "
                "gateway, or use model='local' offline"
            )
        return ("model", self.models.get(model), None)  # the registry's "unknown model" 400

    def _plan(self, body: dict[str, Any], execute: Any) -> Plan:
        """Refuse what the target cannot honour (capabilities.py); Google decides for itself."""
        kind, target, definition = execute
        if kind == "upstream":
            return Plan()
        if kind == "model":
            return check_request(body, who=f"model {body['model']!r}", model=target)
        who = f"agent {body['agent']!r}"
        if definition is not None:
            who += f" (built on {definition['base_agent']!r})"
        tools = body.get("tools") or (definition or {}).get("tools")
        return check_request(body, who=who, tools=tools)

    async def _history(self, previous_id: str) -> tuple[list[dict[str, Any]], str | None, int]:
        if previous_id in self.runs:
            raise ConflictError(
                f"interaction {previous_id!r} is still running; wait for it to finish (attach "
                "with get(id, stream=True)) or cancel it before continuing from it"
            )
        chain = await self.store.chain(previous_id)
        if not chain or chain[0]["previous_id"]:
            missing = previous_id if not chain else chain[0]["previous_id"]
            raise NotFoundError(
                f"previous interaction {missing!r} not found: it was deleted, created with "
                "store=false, or never existed; start a new conversation without "
                "previous_interaction_id"
            )
        steps: list[dict[str, Any]] = []
        for link in chain:
            steps.extend(input_steps(link["input"]))
            steps.extend(link["resource"].get("steps") or [])
        return steps, chain[-1]["upstream_id"], len(chain) + 1

    # -- execution -----------------------------------------------------------------------------

    async def _execute(
        self, run: Run, execute: Any, body: dict[str, Any], context: dict[str, Any]
    ) -> None:
        emitter = run.emitter
        shown = ("id", "status", "object", "created", "model", "agent", "environment_id")
        created = {k: run.resource[k] for k in shown if k in run.resource}
        emitter.created(created)
        kind, target, definition = execute
        status: str | None = None
        try:
            if kind == "model" and context["plan"].needs_loop and self.tool_runner is not None:
                ctx = self._agent_context(run, body, context, None)
                await self.tool_runner.run(ctx)
                status = emitter.status
            elif kind == "model":
                messages = messages_from_steps(context["history"] + context["input"])
                turns = model_turn if run.live is None else run.live.run
                status = await turns(target, body, messages, emitter)
            elif kind == "agent":
                await target.run(self._agent_context(run, body, context, definition))
                status = emitter.status
            else:
                ran = await target.run(body, context["previous_upstream_id"], emitter)
                run.row["upstream_id"] = ran.id
                if ran.environment_id and self.environments is not None:
                    await self.environments.adopt_upstream(ran.environment_id)
                    run.resource["environment_id"] = ran.environment_id
                status = emitter.status
        except asyncio.CancelledError:
            status = self._cancelled_status(run)
        except InteractionsError as exc:
            status = self._fail(run, exc.code, exc.message)
        except Exception as exc:  # a broken model must never take the gateway down
            log.exception("interaction %s failed", run.id)
            status = self._fail(run, "internal", f"{type(exc).__name__}: {exc}")
        self._finish(run, status)

    def _agent_context(
        self, run: Run, body: dict[str, Any], context: dict[str, Any], definition: Any
    ) -> AgentContext:
        environment_id = run.resource.get("environment_id")
        root = None
        if environment_id and self.environments is not None:
            root = self.environments.root(environment_id)
        system = body.get("system_instruction")
        if definition and definition.get("system_instruction") and not system:
            system = definition["system_instruction"]
        tools = body.get("tools") or (definition or {}).get("tools")
        plan: Plan = context["plan"]
        model = run.resource.get("model")
        return AgentContext(
            interaction_id=run.id,
            agent=run.resource.get("agent") or "",
            body=body,
            messages=tuple(messages_from_steps(context["history"] + context["input"])),
            emitter=run.emitter,
            models=self.models,
            config=self.config,
            system_instruction=content_text(system) if system else None,
            tools=tool_specs(tools),
            definition=definition,
            environment_id=environment_id,
            environment_root=root,
            model=model,
            generation=generation_settings(body) if model else None,
            code_execution=plan.code_execution or not model,
            mcp=plan.mcp,
        )

    def _cancelled_status(self, run: Run) -> str:
        run.emitter.close_all()
        if run.cancel_reason == "shutdown":
            run.resource["errors"] = [RESTARTED_ERROR]
            run.emitter.error(RESTARTED_ERROR["code"], RESTARTED_ERROR["message"])
            return "failed"
        return "cancelled"

    def _fail(self, run: Run, code: str, message: str) -> str:
        run.emitter.close_all()
        run.emitter.error(code, message)
        run.resource["errors"] = [
            *run.resource.get("errors", []),
            {"code": code, "message": message},
        ]
        return "failed"

    def _finish(self, run: Run, status: str | None) -> None:
        """Record how the run ended: final status, terminal event, row, thread head."""
        if run.ended:
            return
        emitter = run.emitter
        emitter.close_all()
        if status is None or status == "completed":
            status = "requires_action" if pending_calls(emitter.steps) else "completed"
        run.resource["status"] = status
        run.resource["updated"] = now()
        final = {"id": run.id, "status": status, "updated": run.resource["updated"]}
        if run.resource.get("environment_id"):  # known only now for Google's agents
            final["environment_id"] = run.resource["environment_id"]
        if emitter.usage:
            final["usage"] = dict(emitter.usage)
        emitter.completed(final)
        run.persist()
        session, thread = run.row.get("session"), run.row.get("thread")
        if session and thread and moves_head(status) and run.store is not None:
            self.store.set_thread(
                session,
                thread,
                run.id,
                run.resource.get("model"),
                run.resource.get("agent"),
                run.chain_length,
                run.resource["updated"],
            )

    def _task_done(self, run: Run, task: asyncio.Task[None]) -> None:
        # A task cancelled before it ever started never reached _execute's handlers.
        if not run.ended:
            status = self._cancelled_status(run) if task.cancelled() else "failed"
            self._finish(run, status)

    def _ended(self, run: Run) -> None:
        self.runs.pop(run.id, None)

    # -- get / stream / cancel / delete --------------------------------------------------------

    async def get(self, interaction_id: str, include_input: bool = False) -> dict[str, Any]:
        run = self.runs.get(interaction_id)
        if run is not None:
            return run.snapshot(include_input)
        row = await self.store.get_interaction(interaction_id)
        if row is None:
            raise NotFoundError(
                f"interaction {interaction_id!r} not found: it was deleted, created with "
                "store=false, or never existed"
            )
        resource = row["resource"]
        if include_input and row["input"] is not None:
            resource["input"] = row["input"]
        return resource

    async def open_stream(
        self, interaction_id: str, after_seq: int = 0
    ) -> AsyncIterator[list[str]]:
        """SSE frames after `after_seq`: live for a running interaction, from the log otherwise.
        Raises NotFoundError before anything is sent."""
        run = self.runs.get(interaction_id)
        if run is not None:
            return run.follow(after_seq)
        if await self.store.get_interaction(interaction_id) is None:
            await self.get(interaction_id)  # raises the 404
        frames = [
            frame_from_stored(d) for d in await self.store.events_after(interaction_id, after_seq)
        ]

        async def stored() -> AsyncIterator[list[str]]:
            if frames:
                yield frames

        return stored()

    async def cancel(self, interaction_id: str) -> dict[str, Any]:
        run = self.runs.get(interaction_id)
        if run is None:
            resource = await self.get(interaction_id)
            raise ConflictError(
                f"interaction {interaction_id!r} is not running (status {resource['status']}); "
                "cancel applies only to running interactions"
            )
        await self._stop(run, "cancel")
        return run.snapshot()

    async def _stop(self, run: Run, reason: str) -> None:
        run.cancel_reason = run.cancel_reason or reason
        if run.task is not None and not run.task.done():
            run.task.cancel()
        await asyncio.shield(run.done)

    async def delete(self, interaction_id: str) -> None:
        run = self.runs.get(interaction_id)
        if run is not None:
            await self._stop(run, "cancel")
        deleted = await self.store.delete_interaction(interaction_id)
        if run is None and not deleted:
            raise NotFoundError(f"interaction {interaction_id!r} not found")

    async def shutdown(self) -> None:
        """Stop every running interaction; each ends failed with a gateway_restarted error."""
        runs = list(self.runs.values())
        if runs:
            await asyncio.wait(
                [asyncio.ensure_future(self._stop(r, "shutdown")) for r in runs], timeout=5
            )
        self.job_feed.close()  # after the runs' last rows: followers see how they ended
        await self.store.flush()
        await self.models.aclose()
