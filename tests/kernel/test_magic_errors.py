"""Each error a user can meet gives one clear line (UsageError, no traceback), and no secret."""

from __future__ import annotations

import secrets

import pytest
from IPython.core.error import UsageError

# Shaped like a real Gemini key, made at run time so no key-like literal is committed.
SECRET = "AIza" + secrets.token_urlsafe(30)


def usage_error(result) -> str:
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return str(result.error_in_exec)


def test_bad_option_gives_usage_message(ipython, capsys):
    result = ipython.run("%%interaction --bogus\nhello")
    assert "unrecognized arguments: --bogus" in usage_error(result)
    err = capsys.readouterr().err
    assert "UsageError" in err and "Traceback" not in err


def test_model_and_agent_together(ipython):
    result = ipython.run("%%interaction --model echo --agent helper\nhello")
    assert usage_error(result) == "give --model or --agent, not both"


def test_empty_cell(ipython):
    result = ipython.run("%%interaction --model echo\n   \n")
    assert usage_error(result) == (
        "the cell is empty: write what to ask below the %%interaction line"
    )


def test_direct_without_a_key(ipython):
    result = ipython.run("%%interaction --direct --model gemini-flash-latest\nhello")
    assert usage_error(result) == (
        "--direct needs GEMINI_API_KEY in the kernel's environment; set it, "
        "or drop --direct to use the gateway (offline models need no key)"
    )


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "Google's service is busy (429) after 3 attempts; wait and re-run the cell"),
        (503, "Google's service failed (503) after 3 attempts; wait and re-run the cell"),
    ],
)
def test_upstream_busy_after_retries(ipython, status_server, monkeypatch, capsys, status, message):
    server = status_server(status)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_DIRECT_URL", server.url)
    result = ipython.run("%%interaction --direct --model gemini-flash-latest\nhello")
    assert usage_error(result) == message
    assert server.requests == ["POST /v1/interactions"] * 3  # the SDK retried, then we stopped
    captured = capsys.readouterr()
    shown = captured.out + captured.err + repr(ipython.outputs)
    assert SECRET not in shown and "Traceback" not in shown
    # A failed turn never becomes a thread head (direct mode keeps heads locally).
    assert ipython.run("%interactions threads --direct").result.rows == []


def test_unreachable_gateway(ipython, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", SECRET)
    result = ipython.run("%%interaction --model echo\nhello")
    assert usage_error(result) == (
        "cannot reach the gateway at http://127.0.0.1:9/ (JUPYTER_INTERACTIONS_URL); "
        "start it, or unset that variable to use one found or started here"
    )
