"""Builds the gateway's services, each given what it uses when it is made (nothing is set on a
service afterwards): `GatewayState`, which the HTTP layer mounts. Build it, `await start()`,
mount the handlers (http/app.py), `await stop()` at the end."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..config import GatewayConfig
from .environments.manager import EnvironmentManager
from .environments.sandboxes import LiveSandboxes
from .environments.uploads import Uploads
from .models import ModelRegistry
from .replay import Cassettes
from .runs.engine import Engine
from .runs.executors import Upstream
from .runs.live import open_live
from .runs.local_agent import AGENT_NAME, LocalAgent
from .runtime import DataDirLock
from .state.agents import Agents
from .state.auth_tokens import AuthTokens
from .state.store import Store
from .state.threads import Threads
from .upstream.forward import GoogleUpstream

if TYPE_CHECKING:
    from ..sandbox.pool import WarmPool

log = logging.getLogger("jupyter_interactions.gateway")


class GatewayState:
    """Everything the handlers share, built in dependency order."""

    def __init__(self, config: GatewayConfig, upstream: Upstream | None = None) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        self.agents = Agents(self.store)
        self.threads = Threads(self.store)
        self.auth_tokens = AuthTokens(self.store)
        self.models = ModelRegistry(config.models)
        if upstream is None:
            upstream = GoogleUpstream(config)
        self.upstream = upstream
        # Agents' sandboxes: one live per environment; a pool starts kernels ahead of use.
        self.sandboxes = LiveSandboxes(config, pool_factory=lambda: _warm_pool(config))
        self.environments = EnvironmentManager(
            config.data_dir,
            self.store,
            live=self.sandboxes,
            upstream=upstream if isinstance(upstream, GoogleUpstream) else None,
        )
        self.uploads = Uploads(config.data_dir, self.environments)
        self.cassettes = Cassettes(config, self.store, self.environments)
        local_agent = LocalAgent(self.sandboxes, self.environments)
        self.engine = Engine(
            config,
            self.store,
            self.models,
            upstream,
            self.environments,
            agents={AGENT_NAME: local_agent},
            tool_runner=local_agent,  # code_execution and mcp_server on models
            open_live=open_live,
            cassettes=self.cassettes,
            threads=self.threads,
            saved_agents=self.agents,
        )
        self.recovered: list[str] = []
        self.owner = DataDirLock(config.data_dir)
        self.started = False

    async def start(self) -> None:
        # One process owns a data dir, so recovery only ever touches what this one ran.
        self.owner.acquire()
        self.recovered = await self.store.open()
        await self.auth_tokens.load()
        await self.uploads.start()
        if self.recovered:
            log.warning(
                "marked %d interaction(s) failed: they were running when the gateway stopped",
                len(self.recovered),
            )
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self.engine.shutdown()
        await self.cassettes.close()
        await self.sandboxes.close()
        aclose = getattr(self.upstream, "aclose", None)
        if aclose is not None:
            await aclose()
        await self.store.close()
        self.owner.release()


def _warm_pool(config: GatewayConfig) -> WarmPool:
    # Imported on first need: jupyter_client loads with the first agent, not at startup.
    from ..sandbox.pool import WarmPool

    return WarmPool(size=config.warm_pool_size, base_dir=config.data_dir / "sandboxes")
