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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ...config import GatewayConfig
from ...errors import (
    ConfigError,
    ConflictError,
    InteractionsError,
    NotFoundError,
    RequestError,
    UnsupportedError,
)
from ...protocol import now
from ..environments.placement import Environments, Placement
from ..models import ModelRegistry
from ..state.agents import AgentResource, Agents
from ..state.stamps import new_id
from ..state.store import RESTARTED_ERROR, Store
from ..state.threads import Threads
from ..upstream.forward import runs_on_google
from .capabilities import Plan, check_tools
from .executors import (
    AgentContext,
    AgentRoute,
    AgentRunner,
    Execution,
    LiveTurns,
    ModelRoute,
    Route,
    RouteHook,
    Upstream,
    UpstreamRoute,
)
from .history import content_text, input_steps, messages_from_steps, pending_calls
from .job_feed import JobFeed
from .model_turn import generation_settings, tool_specs
from .run import Run, frame_from_stored

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.engine")

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


class Engine:
    """Runs interactions and answers for them. Built once (wiring.py) with every service it
    uses; nothing is set on it afterwards."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        models: ModelRegistry,
        upstream: Upstream | None = None,
        environments: Environments | None = None,
        *,
        agents: Mapping[str, AgentRunner] | None = None,
        tool_runner: AgentRunner | None = None,
        open_live: Callable[[dict[str, Any], bool], LiveTurns | None] | None = None,
        cassettes: RouteHook | None = None,
        threads: Threads | None = None,
        saved_agents: Agents | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.models = models
        self.upstream = upstream
        self.environments = environments
        self.placement = Placement(store, environments)
        self.agents: dict[str, AgentRunner] = dict(agents or {})
        # (body, required) -> the turns of a live interaction, if the body is one (runs/live.py).
        self.open_live = open_live
        # Runs a model call whose tools run here (code_execution, mcp_server): the local
        # agent's loop, with the model's own settings.
        self.tool_runner = tool_runner
        self.runs: dict[str, Run] = {}
        # Record and replay (replay/service.py): may serve a create from a cassette, and
        # follows each run of a session that records.
        self.cassettes = cassettes
        self.threads = threads or Threads(store)
        self.saved_agents = saved_agents or Agents(store)
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
        """Start an interaction. It is live (it waits for input; see runs/live.py) when `live`, or
        when `open_live` finds that the body asks for one. The route that calls this has
        checked `body` (validation.bodies.interaction_body): exactly one of model or agent."""
        model, agent = body.get("model"), body.get("agent")
        new_input = input_steps(body.get("input"))
        if live and (agent or not self.models.serves(model or "")):
            raise UnsupportedError(
                f"live interactions run on this gateway's own models, not {model or agent!r}; "
                f"use one of {self.models.names()}"
            )
        choose = functools.partial(self._route, model, agent)
        cassettes = self.cassettes
        route = await (cassettes.route(body, session, cell, choose) if cassettes else choose())
        turns = None
        if route.kind == "model" and self.open_live is not None:
            turns = self.open_live(body, live)  # refuses a live setup the model cannot honour
        if live and turns is None:
            raise UnsupportedError("this gateway serves no live interactions")

        previous_id = body.get("previous_interaction_id")
        plan = route.plan(body)  # refuses what the target cannot honour (capabilities.py)
        environment = await self.placement.config(
            body, route.kind, route.definition, plan.code_execution
        )
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
        if route.kind == "upstream":
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
        execution = Execution(
            run=run,
            body=body,
            history=history,
            input=new_input,
            previous_upstream_id=previous_upstream_id,
            plan=plan,
            agent_context=functools.partial(
                self._agent_context, run, body, history, new_input, plan
            ),
            tool_runner=self.tool_runner,
            environments=self.environments,
        )
        run.task = asyncio.create_task(self._execute(route, execution))
        run.task.add_done_callback(lambda task: self._task_done(run, task))
        if cassettes is not None:
            cassettes.started(run, body, session, cell)
        # What a background create answers: the job as accepted, even if a fast model has
        # already finished it by the time it is on disk.
        run.accepted = run.snapshot()
        if saved is not None and body.get("background"):
            await saved  # a background job is on disk before its id is handed out
        return run

    async def _route(self, model: str | None, agent: str | None) -> Route:
        """Decide where this runs; fail fast (before any event) when it cannot run. What is
        served here runs here; any other id goes to Google's service when there is a key."""
        upstream = self.upstream
        forwarding = upstream is not None and upstream.handles(model, agent)
        if agent:
            if agent in self.agents:
                return AgentRoute(self.agents[agent])
            definition = await self.saved_agents.find(agent)
            if definition is not None and definition.get("base_agent") in self.agents:
                return AgentRoute(self.agents[definition["base_agent"]], definition)
            if forwarding:
                assert upstream is not None
                return UpstreamRoute(upstream)
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
            return ModelRoute(self.models.get(model))
        if forwarding:
            assert upstream is not None
            return UpstreamRoute(upstream)
        if self.models.forwards(model) or runs_on_google(model, None):
            raise ConfigError(
                f"model {model!r} runs on Google's service: set GEMINI_API_KEY for the "
                "gateway, or use model='local' offline"
            )
        return ModelRoute(self.models.get(model))  # the registry's "unknown model" 400

    async def check_agent(self, agent: dict[str, Any]) -> None:
        """Everything a custom agent will need when invoked, checked before it is saved: a
        local base agent, tools it can run, and a base environment whose sources, network and
        mode this gateway can honour."""
        base = agent.get("base_agent")
        local = sorted(self.agents)
        if not isinstance(base, str) or base not in local:
            where = ""
            if isinstance(base, str) and runs_on_google(None, base):
                where = f" {base!r} runs on Google's service (save such agents there);"
            raise UnsupportedError(
                f"base_agent must be a local agent here ({', '.join(local)});{where} "
                "e.g. base_agent='local-agent'"
            )
        plan = check_tools(agent.get("tools"), f"an agent built on {base!r}")
        environment = agent.get("base_environment")
        if self.environments is not None:
            await self.environments.check_config(environment)
        if plan.mcp:
            plan.check_reach(await self.placement.allowlist(environment))

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

    async def _execute(self, route: Route, execution: Execution) -> None:
        run = execution.run
        shown = ("id", "status", "object", "created", "model", "agent", "environment_id")
        created = {k: run.resource[k] for k in shown if k in run.resource}
        run.emitter.created(created)
        status: str | None = None
        try:
            status = await route.execute(execution)
        except asyncio.CancelledError:
            status = self._cancelled_status(run)
        except InteractionsError as exc:
            status = self._fail(run, exc.code, exc.message)
        except Exception as exc:  # a broken model must never take the gateway down
            log.exception("interaction %s failed", run.id)
            status = self._fail(run, "internal", f"{type(exc).__name__}: {exc}")
        self._finish(run, status)

    def _agent_context(
        self,
        run: Run,
        body: dict[str, Any],
        history: list[dict[str, Any]],
        new_input: list[dict[str, Any]],
        plan: Plan,
        definition: AgentResource | None,
    ) -> AgentContext:
        environment_id = run.resource.get("environment_id")
        root = None
        if environment_id and self.environments is not None:
            root = self.environments.root(environment_id)
        system = body.get("system_instruction")
        if definition and definition.get("system_instruction") and not system:
            system = definition["system_instruction"]
        tools = body.get("tools") or (definition or {}).get("tools")
        model = run.resource.get("model")
        return AgentContext(
            interaction_id=run.id,
            agent=run.resource.get("agent") or "",
            body=body,
            messages=tuple(messages_from_steps(history + new_input)),
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
        if session and thread and run.store is not None:
            self.threads.advance(session, thread, run.resource, status, run.chain_length)

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
