"""`client.interactions.auth_tokens` (google-genai 3.6): ephemeral tokens for browser clients,
created and deleted through the real SDK, then used as a browser would (`api_key=token`)."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2 as httpx
import pytest

from jupyter_interactions._sdk import errors


def refused(call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(errors.AuthenticationError):
        call(*args, **kwargs)


def test_a_token_reads_its_own_interaction_and_nothing_else(gateway: Any) -> None:
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="Hello from the notebook")
    token = client.interactions.auth_tokens.create(interaction.id)
    assert token.auth_token.startswith("auth_tokens/")
    lifetime = token.expires_at - datetime.now(timezone.utc)
    assert timedelta(minutes=29) < lifetime <= timedelta(minutes=30)

    browser = gateway.client(token=token.auth_token)
    assert browser.interactions.get(interaction.id).output_text == "Hello from the notebook"
    events = list(browser.interactions.get(interaction.id, stream=True))
    assert events[-1].interaction.status == "completed"

    other = client.interactions.create(model="echo", input="someone else's")
    refused(browser.interactions.get, other.id)
    refused(browser.interactions.create, model="echo", input="hi")
    refused(
        browser.interactions.create,
        model="echo",
        input="hi",
        previous_interaction_id=interaction.id,
    )
    refused(browser.interactions.delete, interaction.id)
    refused(browser.interactions.auth_tokens.create, interaction.id)
    refused(browser.interactions.auth_tokens.delete, interaction.id, token.auth_token)
    refused(browser.agents.list)
    refused(browser.environments.list)
    with httpx.Client(base_url=gateway.url) as http:
        headers = {"Authorization": f"Bearer {token.auth_token}"}
        assert http.get(f"/v1/interactions/{interaction.id}", headers=headers).status_code == 200
        assert http.get("/v1/sessions/k", headers=headers).status_code == 401
        assert (
            http.post(f"/v1/interactions/{interaction.id}/cancel", headers=headers).status_code
            == 401
        )

    client.interactions.auth_tokens.delete(interaction.id, token.auth_token)
    refused(browser.interactions.get, interaction.id)


def test_a_token_ends_at_its_expire_time(gateway: Any) -> None:
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="short-lived")
    # Room for the first request to land before it, even on a busy machine.
    expire = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=10)
    token = client.interactions.auth_tokens.create(interaction.id, expire_time=expire)
    assert token.expires_at == expire
    browser = gateway.client(token=token.auth_token)
    assert browser.interactions.get(interaction.id).status == "completed"
    time.sleep(max(0.0, (expire - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    refused(browser.interactions.get, interaction.id)


def test_uses_limit_the_requests_a_token_makes(gateway: Any) -> None:
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="twice")
    token = client.interactions.auth_tokens.create(interaction.id, extra_body={"uses": 2})
    browser = gateway.client(token=token.auth_token)
    browser.interactions.get(interaction.id)
    browser.interactions.get(interaction.id)
    refused(browser.interactions.get, interaction.id)


def test_bad_requests_say_what_a_token_takes(gateway: Any) -> None:
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="x")
    too_late = datetime.now(timezone.utc) + timedelta(hours=21)
    with pytest.raises(errors.BadRequestError, match="at most 20 hours"):
        client.interactions.auth_tokens.create(interaction.id, expire_time=too_late)
    with pytest.raises(errors.BadRequestError, match="lock_additional_fields"):
        client.interactions.auth_tokens.create(
            interaction.id, extra_body={"lock_additional_fields": []}
        )
    with pytest.raises(errors.BadRequestError, match="'write' is not one of"):
        client.interactions.auth_tokens.create(interaction.id, extra_body={"scope": "write"})
    with pytest.raises(errors.NotFoundError):
        client.interactions.auth_tokens.create("int_nothing_here")
    with pytest.raises(errors.NotFoundError):
        client.interactions.auth_tokens.delete(interaction.id, "auth_tokens/" + "0" * 64)


def test_tokens_are_stored_hashed_and_survive_a_restart(gateway_factory: Any) -> None:
    gateway = gateway_factory()
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="kept")
    token = client.interactions.auth_tokens.create(interaction.id)
    secret = token.auth_token.removeprefix("auth_tokens/")
    client.close()
    gateway.restart()
    browser = gateway.client(token=token.auth_token)
    assert browser.interactions.get(interaction.id).output_text == "kept"
    gateway.stop()
    stored = b"".join(p.read_bytes() for p in gateway.data_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored


def test_a_token_named_in_a_failed_delete_is_revoked_all_the_same(gateway: Any) -> None:
    """A delete's path may be logged (a 404 is): the token it names must not stay valid."""
    client = gateway.client()
    interaction = client.interactions.create(model="echo", input="mine")
    other = client.interactions.create(model="echo", input="not mine")
    token = client.interactions.auth_tokens.create(interaction.id)
    with pytest.raises(errors.NotFoundError, match="revoked now"):
        client.interactions.auth_tokens.delete(other.id, token.auth_token)
    browser = gateway.client(token=token.auth_token)
    refused(browser.interactions.get, interaction.id)
