"""Agents, environments and their files, through the SDK (sync and async); sessions through
our own routes."""

from __future__ import annotations

import io
import tarfile
from urllib.parse import quote

import httpx2 as httpx
import pytest
from google.genai import errors as classic_errors

from jupyter_interactions._sdk import errors


async def test_agents_crud(api):
    agent_id = f"helper-{api.mode}"
    created = await api.call(
        "agents.create",
        id=agent_id,
        base_agent="local-agent",
        description="helps",
        system_instruction="Answer briefly.",
        tools=[{"type": "code_execution"}],
    )
    assert created.id == agent_id and created.system_instruction == "Answer briefly."
    fetched = await api.call("agents.get", agent_id)
    assert fetched.description == "helps" and fetched.base_agent == "local-agent"
    listed = await api.call("agents.list", page_size=1000)
    assert agent_id in [a.id for a in listed.agents]
    with pytest.raises(errors.BadRequestError):
        await api.call("agents.create", id=agent_id, base_agent="local-agent")
    await api.call("agents.delete", agent_id)
    with pytest.raises(errors.NotFoundError):
        await api.call("agents.get", agent_id)


async def test_agents_list_pages(api):
    for i in range(3):
        await api.call("agents.create", id=f"page-{api.mode}-{i}", base_agent="local-agent")
    seen, token = [], None
    while True:
        page = await api.call("agents.list", page_size=2, page_token=token)
        seen += [a.id for a in page.agents]
        token = page.next_page_token
        if not token:
            break
    assert {f"page-{api.mode}-{i}" for i in range(3)} <= set(seen)
    assert len(seen) == len(set(seen))


async def test_environment_files_list_download_upload(api):
    env = await api.call(
        "environments.create",
        sources=[
            {"type": "inline", "content": "print('hi')\n", "target": "workspace/main.py"},
            {"type": "inline", "content": "aGVsbG8=", "encoding": "base64", "target": "data/h.txt"},
        ],
        network="disabled",
    )
    assert env.id.startswith("env_") and env.status == "active"
    assert env.file_count == 2 and env.size_bytes == len("print('hi')\n") + 5
    assert env.network == "disabled"

    listing = await api.call("environments.files.list", env.id, "workspace")
    assert [(f.name, f.path, f.type) for f in listing.files] == [
        ("main.py", "workspace/main.py", "file")
    ]
    everything = await api.call("environments.files.list", env.id, "", recursive=True)
    assert {f.path for f in everything.files} == {
        "data",
        "data/h.txt",
        "workspace",
        "workspace/main.py",
    }
    single = await api.call("environments.files.list", env.id, "data/h.txt")
    assert single.files[0].size_bytes == 5
    assert (
        await api.call("environments.files.download", environment=env.id, path="data/h.txt")
        == b"hello"
    )

    uploaded = await api.call(
        "environments.files.upload",
        environment=env.id,
        path="workspace/data.csv",
        file=b"a,b\n1,2\n",
        mime_type="text/csv",
    )
    assert uploaded.files[0].path == "workspace/data.csv" and uploaded.files[0].size_bytes == 8
    data = await api.call(
        "environments.files.download", environment=env.id, path="workspace/data.csv"
    )
    assert data == b"a,b\n1,2\n"
    with pytest.raises(errors.BadRequestError) as excinfo:
        await api.call(
            "environments.files.upload", environment=env.id, path="workspace/data.csv", file=b"x"
        )
    assert "overwrite" in str(excinfo.value)
    await api.call(
        "environments.files.upload",
        environment=env.id,
        path="workspace/data.csv",
        file=b"new",
        overwrite=True,
    )
    assert (
        await api.call("environments.files.download", environment=env.id, path="workspace/data.csv")
        == b"new"
    )

    with pytest.raises(classic_errors.ClientError) as excinfo:
        await api.call("environments.files.download", environment=env.id, path="workspace/none.txt")
    assert excinfo.value.code == 404


def test_file_paths_cannot_leave_the_environment(client, gateway):
    env = client.environments.create(
        sources=[{"type": "inline", "content": "x", "target": "workspace/x.txt"}]
    )
    (gateway.data_dir / "outside.txt").write_text("secret")
    for path in ("%2E%2E/%2E%2E/outside.txt", "workspace/%2E%2E/%2E%2E/%2E%2E/outside.txt"):
        response = _session(gateway, "GET", f"/v1/environments/{env.id}/files/{path}?alt=media")
        assert response.status_code == 400, response.text
        assert "outside" in response.json()["error"]["message"] or "leaves" in response.text


