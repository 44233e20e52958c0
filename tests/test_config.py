"""Settings: precedence, bad files, and secrets that never show in a repr."""

from __future__ import annotations

import json

import pytest

from jupyter_interactions.config import GatewayConfig
from jupyter_interactions.errors import ConfigError
from jupyter_interactions.sandbox.base import Limits


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "jupyter_interactions.json"
    monkeypatch.setenv("JUPYTER_INTERACTIONS_CONFIG", str(path))
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return path


def test_file_then_environment_then_arguments(config_file, monkeypatch, tmp_path):
    config_file.write_text(json.dumps({"sandbox": "jupyter", "port": 9}))
    monkeypatch.setenv("JUPYTER_INTERACTIONS_SANDBOX", "local")
    config = GatewayConfig.load(port=None, data_dir=str(tmp_path / "d"))
    assert config.sandbox == "local"  # environment beats file
    assert config.port == 9  # file beats default; None means "not given"
    assert str(config.data_dir) == str(tmp_path / "d")


def test_unknown_setting_names_the_file(config_file):
    config_file.write_text(json.dumps({"sandbx": "local"}))
    with pytest.raises(ConfigError, match="unknown settings \\['sandbx'\\]"):
        GatewayConfig.load()


def test_unreadable_file_says_what_to_do(config_file):
    config_file.write_text("{not json")
    with pytest.raises(ConfigError, match="fix or remove that file"):
        GatewayConfig.load()


def test_repr_hides_every_secret(config_file, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-the-key")
    config_file.write_text(
        json.dumps(
            {
                "sandbox_options": {"url": "http://127.0.0.1:1/", "token": "remote-token"},
                "models": {"m": {"adapter": "openai", "api_key": "sk-secret", "base_url": "u"}},
            }
        )
    )
    text = repr(GatewayConfig.load(token="gateway-token"))
    for secret in ("AIza-the-key", "remote-token", "sk-secret", "gateway-token"):
        assert secret not in text
    assert "http://127.0.0.1:1/" in text  # only secrets are hidden


def test_sandbox_limits_come_from_the_config_file() -> None:
    from jupyter_interactions.gateway.environments.sandboxes import configured_limits

    limits = configured_limits(GatewayConfig(sandbox_options={"limits": {"cpu_seconds": 30}}))
    assert limits.cpu_seconds == 30 and limits.wall_seconds == Limits().wall_seconds
    with pytest.raises(ConfigError, match="keys among"):
        configured_limits(GatewayConfig(sandbox_options={"limits": {"cpu": 30}}))
