"""Environments: the directories the gateway owns for agents' files, their resources, and
resumable uploads into them.

Each environment is `{data_dir}/environments/{env_id}/` (agents work in `workspace/` inside
it). The resource (id, status, created, network, sources) lives in the store; file counts
are read from the directory when asked. Its environment variables (`env`) live in a table of
their own that no route serves: they are often secrets. Uploads are in uploads.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins  # `list` below is also a method of EnvironmentManager
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ...errors import NotFoundError, RequestError, UnsupportedError
from ...protocol import now, timestamp
from ...sandbox import safe_files
from ...sandbox.base import WORKSPACE, FileInfo, SandboxFiles, clean_relative
from ...sandbox.directory import DirectoryFiles, in_file_thread
from ...sandbox.egress import Allowlist
from ..state.stamps import new_id
from ..state.store import Store
from ..upstream.forward import GoogleUpstream
from .sandboxes import LiveSandboxes, SandboxSetup

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
UPSTREAM_SANDBOX = "google"  # the `sandbox` of environments that live on Google's service
# Compute modes (google-genai 3.6): this gateway starts every sandbox itself, on demand.
ON_DEMAND, SELF_HOSTED = "on_demand", "self_hosted"
MODES = (ON_DEMAND, SELF_HOSTED)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def file_resource(info: FileInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "path": info.path,
        "type": info.type,
        "size_bytes": str(info.size),
        "mime_type": info.mime_type,
        "modified": timestamp(info.modified),
    }


def _tree_size(root: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
                count += 1
            except OSError:
                continue
    return count, size


def _sources(config: dict[str, Any]) -> builtins.list[Any]:
    sources = config.get("sources") or []
    if not isinstance(sources, list):
        raise RequestError("sources must be a list")
    return sources


def check_mode(config: dict[str, Any]) -> str | None:
    """An environment's `mode` (None if not given), refusing what only a self-hosted
    environment means: Google's service then hands the work to a sandbox daemon you run."""
    mode = config.get("mode")
    if mode is not None and str(mode).lower() not in MODES:
        raise RequestError(f"environment mode {mode!r} is not one of {list(MODES)}")
    if mode is not None and str(mode).lower() == SELF_HOSTED:
        raise UnsupportedError(
            "environment mode 'self_hosted' means Google's service sends the work to a "
            "sandbox daemon you run; this gateway runs every sandbox itself (mode "
            "'on_demand', the default). To run code elsewhere, choose a sandbox kind in the "
            "gateway config, e.g. remote Jupyter kernels: {'sandbox': 'jupyter'}"
        )
    for field in ("system_instruction", "custom_config"):
        if config.get(field) is not None:
            raise UnsupportedError(
                f"environment {field} is only for self_hosted environments, which this "
                "gateway does not run; put system_instruction on the interaction (or the "
                "saved agent) instead"
            )
    return str(mode).lower() if mode is not None else None


def _described(sources: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
    """The content itself is in the directory; the resource only says where it went."""
    return [{k: v for k, v in s.items() if k != "content"} for s in sources]


def environment_variables(env: Any) -> dict[str, str]:
    """An environment object's `env` ({"NAME": "value" | {"value": ...}}) as plain strings.
    Credential references name secrets kept by Google's service: there are none here."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise RequestError("env must be an object of NAME: value")
    variables: dict[str, str] = {}
    for name, given in env.items():
        if not _ENV_NAME.match(str(name)):
            raise RequestError(
                f"env name {str(name)[:64]!r} is not a valid variable name (letters, digits, _)"
            )
        if isinstance(given, dict):
            if given.get("credential") is not None:
                raise UnsupportedError(
                    f"env {name}: credentials are resources of Google's service; on this "
                    "gateway give the value itself: env={'NAME': 'value'}"
                )
            given = given.get("value")
        if not isinstance(given, str):
            raise RequestError(f"env {name}: the value must be a string")
        if "\0" in given:
            raise RequestError(f"env {name}: the value cannot contain a NUL character")
        variables[str(name)] = given
    return variables


def _decoded(source: Any) -> tuple[str, bytes]:
    """An inline source's target path (relative to the environment root) and its bytes."""
    if not isinstance(source, dict):
        raise RequestError("each source must be an object")
    kind = str(source.get("type", "")).lower()
    if kind != "inline":
        raise UnsupportedError(
            f"source type {kind!r} is not available offline; use "
            "{'type': 'inline', 'content': ..., 'target': 'workspace/file'} or upload "
            "files with client.environments.files.upload"
        )
    target = source.get("target")
    if not target:
        raise RequestError("an inline source needs a 'target' path")
    target = clean_relative(source_target(str(target)))
    content = source.get("content", "")
    if str(source.get("encoding", "")).lower() != "base64":
        return target, str(content).encode()
    try:
        return target, base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"source {target!r}: content is not valid base64") from None


