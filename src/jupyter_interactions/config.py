"""The only place settings and environment variables are read.

Gateway settings come, in increasing priority, from defaults, a JSON config file
(`$JUPYTER_INTERACTIONS_CONFIG`, else `<jupyter config dir>/jupyter_interactions.json`),
environment variables, and explicit arguments (command line, server-extension traits).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir, jupyter_runtime_dir

from .errors import ConfigError
from .protocol import strict_loads

# One runtime file per gateway process, named by its pid (as Jupyter's jpserver-<pid>.json).
RUNTIME_FILE_GLOB = "jupyter-interactions-gateway-*.json"
DEFAULT_GEMINI_URL = "https://generativelanguage.googleapis.com/"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback."""

    def __repr__(self) -> str:
        return "Secret('***')"


def env(name: str, default: str | None = None) -> str | None:
    """One environment variable, with empty treated as unset."""
    value = os.environ.get(name)
    return value if value else default


def gemini_api_key() -> Secret | None:
    key = env("GEMINI_API_KEY") or env("GOOGLE_API_KEY")
    return Secret(key) if key else None


def data_dir() -> Path:
    return Path(env("JUPYTER_INTERACTIONS_DATA_DIR") or Path(jupyter_data_dir()) / "interactions")


def runtime_dir() -> Path:
    return Path(jupyter_runtime_dir())


def runtime_file(pid: int) -> Path:
    """Where the standalone gateway of process `pid` publishes its URL and token (0600)."""
    return runtime_dir() / RUNTIME_FILE_GLOB.replace("*", str(pid))


def config_file() -> Path:
    default = Path(jupyter_config_dir()) / "jupyter_interactions.json"
    return Path(env("JUPYTER_INTERACTIONS_CONFIG") or default)


def read_json_object(
    path: Path, error: type[Exception] = ConfigError, what: str = "", fix: str = ""
) -> dict[str, Any]:
    """The JSON object in `path`; else `error`, naming the file as `what` (default its path)
    and ending with `fix` (what to do about it)."""
    what = what or str(path)
    try:
        # Strict: a cassette's events are served as they are, and no answer holds NaN.
        data = strict_loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what}: {exc}{fix}") from None
    if not isinstance(data, dict):
        raise error(f"{what} must hold a JSON object{fix}")
    return data


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return read_json_object(path, fix="; fix or remove that file")


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to run. `models` maps extra model names to adapter
    settings, e.g. {"qwen": {"adapter": "openai", "base_url": "http://127.0.0.1:11434/v1",
    "model": "qwen2.5"}} or {"mine": {"adapter": "local", "path": "/models/x.gguf"}}."""

    host: str = "127.0.0.1"
    port: int = 0
    token: Secret | None = None
    data_dir: Path = field(default_factory=data_dir)
    gemini_api_key: Secret | None = None
    upstream_url: str = DEFAULT_GEMINI_URL
    upstream_attempts: int = 4  # tries per upstream call, the SDK's backoff between them
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    sandbox: str = "local"
    sandbox_options: dict[str, Any] = field(default_factory=dict)  # for the `sandbox` kind
    # Options of other kinds environments may ask for: {"jupyter": {"url": ...}, ...}
    sandbox_kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    sandbox_idle_seconds: float = 900.0  # an environment's live sandbox stops after this idle
    warm_pool_size: int = 1  # sandbox kernels started ahead of use, per isolation tier; 0: none
    # A gateway a kernel started exits after this long with no client connected and nothing
    # running (0: never). One started by hand runs until stopped, unless given --idle-exit.
    idle_exit_seconds: float = 3600.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Record and replay (gateway/replay/). What a notebook's cassette (`<notebook>.interactions/`
    # beside it) does when the notebook has not said (%interactions record|replay): "auto"
    # serves what needs Google from it when the gateway has no key, "record" records every
    # interaction into it, "replay" serves every interaction from it, "off" ignores it.
    cassettes: str = "auto"
    replay_pacing: float = 0.1  # a replay waits this fraction of each recorded gap (0: none)
    cassette_max_file_bytes: int = 16 * 1024 * 1024  # larger agent files are not recorded

    @classmethod
    def load(cls, **overrides: Any) -> GatewayConfig:
        """Defaults < config file < environment < explicit overrides (None means 'not given')."""
        file_settings = _read_config_file(config_file())
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(file_settings) - known
        if unknown:
            raise ConfigError(
                f"unknown settings {sorted(unknown)} in {config_file()}; known: {sorted(known)}"
            )
        settings: dict[str, Any] = dict(file_settings)
        from_env = {
            "data_dir": env("JUPYTER_INTERACTIONS_DATA_DIR"),
            "upstream_url": env("JUPYTER_INTERACTIONS_UPSTREAM_URL"),
            "sandbox": env("JUPYTER_INTERACTIONS_SANDBOX"),
        }
        settings.update({k: v for k, v in from_env.items() if v is not None})
        key = gemini_api_key()
        if key is not None:
            settings["gemini_api_key"] = key
        settings.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**settings)
        return replace(
            config,
            data_dir=Path(config.data_dir),
            token=Secret(config.token) if config.token else None,
            gemini_api_key=Secret(config.gemini_api_key) if config.gemini_api_key else None,
            warm_pool_size=int(_at_least_zero("warm_pool_size", config.warm_pool_size)),
            idle_exit_seconds=_at_least_zero("idle_exit_seconds", config.idle_exit_seconds),
        )

    def __repr__(self) -> str:  # never print secrets, even by accident
        return f"GatewayConfig({masked(self.__dict__)})"


def _at_least_zero(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ConfigError(f"setting {name} must be a number >= 0, not {value!r}")
    return number


_SECRET_WORDS = ("token", "key", "password", "secret", "authorization", "headers")


def masked(value: Any) -> Any:
    """A copy of settings with every secret-looking entry, at any depth, shown as '***'."""
    if isinstance(value, dict):
        return {
            k: "***" if v and any(w in str(k).lower() for w in _SECRET_WORDS) else masked(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(masked(v) for v in value)
    return value


# Kernel-side readers (the notebook extension). Kept here so this stays the only module
# that reads the environment.


def gateway_override() -> tuple[str, Secret | None] | None:
    """An explicit gateway (JUPYTER_INTERACTIONS_URL + JUPYTER_INTERACTIONS_TOKEN), if set."""
    url = env("JUPYTER_INTERACTIONS_URL")
    if not url:
        return None
    token = env("JUPYTER_INTERACTIONS_TOKEN")
    return url, Secret(token) if token else None


def gateway_data_dir() -> Path:
    """The data dir a gateway started from here would own (kernels look for its owner)."""
    try:
        return GatewayConfig.load().data_dir
    except ConfigError:  # the gateway will say what is wrong when it is started
        return data_dir()


def direct_url() -> str:
    """Where --direct sends requests: Google's service unless overridden (tests use loopback)."""
    return env("JUPYTER_INTERACTIONS_DIRECT_URL") or DEFAULT_GEMINI_URL


def notebook_session_name() -> str | None:
    """The notebook path Jupyter gives its kernels (JPY_SESSION_NAME), if any."""
    return env("JPY_SESSION_NAME")


def jupyter_parent_pid() -> str | None:
    """The pid of the Jupyter server that started this kernel (JPY_PARENT_PID), if any."""
    return env("JPY_PARENT_PID")
