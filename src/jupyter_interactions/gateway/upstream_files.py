"""The files of an environment that lives on Google's service (an agent there made it),
served through the gateway's own files routes by asking Google with the gateway's key.

Read-only here: listing and downloading work; uploads go to Google's service directly.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from ..errors import NotFoundError, UnsupportedError, UpstreamError
from ..sandbox.base import FileInfo, SandboxFiles, clean_relative

__all__ = ["UpstreamFiles", "ask_google", "no_uploads"]


class UpstreamFiles(SandboxFiles):
    def __init__(self, environments: Any, environment_id: str) -> None:
        self._environments = environments  # google-genai's client.aio.environments
        self.environment_id = environment_id

    async def list(self, path: str = "", recursive: bool = False) -> builtins.list[FileInfo]:
        entries: builtins.list[FileInfo] = []
        token = None
        while True:
            page = await ask_google(
                self._environments.files.list,
                self.environment_id,
                clean_relative(path),
                recursive=recursive,
                page_size=1000,
                page_token=token,
            )
            entries.extend(_info(f) for f in page.files or [])
            token = getattr(page, "next_page_token", None)
            if not token:
                return entries

    async def stat(self, path: str) -> FileInfo:
        rel = clean_relative(path)
        for info in await self.list(rel):
            if info.path == rel:
                return info
        raise NotFoundError(f"{rel!r} is not a file of environment {self.environment_id}")

    async def read(self, path: str) -> bytes:
        data = await ask_google(
            self._environments.files.download,
            environment=self.environment_id,
            path=clean_relative(path),
        )
        return bytes(data)

    async def write(self, path: str, data: bytes) -> FileInfo:
        raise no_uploads(self.environment_id)


async def ask_google(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an SDK method on Google's service; its errors as the gateway's own."""
    from .._sdk import errors as sdk_errors

    try:
        return await method(*args, **kwargs)
    except sdk_errors.NotFoundError:
        raise NotFoundError("not found on Google's service") from None
    except sdk_errors.APIStatusError as exc:
        raise UpstreamError(
            f"Google's service answered {exc.status_code} about this environment"
        ) from None
    except sdk_errors.APIConnectionError:
        raise UpstreamError("cannot reach Google's service about this environment") from None


def no_uploads(environment_id: str) -> UnsupportedError:
    return UnsupportedError(
        f"environment {environment_id} lives on Google's service: upload to it with a direct "
        "client (genai.Client with your key), not through the gateway"
    )


def _info(resource: Any) -> FileInfo:
    modified = getattr(resource, "modified", None)
    stamp = modified.timestamp() if isinstance(modified, datetime) else 0.0
    if isinstance(modified, str):
        stamp = datetime.fromisoformat(modified.replace("Z", "+00:00")).timestamp()
    return FileInfo(
        path=str(resource.path),
        type="directory" if resource.type == "directory" else "file",
        size=int(resource.size_bytes or 0),
        modified=stamp,
        mime_type=str(getattr(resource, "mime_type", None) or "application/octet-stream"),
    )