def source_target(target: str) -> str:
    """A source's target in the environment: the docs' absolute sandbox paths
    ("/workspace/notes.md") are relative to its root, as the sandbox's "/" is."""
    relative = target.strip().lstrip("/")
    if not relative or relative == ".":
        raise RequestError(
            f"source target {target!r} is the sandbox root; name a sub-directory or file, "
            "e.g. '/workspace/data.csv'"
        )
    return relative


def lives_upstream(resource: dict[str, Any]) -> bool:
    """Whether an environment resource is one of Google's (an agent there made it)."""
    return resource.get("sandbox") == UPSTREAM_SANDBOX


class EnvironmentManager:
    def __init__(
        self,
        data_dir: Path,
        store: Store,
        live: LiveSandboxes | None = None,
        upstream: GoogleUpstream | None = None,
    ) -> None:
        self.base = Path(data_dir) / "environments"
        self.store = store
        # The live sandboxes (sandboxes.py), and Google's service (upstream/forward.py) when
        # the gateway forwards there; None where a test or tool needs only the files.
        self.live = live
        self.upstream = upstream

    def root(self, environment_id: str) -> Path:
        if not _ID.match(environment_id):
            raise NotFoundError(f"environment {environment_id!r} not found")
        path = self.base / environment_id
        if self.live is not None:
            self.live.storage(environment_id, path)  # its quota disk mounted, if it has one
        return path

    @contextlib.asynccontextmanager
    async def holding(self, environment_id: str) -> AsyncIterator[Path]:
        """The environment's directory, which no starting sandbox moves meanwhile (a read
        would find nothing, and a write would be hidden beneath its quota disk): waits for
        a sandbox that is starting to have its files in place."""
        lock = self.live.storage_lock(environment_id) if self.live is not None else None
        async with lock or contextlib.nullcontext():
            yield self.root(environment_id)

    async def resource(self, environment_id: str) -> dict[str, Any]:
        """The environment's stored resource; a 404 that says where to look if none."""
        resource = await self.store.get_resource("environments", environment_id)
        if resource is None:
            raise NotFoundError(
                f"environment {environment_id!r} not found; list them with "
                "client.environments.list()"
            )
        return resource

    async def files(self, environment_id: str) -> SandboxFiles:
        """The environment's files (a 404 if it is unknown): its directory, a live remote
        sandbox's own files, or those of an environment on Google's service."""
        resource = await self.resource(environment_id)
        if self.upstream is not None and lives_upstream(resource):
            return self.upstream.files(environment_id)
        live_files = self.live.files(environment_id) if self.live is not None else None
        if live_files is not None:
            return live_files
        async with self.holding(environment_id) as root:
            return DirectoryFiles(root)

    # -- environments that live on Google's service ---------------------------------------------

    async def is_upstream(self, environment_id: str) -> bool:
        resource = await self.store.get_resource("environments", environment_id)
        return resource is not None and lives_upstream(resource)

    async def adopt_upstream(self, environment_id: str) -> None:
        """Remember an environment that an agent on Google's service made, so its id works
        here too (files, get, delete, reuse by the next turn)."""
        if await self.store.get_resource("environments", environment_id) is None:
            stamp = now()
            resource = {"id": environment_id, "status": "active", "created": stamp}
            resource.update(updated=stamp, sandbox=UPSTREAM_SANDBOX)
            await self.store.put_resource("environments", resource)

    # -- CRUD ----------------------------------------------------------------------------------

    async def create(self, config: dict[str, Any]) -> dict[str, Any]:
        """From `{sources?, network?}`, `{from_environment}`, or an interaction's
        environment object (`{type: "remote", sources, network, env}`)."""
        mode = check_mode(config)
        sources = _sources(config)
        variables = environment_variables(config.get("env"))
        fork = config.get("from_environment")
        if fork and (sources or variables):
            raise RequestError("a fork (from_environment) takes no sources or env")
        kind = str(config["sandbox"]) if config.get("sandbox") else None
        network = self._check_network(config.get("network"), kind)
        env_id = new_id("env")
        root = self.root(env_id)
        if fork:
            parent = str(fork).removeprefix("environments/")
            parent_resource = await self.get(parent)
            async with self.holding(parent) as parent_root:
                await in_file_thread(safe_files.copy_tree, str(parent_root), str(root))
            if network is None:
                network = parent_resource.get("network")
            variables = await self.variables(parent)
        else:
            await asyncio.to_thread((root / WORKSPACE).mkdir, parents=True, exist_ok=True)
        try:
            await self._write_sources(root, sources)
        except BaseException:
            await in_file_thread(shutil.rmtree, root, True)
            raise
        if variables:
            await self._save_variables(env_id, variables)
        stamp = now()
        resource: dict[str, Any] = {
            "id": env_id,
            "status": "active",
            "created": stamp,
            "updated": stamp,
        }
        if network is not None:
            resource["network"] = network
        if mode is not None:
            resource["mode"] = mode
        if kind:  # the sandbox kind its agents run in (default: the configured one)
            resource["sandbox"] = kind
        if sources:
            resource["sources"] = _described(sources)
        await self.store.put_resource("environments", resource)
        return await self._with_counts(resource)

    async def update(self, environment_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """An interaction's environment object naming an existing environment: its sources
        are added, its env merged over the variables set before, its network replaces."""
        resource = await self.resource(environment_id)
        check_mode(config)
        sources = _sources(config)
        variables = environment_variables(config.get("env"))
        network = self._check_network(config.get("network"), resource.get("sandbox"))
        async with self.holding(environment_id) as root:
            await self._write_sources(root, sources)
        if variables:
            await self._save_variables(
                environment_id, {**await self.variables(environment_id), **variables}
            )
        if network is not None:
            resource["network"] = network
        if sources:
            resource["sources"] = [*resource.get("sources", []), *_described(sources)]
        resource["updated"] = now()
        await self.store.put_resource("environments", resource)
        return await self._with_counts(resource)

    async def variables(self, environment_id: str) -> dict[str, str]:
        """The environment variables its sandbox gets (never part of a response)."""
        saved = await self.store.get_resource("environment_variables", environment_id)
        return dict(saved["variables"]) if saved else {}

    async def _save_variables(self, environment_id: str, variables: dict[str, str]) -> None:
        saved = {"id": environment_id, "created": now(), "variables": variables}
        await self.store.put_resource("environment_variables", saved)

    async def _write_sources(self, root: Path, sources: builtins.list[Any]) -> None:
        """Write inline sources into the environment, all or none: every one is checked
        (type, path inside the environment, encoding) before the first is written."""
        decoded = [_decoded(source) for source in sources]
        files = DirectoryFiles(root)
        for target, _ in decoded:  # a link or a special file there is refused before any write
            await files.check_target(target, overwrite=True)
        for target, data in decoded:
            await files.write(target, data)

    async def get(self, environment_id: str) -> dict[str, Any]:
        resource = await self.resource(environment_id)
        if self.upstream is not None and lives_upstream(resource):
            return {**await self.upstream.environment(environment_id), "sandbox": UPSTREAM_SANDBOX}
        return await self._with_counts(resource)

    async def sandbox_setup(self, environment_id: str) -> SandboxSetup:
        """What the environment's sandbox needs: its kind (the `sandbox` field), variables
        and network allowlist."""
        resource = await self.resource(environment_id)
        return SandboxSetup(
            kind=resource.get("sandbox") or None,
            variables=await self.variables(environment_id),
            allowlist=Allowlist.parse(resource.get("network")),
        )

    async def check_config(self, config: Any) -> None:
        """Check an environment config without making anything: "remote", an existing
        environment's id, or an object whose mode, sources, env and network can all be
        honoured (a saved agent's base_environment, when the agent is created)."""
        if config is None or config == "remote":
            return
        if isinstance(config, str):
            await self.resource(config.removeprefix("environments/"))  # 404 if unknown
            return
        if not isinstance(config, dict):
            raise RequestError("an environment is 'remote', an environment id, or an object")
        check_mode(config)
        for source in _sources(config):
            _decoded(source)
        environment_variables(config.get("env"))
        self._check_network(config.get("network"), config.get("sandbox"))

    def _check_network(self, network: Any, kind: str | None) -> Any:
        """The `network` setting, if the environment's sandbox kind can honour it."""
        if Allowlist.parse(network) is not None and self.live is not None:
            refusal = self.live.allowlist_refusal(kind)
            if refusal:
                raise UnsupportedError(refusal)
        return network

    async def _with_counts(self, resource: dict[str, Any]) -> dict[str, Any]:
        async with self.holding(resource["id"]) as root:
            count, size = await in_file_thread(_tree_size, root)
        return {**resource, "file_count": str(count), "size_bytes": str(size)}

    async def list(self, offset: int, limit: int, mode: str | None = None) -> list[dict[str, Any]]:
        """A page of environments; with `mode` (one of MODES, checked at the edge), those of
        that mode (all of them are on_demand here, none self_hosted)."""
        if mode == SELF_HOSTED:
            return []
        resources = await self.store.list_resources("environments", offset, limit)
        return [await self._with_counts(r) for r in resources]

    async def delete(self, environment_id: str) -> None:
        resource = await self.resource(environment_id)
        if self.upstream is not None and lives_upstream(resource):
            with contextlib.suppress(NotFoundError):  # gone there already
                await self.upstream.delete_environment(environment_id)
        if self.live is not None:
            await self.live.discard(environment_id, self.root(environment_id))
        await self.store.delete_resource("environments", environment_id)
        await self.store.delete_resource("environment_variables", environment_id)
        await in_file_thread(shutil.rmtree, self.root(environment_id), True)
