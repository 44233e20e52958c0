"""Saved (managed) agents and environment files, as documented (ai.google.dev/gemini-api/
docs/custom-agents, agent-environment "Manage files in the environment", and Google's
Python samples). Only base_url, the model and the agent names change (see gateways.py).
"""

from __future__ import annotations

import io
import tarfile
import urllib.request
import uuid
from typing import Any

import pytest
from tests.gateway.documented.gateways import client, docs_gateway, fence

from jupyter_interactions._sdk import errors

__all__ = ["client", "docs_gateway"]  # the fixtures these examples use

BASE_AGENT = "local-agent"  # the docs: "antigravity-preview-05-2026"


# -- saved agents ------------------------------------------------------------------------------


def test_create_with_a_google_only_tool_is_refused_at_create(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.agents.create(
            id=f"research-assistant-{uuid.uuid4().hex[:8]}",
            base_agent=BASE_AGENT,
            description="A helpful research assistant.",
            system_instruction="You are a helpful research assistant.",
            base_environment="remote",
            tools=[{"type": "google_search"}],
        )
    assert "'google_search'" in str(refused.value) and "GEMINI_API_KEY" in str(refused.value)


def test_an_unreachable_mcp_server_is_refused_at_create(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.agents.create(
            id=f"warehouse-manager-{uuid.uuid4().hex[:8]}",
            base_agent=BASE_AGENT,
            description="An AI assistant that can manage a warehouse inventory.",
            tools=[
                {"type": "mcp_server", "name": "warehouse-db", "url": "https://mcp.example.com/mcp"}
            ],
            base_environment={"type": "remote", "network": "disabled"},
        )
    assert "'warehouse-db'" in str(refused.value) and "allowlist" in str(refused.value)


def test_repository_source_is_refused_at_create_not_at_invocation(client: Any) -> None:
    agent_id = f"data-analyst-{uuid.uuid4().hex[:8]}"
    with pytest.raises(errors.BadRequestError) as refused:
        client.agents.create(
            id=agent_id,
            base_agent=BASE_AGENT,
            system_instruction=(
                "You are a data analyst. Always include visualizations and export results as PDF."
            ),
            base_environment={
                "type": "remote",
                "sources": [
                    {
                        "type": "inline",
                        "target": ".agents/AGENTS.md",
                        "content": "Always use matplotlib for charts.",
                    },
                    {
                        "type": "repository",
                        "source": "https://github.com/my-org/analysis-templates",
                        "target": "/workspace/templates",
                    },
                ],
            },
        )
    assert "source type 'repository'" in str(refused.value)
    with pytest.raises(errors.NotFoundError):
        client.agents.get(agent_id)  # nothing half-made was kept


def test_a_base_agent_that_is_not_local_is_refused_at_create(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.agents.create(
            id=f"x-{uuid.uuid4().hex[:8]}", base_agent="antigravity-preview-05-2026"
        )
    assert "runs on Google's service" in str(refused.value)
    assert "base_agent='local-agent'" in str(refused.value)


def test_saved_agent_from_sources_starts_clean_on_every_invocation(client: Any) -> None:
    agent = client.agents.create(
        id=f"data-analyst-{uuid.uuid4().hex[:8]}",
        base_agent=BASE_AGENT,
        system_instruction="You are a data analyst.",
        base_environment={
            "type": "remote",
            "sources": [
                {
                    "type": "inline",
                    "target": ".agents/AGENTS.md",
                    "content": "Always include a chart and a summary table in your reports.",
                },
            ],
        },
    )
    print(f"Created agent: {agent.id}")

    code = "import os; open('scratch.txt', 'w').write('x'); print(sorted(os.listdir('..')))"
    result = client.interactions.create(
        agent=agent.id, input="Analyze Q1 revenue data.\n" + fence(code), environment="remote"
    )
    print(result.output_text)
    assert result.status == "completed" and ".agents" in result.output_text
    again = client.interactions.create(
        agent=agent.id, input=fence("import os; print(os.path.exists('scratch.txt'))")
    )
    assert again.environment_id != result.environment_id
    assert "False" in again.output_text  # each invocation forks the base environment
    client.agents.delete(agent.id)


def test_saved_agent_forked_from_an_environment(client: Any) -> None:
    # Step 1: Set up the environment interactively.
    interaction = client.interactions.create(
        agent=BASE_AGENT,
        input="Write a basic Hello World template to /workspace/template.py.\n"
        + fence("open('template.py', 'w').write('print(\"Hello World\")')"),
        environment="remote",
    )

    # Step 2: Fork that environment into a named agent.
    agent_id = f"my-data-analyst-{uuid.uuid4().hex[:8]}"
    agent = client.agents.create(
        id=agent_id,
        base_agent=BASE_AGENT,
        system_instruction=(
            "You are a data analyst. Use the template at /workspace/template.py for all reports."
        ),
        base_environment=interaction.environment_id,
    )
    print(f"Forked agent: {agent.id}")

    run = client.interactions.create(
        agent=agent_id,
        input=fence("print(open('template.py').read()); open('template.py', 'w').write('')"),
        environment="remote",
    )
    assert 'print("Hello World")' in run.output_text
    assert run.environment_id != interaction.environment_id  # a fork, not the original
    template = client.environments.files.download(
        environment=interaction.environment_id, path="workspace/template.py"
    )
    assert template == b'print("Hello World")'  # the base is untouched by the run
    client.agents.delete(agent_id)


def test_invocation_overrides_instruction_tools_and_network(client: Any) -> None:
    agent = client.agents.create(
        id=f"data-analyst-{uuid.uuid4().hex[:8]}",
        base_agent=BASE_AGENT,
        system_instruction="You are a data analyst.",
        base_environment={
            "type": "remote",
            "sources": [{"type": "inline", "target": "/workspace/q1.csv", "content": "a,b\n1,2"}],
        },
    )
    result = client.interactions.create(
        agent=agent.id,
        input="Analyze Q1 revenue data, but do not create a slide deck.\n"
        + fence("print(open('q1.csv').read())"),
        system_instruction="You are a data analyst. Focus ONLY on summary tables.",
        tools=[{"type": "code_execution"}],  # Override to only use code execution
        environment="remote",
    )
    print(result.output_text)
    assert result.status == "completed" and "a,b" in result.output_text
    # A network override keeps the base's sources.
    disabled = client.interactions.create(
        agent=agent.id,
        input=fence("print(open('q1.csv').read())"),
        environment={"type": "remote", "network": "disabled"},
    )
    assert "a,b" in disabled.output_text
    assert client.environments.get(disabled.environment_id).network == "disabled"


def test_manage_agents_list_get_delete(client: Any) -> None:
    agent_id = f"test-agent-{uuid.uuid4().hex[:8]}"
    client.agents.create(
        id=agent_id, base_agent=BASE_AGENT, description="A test agent.", base_environment="remote"
    )
    agents = client.agents.list()
    for a in agents.agents:
        print(f"{a.id}: {a.description}")
    assert agent_id in {a.id for a in agents.agents}
    agent = client.agents.get(id=agent_id)
    print(agent)
    client.agents.delete(id=agent_id)
    with pytest.raises(errors.NotFoundError):
        client.agents.get(id=agent_id)


# -- environment files -------------------------------------------------------------------------


@pytest.fixture
def project(client: Any) -> Any:
    created = client.environments.create(
        sources=[
            {"type": "inline", "target": "src/main.py", "content": "print('Hello')"},
            {"type": "inline", "target": "src/util/helpers.py", "content": "X = 1"},
            {"type": "inline", "target": "config.yaml", "content": "mode: analysis"},
        ]
    )
    yield created
    client.environments.delete(id=created.id)


def test_list_files_and_get_metadata(client: Any, project: Any) -> None:
    # List root directory
    response = client.environments.files.list(environment=project.id, path="")
    for file in response.files:
        print(f"{file.name} ({file.type}) - {file.path}")
    assert {"src", "config.yaml"} <= {f.name for f in response.files}

    # List a subdirectory recursively
    response = client.environments.files.list(environment=project.id, path="src", recursive=True)
    assert {"src/main.py", "src/util", "src/util/helpers.py"} <= {f.path for f in response.files}

    response = client.environments.files.list(environment=project.id, path="src/main.py")
    file = response.files[0]
    print(f"Name: {file.name}, Size: {file.size_bytes} bytes, Type: {file.mime_type}")
    assert file.size_bytes == len("print('Hello')")


def test_download_a_single_file(client: Any, project: Any) -> None:
    content = client.environments.files.download(environment=project.id, path="src/main.py")
    print(content.decode("utf-8"))
    assert content == b"print('Hello')"


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:  # POSIX tar, not gzipped
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_download_a_directory_as_a_tar_archive(client: Any, project: Any, tmp_path: Any) -> None:
    # Download a subdirectory archive
    archive = client.environments.files.download(environment=project.id, path="src")

    with open(tmp_path / "src.tar", "wb") as f:
        f.write(archive)

    with tarfile.open(tmp_path / "src.tar") as tar:
        tar.extractall(path=tmp_path / "extracted", filter="data")

    # Top-level files only, named relative to the directory, as the docs' REST example says.
    assert (tmp_path / "extracted" / "main.py").read_text() == "print('Hello')"
    assert _members(archive) == {"main.py": b"print('Hello')"}


def test_download_recursively_and_the_whole_snapshot(docs_gateway: Any, project: Any) -> None:
    base = f"{docs_gateway.url.rstrip('/')}/v1beta/environments/{project.id}/files"

    def get(url: str) -> tuple[str, bytes]:
        request = urllib.request.Request(url, headers={"x-goog-api-key": docs_gateway.token})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers["content-type"], response.read()

    # Download a subdirectory recursively (includes nested directories)
    kind, nested = get(f"{base}/src?alt=media&recursive=true")
    assert kind == "application/x-tar"
    assert _members(nested) == {"main.py": b"print('Hello')", "util/helpers.py": b"X = 1"}
    # Download root directory: its top-level files
    _, snapshot = get(f"{base}?alt=media")
    assert _members(snapshot) == {"config.yaml": b"mode: analysis"}
