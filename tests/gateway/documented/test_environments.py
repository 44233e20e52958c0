"""Environments, as documented (ai.google.dev/gemini-api/docs/agent-environment, the
managed-agents quickstart and Google's Python samples): every form of `environment` for an
agent's first call, its reuse, streaming and background chains, the Environments API and
its compute `mode`. Only base_url, the model and the agent name change (see gateways.py);
what cannot run offline is refused at once with a 400 that says why.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import interactions as itypes
from tests.gateway.documented.gateways import client, docs_gateway, fence, wait_for

from jupyter_interactions._sdk import errors

__all__ = ["client", "docs_gateway"]  # the fixtures these examples use

AGENT = "local-agent"  # the docs: "antigravity-preview-05-2026"


def test_remote_provisions_a_fresh_sandbox(client: Any) -> None:
    interaction = client.interactions.create(
        agent=AGENT,
        input="Install pandas and matplotlib, verify the imports, and print the versions.",
        environment="remote",
    )
    print(f"Environment ID: {interaction.environment_id}")

    assert interaction.status == "completed"
    assert interaction.environment_id.startswith("env_")
    assert client.environments.get(interaction.environment_id).status == "active"
    again = client.interactions.create(agent=AGENT, input="hi", environment="remote")
    assert again.environment_id != interaction.environment_id  # fresh each time


def test_the_three_forms_of_the_environment_parameter(client: Any) -> None:
    # Fresh sandbox
    interaction = client.interactions.create(
        agent=AGENT,
        input="Write a hello world script.\n" + fence("open('hello.py', 'w').write('hi')"),
        environment="remote",
    )

    # Reuse an existing sandbox
    interaction_2 = client.interactions.create(
        agent=AGENT,
        input="Modify the script to accept a name argument.\n"
        + fence("print(open('hello.py').read())"),
        environment=interaction.environment_id,
        previous_interaction_id=interaction.id,
    )
    assert interaction_2.environment_id == interaction.environment_id
    assert "hi" in interaction_2.output_text  # the file the first turn wrote is there

    # New sandbox with sources: a repository cannot be cloned offline; an inline one can.
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent=AGENT,
            input="List all files and summarize the project.",
            environment={
                "type": "remote",
                "sources": [
                    {
                        "type": "repository",
                        "source": "https://github.com/octocat/Spoon-Knife",
                        "target": "/workspace/spoon-knife",
                    }
                ],
            },
        )
    assert "source type 'repository'" in str(refused.value)
    interaction_3 = client.interactions.create(
        agent=AGENT,
        input="List all files and summarize the project.",
        environment={
            "type": "remote",
            "sources": [
                {
                    "type": "inline",
                    "content": "# Project Notes\n\n- Analyze state population data\n",
                    "target": "/workspace/notes/readme.md",
                }
            ],
        },
    )
    print(interaction.output_text)
    notes = client.environments.files.download(
        environment=interaction_3.environment_id, path="workspace/notes/readme.md"
    )
    assert notes.startswith(b"# Project Notes")


def test_environment_variables_literal_and_credential(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent=AGENT,
            input="Build the project and run the test suite.",
            environment={
                "type": "remote",
                "env": {
                    "NODE_ENV": "production",
                    "LOG_LEVEL": "debug",
                    "API_TOKEN": {"credential": "my-api-token"},
                },
            },
        )
    assert "credentials are resources of Google's service" in str(refused.value)
    interaction = client.interactions.create(
        agent=AGENT,
        input=fence("import os; print(os.environ['NODE_ENV'], os.environ['LOG_LEVEL'])"),
        environment={"type": "remote", "env": {"NODE_ENV": "production", "LOG_LEVEL": "debug"}},
    )
    assert "production debug" in interaction.output_text


def test_network_disabled_and_header_transforms(client: Any) -> None:
    interaction = client.interactions.create(
        agent=AGENT,
        input="Analyze the local files only.",
        environment={"type": "remote", "network": "disabled"},
    )
    print(interaction.output_text)
    assert interaction.status == "completed"
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent=AGENT,
            input="Fetch the latest issues from the GitHub API for my-org/my-repo.",
            environment={
                "type": "remote",
                "network": {
                    "allowlist": [
                        {
                            "domain": "api.github.com",
                            "transform": {"Authorization": "Bearer ghp_your_github_token"},
                        },
                        {"domain": "pypi.org"},
                        {"domain": "*"},
                    ]
                },
            },
        )
    assert "header transforms" in str(refused.value)


def test_streaming_an_agent_in_a_fresh_sandbox(client: Any) -> None:
    stream = client.interactions.create(
        agent=AGENT,
        input="Write a Python script that prints 'streamed'.\n" + fence("print('streamed')"),
        environment="remote",
        stream=True,
    )
    events = []
    for event in stream:
        events.append(event)
        if event.event_type == "step.delta" and event.delta.type == "text":
            print(event.delta.text, end="")
    created, completed = events[0], events[-1]
    assert isinstance(created, itypes.InteractionCreatedEvent)
    assert created.interaction.environment_id.startswith("env_")
    assert completed.interaction.status == "completed"
    kinds = {e.step.type for e in events if e.event_type == "step.start"}
    assert {"code_execution_call", "code_execution_result", "model_output"} <= kinds


def test_background_agent_chain_keeps_its_environment(client: Any) -> None:
    first = client.interactions.create(
        agent=AGENT,
        input="Create data.txt\n" + fence("open('data.txt', 'w').write('42')"),
        environment="remote",
        background=True,
    )
    assert first.status in ("queued", "in_progress")
    first = wait_for(client, first.id)
    assert first.status == "completed" and first.environment_id
    # The next turn: previous_interaction_id alone continues in the same sandbox.
    second = client.interactions.create(
        agent=AGENT,
        input=fence("print(open('data.txt').read())"),
        previous_interaction_id=first.id,
        background=True,
    )
    second = wait_for(client, second.id)
    assert second.status == "completed"
    assert second.environment_id == first.environment_id
    assert "42" in second.output_text


def test_environment_id_with_a_new_network_updates_that_sandbox(client: Any) -> None:
    first = client.interactions.create(agent=AGENT, input="hi", environment="remote")
    # "Refresh credentials": the same environment_id with new network rules.
    result = client.interactions.create(
        agent=AGENT,
        input="Now list the files again.",
        environment={
            "type": "remote",
            "environment_id": first.environment_id,
            "network": "disabled",
        },
    )
    assert result.environment_id == first.environment_id
    assert client.environments.get(first.environment_id).network == "disabled"


def test_environments_api_list_get_delete(client: Any) -> None:
    created = client.interactions.create(agent=AGENT, input="hi", environment="remote")

    response = client.environments.list(page_size=10)
    for env in response.environments:
        print(f"Environment ID: {env.id}, Status: {env.status}")
    assert created.environment_id in {env.id for env in response.environments}

    env = client.environments.get(id=created.environment_id)
    print(f"Environment ID: {env.id}, Status: {env.status}")
    assert env.status == "active"

    client.environments.delete(id=created.environment_id)
    with pytest.raises(errors.NotFoundError):
        client.environments.get(id=created.environment_id)


def test_create_and_copy_an_environment(client: Any) -> None:
    source_env = client.environments.create(
        sources=[{"type": "inline", "target": "main.py", "content": "print('Hello')"}]
    )
    environment = client.environments.create(from_environment=source_env.id)
    print(environment.id)
    copied = client.environments.files.download(environment=environment.id, path="main.py")
    assert copied == b"print('Hello')"
    client.environments.delete(id=environment.id)
    client.environments.delete(id=source_env.id)


def test_compute_mode_on_demand_is_honoured_and_self_hosted_refused(client: Any) -> None:
    environment = client.environments.create(mode="on_demand")
    assert environment.mode == "on_demand"
    on_demand = client.environments.list(mode="on_demand")
    assert environment.id in {env.id for env in on_demand.environments}
    # No environment here is self-hosted: listing them finds none, creating one is refused.
    assert not client.environments.list(mode="self_hosted").environments
    with pytest.raises(errors.BadRequestError) as refused:
        client.environments.create(mode="self_hosted", system_instruction="Be brief.")
    assert "self_hosted" in str(refused.value) and "on_demand" in str(refused.value)
    with pytest.raises(errors.BadRequestError) as refused:
        client.environments.create(system_instruction="Be brief.")
    assert "system_instruction" in str(refused.value)
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent=AGENT, input="hi", environment={"type": "remote", "mode": "self_hosted"}
        )
    assert "self_hosted" in str(refused.value)