async def test_environment_fork_and_delete(api):
    env = await api.call(
        "environments.create",
        sources=[{"type": "inline", "content": "one", "target": "workspace/a.txt"}],
    )
    fork = await api.call("environments.create", from_environment=f"environments/{env.id}")
    assert fork.id != env.id and fork.file_count == 1
    await api.call(
        "environments.files.upload", environment=fork.id, path="workspace/b.txt", file=b"2"
    )
    assert (await api.call("environments.get", env.id)).file_count == 1
    assert (await api.call("environments.get", fork.id)).file_count == 2
    listed = await api.call("environments.list", page_size=1000)
    assert {env.id, fork.id} <= {e.id for e in listed.environments}
    await api.call("environments.delete", fork.id)
    with pytest.raises(errors.NotFoundError):
        await api.call("environments.get", fork.id)
    with pytest.raises(errors.BadRequestError):
        await api.call(
            "environments.create", sources=[{"type": "gcs", "source": "gs://b/x", "target": "x"}]
        )


async def test_interaction_with_environment_object_and_id(api):
    it = await api.call(
        "interactions.create",
        model="echo",
        input="hi",
        environment={
            "type": "remote",
            "sources": [{"type": "inline", "content": "x", "target": "workspace/x.txt"}],
        },
    )
    assert it.environment_id.startswith("env_")
    files = await api.call("environments.files.list", it.environment_id, "workspace")
    assert [f.name for f in files.files] == ["x.txt"]
    again = await api.call(
        "interactions.create", model="echo", input="hi", environment=it.environment_id
    )
    assert again.environment_id == it.environment_id
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.create", model="echo", input="hi", environment="env_missing")


async def test_upload_extract_unpacks_a_tar_archive(api):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("pkg/a.py", b"A = 1\n"), ("pkg/b.txt", b"bee")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    env = await api.call("environments.create")
    placed = await api.call(
        "environments.files.upload",
        environment=env.id,
        path="workspace/src",
        file=buffer.getvalue(),
        extract=True,
    )
    assert sorted(f.path for f in placed.files) == [
        "workspace/src/pkg/a.py",
        "workspace/src/pkg/b.txt",
    ]
    listing = await api.call("environments.files.list", env.id, "workspace/src/pkg")
    assert sorted(f.name for f in listing.files) == ["a.py", "b.txt"]


def _session(gateway, method, path, **kwargs):
    with httpx.Client(base_url=gateway.url, headers={"x-goog-api-key": gateway.token}) as http:
        return http.request(method, path, **kwargs)


async def test_sessions_threads_and_jobs(api, gateway):
    key = f"work/notebook {api.mode}.ipynb"
    headers = {"x-interactions-session": quote(key, safe=""), "x-interactions-thread": "main"}
    tagged = gateway.client(headers=headers)
    try:
        api_tagged = type(api)(tagged, api.mode)
        first = await api_tagged.call("interactions.create", model="echo", input="one")
        second = await api_tagged.call(
            "interactions.create", model="echo", input="two", previous_interaction_id=first.id
        )
        failed = await api_tagged.call("interactions.create", model="broken", input="x")
        assert failed.status == "failed"
        # A turn stopped by a limit is an answer: the server moves the head to it, as the
        # kernel does (one rule, in protocol.py).
        stopped = await api_tagged.call(
            "interactions.create",
            model="echo",
            input="three words here",
            previous_interaction_id=second.id,
            generation_config={"max_output_tokens": 1},
        )
        assert stopped.status == "incomplete"
        job = await api_tagged.call(
            "interactions.create", model="slow", input="a " * 200, background=True
        )
    finally:
        await tagged.aio.aclose()
        tagged.close()
    path = f"/v1/sessions/{quote(key, safe='')}"
    session = _session(gateway, "GET", path).json()
    assert session["key"] == key
    (thread,) = session["threads"]
    # A failed turn never becomes the head; a stopped one does.
    assert thread["name"] == "main" and thread["head"] == stopped.id and thread["turns"] == 3
    assert thread["model"] == "echo"
    (listed_job,) = session["jobs"]
    assert listed_job["id"] == job.id and listed_job["thread"] == "main"
    assert listed_job["status"] == "in_progress"
    await api.call("interactions.cancel", job.id)
    (listed_job,) = _session(gateway, "GET", path).json()["jobs"]
    assert listed_job["status"] == "cancelled"

    fork = _session(gateway, "PUT", f"{path}/threads/side", json={"head": first.id})
    assert fork.status_code == 200 and fork.json()["turns"] == 1
    missing = _session(gateway, "PUT", f"{path}/threads/side", json={"head": "int_nope"})
    assert missing.status_code == 404
    names = {t["name"]: t["head"] for t in _session(gateway, "GET", path).json()["threads"]}
    assert names == {"main": stopped.id, "side": first.id}
    assert _session(gateway, "DELETE", f"{path}/threads/side").json() == {}
    assert [t["name"] for t in _session(gateway, "GET", path).json()["threads"]] == ["main"]
    assert _session(gateway, "DELETE", f"{path}/threads").json() == {}
    assert _session(gateway, "GET", path).json()["threads"] == []
    unknown = _session(gateway, "GET", "/v1/sessions/never-seen").json()
    assert unknown == {"key": "never-seen", "threads": [], "jobs": []}
