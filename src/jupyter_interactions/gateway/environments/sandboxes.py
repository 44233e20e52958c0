"""Live sandboxes: one started Sandbox per environment, kept between turns, stopped when idle.

An agent turn leases its environment's sandbox (`acquire` ... `release`). The first lease
starts one (`registry.create_for`, the kind the environment asked for, rooted at its
directory); later turns get the same kernel, so they see the variables and the files of
earlier turns. A sandbox nobody holds stops after `idle_seconds` (one timer, no polling),
and all stop on gateway shutdown. A sandbox found dead is replaced: the files remain, and
the lease's notes tell the user that the variables are gone; so do they after a kernel
restart in an earlier turn, and for an environment whose sandbox ran before the gateway
itself restarted (a marker file per environment under `<data_dir>/sandboxes/started`).

Where local sandboxes get quota disks (`sandbox/disk.py`), an environment's files live on
one, kept mounted on its directory from the first sandbox until the gateway stops or the
environment is deleted; `storage` mounts it again for a gateway that restarted since.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import GatewayConfig
from ...errors import ConfigError, SandboxError
from ...sandbox import registry
from ...sandbox.base import Limits, Sandbox, SandboxFiles
from ...sandbox.directory import DirectoryFiles
from ...sandbox.disk import IMAGE, DiskQuotas
from ...sandbox.egress import Allowlist

__all__ = ["Lease", "LiveSandboxes", "SandboxSetup"]

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.sandboxes")

PROBE_SECONDS = 10.0
LOST_VARIABLES = (
    "This environment's sandbox had stopped (idle, its kernel died, or the gateway "
    "restarted), so a fresh one was started: its files are all still there, but variables "
    "from earlier turns are lost."
)
RESTARTED = (
    "This environment's kernel was restarted since its last turn (a limit stopped it, or it "
    "ignored an interrupt): its files are all still there, but variables set before the "
    "restart are lost."
)


@dataclass(frozen=True)
class SandboxSetup:
    """What an environment asks of its sandbox: a kind (None: the configured one), its
    environment variables and its network allowlist (None: no network)."""

    kind: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    allowlist: Allowlist | None = None


@dataclass
class Lease:
    """A started sandbox for one turn, and what the user should be told about it (once)."""

    environment_id: str
    sandbox: Sandbox
    notes: list[str] = field(default_factory=list)


@dataclass
class _Live:
    sandbox: Sandbox
    kind: str
    users: int = 0
    idle: asyncio.TimerHandle | None = None
    shown: int = 0  # how many of the sandbox's warnings this environment has seen
    told_restarts: int = 0  # the sandbox's restarts the user has been told about


class LiveSandboxes:
    """Environment id -> its started Sandbox. `pool_factory` makes a WarmPool on first
    need; it is handed to the kinds that take one (`local`), so a new environment's first
    step does not wait for a kernel to start; so is `disks`, the quota disks of the
    environments, to the kinds that take it."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        idle_seconds: float | None = None,
        limits: Limits | None = None,
        pool_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.idle_seconds = config.sandbox_idle_seconds if idle_seconds is None else idle_seconds
        self.limits = limits or configured_limits(config)
        self.pool: Any = None
        self._pool_factory = pool_factory
        self._live: dict[str, _Live] = {}
        self._starting: dict[str, asyncio.Future[_Live]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._storage: dict[str, asyncio.Lock] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._takes: dict[tuple[str, str], bool] = {}
        self._roots: dict[str, Path] = {}
        self.disks = DiskQuotas()
        self._started_marks = config.data_dir / "sandboxes" / "started"
        self._closed = False

    def __repr__(self) -> str:
        return f"LiveSandboxes(live={sorted(self._live)}, idle_seconds={self.idle_seconds})"

    def sandbox(self, environment_id: str) -> Sandbox | None:
        live = self._live.get(environment_id)
        return live.sandbox if live is not None else None

    def storage(self, environment_id: str, root: Path) -> None:
        """The environment's directory is about to be used: if its files are on a quota
        disk that is not mounted (the gateway restarted since), mount it. Synchronous (a
        mount takes tens of milliseconds, once per environment and gateway run)."""
        self._roots[environment_id] = root
        self.disks.attach_existing(root)

    def storage_lock(self, environment_id: str) -> asyncio.Lock:
        """Held while a starting sandbox moves the environment's files (onto its quota disk,
        or into a pre-started kernel's directory), and by whoever reads or writes them
        meanwhile: mid-move a read finds nothing, and a write lands beneath the mount."""
        return self._storage.setdefault(environment_id, asyncio.Lock())

    def files(self, environment_id: str) -> SandboxFiles | None:
        """A live sandbox's files when they are not the environment's local directory (a
        remote kernel's): the file routes serve those instead."""
        live = self._live.get(environment_id)
        if live is None or live.sandbox.root is not None:
            return None
        return live.sandbox.files

    # -- leases ---------------------------------------------------------------------------------

    async def acquire(
        self, environment_id: str, root: Path, setup: SandboxSetup | None = None
    ) -> Lease:
        """The environment's started sandbox (starting it if needed) for one turn, with the
        environment's variables and network set; pair with `release`. Raises
        SandboxUnavailable or SandboxError if none can start."""
        setup = setup or SandboxSetup()
        kind = setup.kind
        if self._closed:
            raise SandboxError("the gateway is shutting down; retry once it is back")
        # One turn at a time decides whether the sandbox is healthy or must be started.
        async with self._locks.setdefault(environment_id, asyncio.Lock()):
            notes: list[str] = []
            self._roots[environment_id] = root
            live = self._live.get(environment_id)
            if live is not None:
                self._cancel_idle(live)
                # A sandbox in use by another turn is alive; probing would wait behind it.
                if live.users == 0 and not await self._probe(environment_id, live):
                    notes.append(LOST_VARIABLES)
                    live = None
            if live is None:
                if not notes and await asyncio.to_thread(self._ran_before, environment_id):
                    notes.append(LOST_VARIABLES)
                starting = asyncio.ensure_future(self._start(environment_id, root, kind))
                self._starting[environment_id] = starting
                starting.add_done_callback(lambda _: self._starting.pop(environment_id, None))
                try:
                    # Shielded: a turn cancelled meanwhile must not orphan a starting kernel.
                    live = await asyncio.shield(starting)
                except asyncio.CancelledError:
                    starting.add_done_callback(lambda _: self._arm_idle(environment_id))
                    raise
            if live.sandbox.restarts > live.told_restarts and not notes:
                notes.append(RESTARTED)
            live.told_restarts = live.sandbox.restarts
            live.users += 1
            try:
                await self._apply(live, setup)
            except BaseException:
                live.users -= 1
                self._arm_idle(environment_id)
                raise
            # Each warning once per environment, including ones a sandbox adds later (a
            # remote kernel restarted after ignoring an interrupt).
            notes.extend(live.sandbox.warnings[live.shown :])
            live.shown = len(live.sandbox.warnings)
        return Lease(environment_id, live.sandbox, notes)

    @staticmethod
    async def _apply(live: _Live, setup: SandboxSetup) -> None:
        """Bring the sandbox's variables and network up to what the environment asks."""
        sandbox = live.sandbox
        if not setup.variables.items() <= sandbox.variables.items():
            await sandbox.set_variables(setup.variables)
        if setup.allowlist != sandbox.allowlist:
            await sandbox.allow_network(setup.allowlist)

    def allowlist_refusal(self, kind: str | None) -> str | None:
        """Why an environment's sandbox of this kind could not honour a network allowlist."""
        chosen, options = registry.options_for(self.config, kind)
        cls = registry.available().get(chosen)
        return cls.allowlist_refusal(options) if cls is not None else None

    def release(self, lease: Lease) -> None:
        """The turn is over; the sandbox stays up for the next one until it idles out."""
        live = self._live.get(lease.environment_id)
        if live is None or live.sandbox is not lease.sandbox:
            return
        live.users = max(0, live.users - 1)
        self._arm_idle(lease.environment_id)

    def _arm_idle(self, environment_id: str) -> None:
        live = self._live.get(environment_id)
        if live is None or live.users or self._closed:
            return
        self._cancel_idle(live)
        loop = asyncio.get_running_loop()
        live.idle = loop.call_later(self.idle_seconds, self._expire, environment_id)

    async def discard(self, environment_id: str, root: Path | None = None) -> None:
        """Stop the environment's sandbox now and delete its quota disk, if it has one (the
        environment, whose directory is `root`, is being deleted)."""
        starting = self._starting.get(environment_id)
        if starting is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(starting)
        live = self._live.pop(environment_id, None)
        self._locks.pop(environment_id, None)
        self._storage.pop(environment_id, None)
        if live is not None:
            self._cancel_idle(live)
            await self._stop(live)
        root = self._roots.pop(environment_id, None) or root
        if root is not None:
            await self.disks.detach(root)
            await asyncio.to_thread((root / IMAGE).unlink, True)
        await asyncio.to_thread(self._mark(environment_id).unlink, True)

    async def close(self) -> None:
        """Stop every sandbox and the warm pool (gateway shutdown). Idempotent."""
        self._closed = True
        for starting in list(self._starting.values()):
            with contextlib.suppress(BaseException):
                await asyncio.shield(starting)
        lives = list(self._live.values())
        self._live.clear()
        for live in lives:
            self._cancel_idle(live)
        await asyncio.gather(*(self._stop(live) for live in lives))
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        await self.disks.close()

    # -- lifecycle ------------------------------------------------------------------------------

    async def _start(self, environment_id: str, root: Path, kind: str | None) -> _Live:
        chosen = kind or self.config.sandbox
        options: dict[str, Any] = {"root": root, "limits": self.limits}
        if self._pool_factory is not None and self._takes_option(chosen, "pool"):
            if self.pool is None:
                self.pool = self._pool_factory()
            options["pool"] = self.pool
        if self._takes_option(chosen, "disks"):
            options["disks"] = self.disks
        sandbox = registry.create_for(self.config, kind, **options)
        try:
            async with self.storage_lock(environment_id):
                await sandbox.start()
                if sandbox.root is None:
                    await _copy_in(DirectoryFiles(root), sandbox.files)
        except BaseException:
            with contextlib.suppress(Exception):
                await sandbox.stop()
            raise
        live = _Live(sandbox, chosen)
        if self._closed:  # shutdown began while this one started
            await self._stop(live)
            raise SandboxError("the gateway is shutting down; retry once it is back")
        self._live[environment_id] = live
        await asyncio.to_thread(self._remember_start, environment_id)
        log.info("sandbox %s (%s) started for %s", chosen, sandbox.isolation, environment_id)
        return live

    def _mark(self, environment_id: str) -> Path:
        return self._started_marks / environment_id

    def _ran_before(self, environment_id: str) -> bool:
        """Whether a sandbox ran for this environment before (in this gateway run or an
        earlier one): a fresh one then starts without the variables of earlier turns."""
        return self._mark(environment_id).exists()

    def _remember_start(self, environment_id: str) -> None:
        self._started_marks.mkdir(parents=True, exist_ok=True)
        self._mark(environment_id).touch()

    def _takes_option(self, kind: str, name: str) -> bool:
        """Whether this kind's constructor takes the option `name` (found once per kind)."""
        if (kind, name) not in self._takes:
            cls = registry.available().get(kind)
            parameters = inspect.signature(cls).parameters if cls is not None else {}
            self._takes[(kind, name)] = name in parameters
        return self._takes[(kind, name)]

    async def _probe(self, environment_id: str, live: _Live) -> bool:
        """Check a sandbox that sat idle: True if it answers (a kernel it had to restart
        meanwhile shows in its `restarts`); False if it is gone (stopped here, the caller
        starts a new one). An error in the answer is the echo of an interrupted run (e.g.
        "Aborted", which the probe absorbs so the next real run is not aborted)."""
        try:
            await live.sandbox.run("pass", timeout=PROBE_SECONDS)
        except (SandboxError, OSError) as exc:
            log.info("sandbox of %s is gone (%s); starting a fresh one", environment_id, exc)
        else:
            return True
        self._live.pop(environment_id, None)
        await self._stop(live)
        return False

    def _expire(self, environment_id: str) -> None:
        live = self._live.get(environment_id)
        if live is None or live.users:
            return
        del self._live[environment_id]
        log.info("stopping the idle sandbox of %s", environment_id)
        task = asyncio.ensure_future(self._stop(live))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    @staticmethod
    def _cancel_idle(live: _Live) -> None:
        if live.idle is not None:
            live.idle.cancel()
            live.idle = None

    @staticmethod
    async def _stop(live: _Live) -> None:
        try:
            await live.sandbox.stop()
        except Exception as exc:  # stopping must never take the gateway down
            log.warning("could not stop a %s sandbox cleanly: %s", live.kind, exc)


async def _copy_in(source: DirectoryFiles, target: SandboxFiles) -> None:
    """Put the environment's files (its inline sources, uploads) into a remote sandbox."""
    for info in await source.list("", recursive=True):
        if info.type == "file":
            await target.write(info.path, await source.read(info.path))


def configured_limits(config: GatewayConfig) -> Limits:
    """`sandbox_options.limits` of the config file ({"cpu_seconds": 60, ...}) over defaults."""
    given = config.sandbox_options.get("limits") or {}
    known = set(Limits.__dataclass_fields__)
    if not isinstance(given, dict) or set(given) - known:
        raise ConfigError(
            f"sandbox_options.limits must be an object with keys among {sorted(known)}; "
            f"got {given!r}"
        )
    return Limits(**given)
