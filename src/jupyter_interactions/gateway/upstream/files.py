"""The files of an environment that lives on Google's service (an agent there made it),
served through the gateway's own files routes by asking Google with the gateway's key.

Read-only here: listing and downloading work; uploads go to Google's service directly.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from ...errors import (
    ConfigError,
    InteractionsError,
    NotFoundError,
    UnsupportedError,
    UpstreamError,
)
from ...sandbox.base import FileInfo, SandboxFiles, clean_relative

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
    """Call an SDK method on Google's service; its errors as the gateway's own, with Google's
    status passed through: a 4xx there is permanent here too, so the kernel's SDK does not
    retry it for half a minute (a 502 would be)."""
    from google.genai import errors as transfer_errors  # downloads use the classic client

    from ..._sdk import errors as sdk_errors

    try:
        return await method(*args, **kwargs)
    except (sdk_errors.APIStatusError, transfer_errors.APIError) as exc:
        status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
        raise _from_google(int(status) if isinstance(status, int) else None, exc) from None
    except sdk_errors.APIConnectionError:
        raise UpstreamError("cannot reach Google's service about this environment") from None


def _from_google(status: int | None, exc: Any) -> InteractionsError:
    said = _said(exc)
    if status == 404:
        return NotFoundError(f"not found on Google's service{said}")
    if status in (401, 403):
        return ConfigError(
            f"Google's service refused the gateway's key ({status}){said}; check the "
            "GEMINI_API_KEY the gateway runs with"
        )
    return UpstreamError(
        f"Google's service answered {status or 'an error'} about this environment{said}",
        status=status if status is not None and 400 <= status < 600 else None,
    )


def _said(exc: Any) -> str:
    """Google's own message, if it gave one (never the request, which holds the key)."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else getattr(exc, "message", None)
    return f": {str(message)[:300]}" if message else ""


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
