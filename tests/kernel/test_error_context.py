"""Errors carry their context, so a caller can act without parsing the message: the request
field at fault, the interaction a failed call was about, the HTTP status the server answered;
and every error class is exported from the package."""

from __future__ import annotations

import pytest

import jupyter_interactions
from jupyter_interactions import errors
from jupyter_interactions.errors import NotFoundError, RequestError

MISSING = "int_00000000000000ff"  # shaped like the gateway's ids; no such interaction


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model": "echo", "max_output_tokens": 0}, "max_output_tokens"),
        ({"agent": "local-agent", "max_output_tokens": 5}, "max_output_tokens"),
        ({"model": "echo", "agent": "local-agent"}, "agent"),
        ({"model": "echo", "environment": "remote"}, "environment"),
        ({"model": "echo", "tools": ["no_such_tool"]}, "tools"),
    ],
)
def test_a_request_error_names_its_field(session, options, field):
    with pytest.raises(RequestError) as refused:
        session.ask("hi", **options)
    assert refused.value.field == field
    assert refused.value.http_status == 400 and refused.value.interaction_id is None


def test_a_call_about_an_unknown_interaction_names_it_and_the_status(session):
    with pytest.raises(NotFoundError) as missing:
        session.cancel(MISSING)
    assert (missing.value.interaction_id, missing.value.http_status) == (MISSING, 404)


def test_a_job_that_cannot_be_followed_names_its_interaction(session):
    job = session.job(MISSING)
    with pytest.raises(NotFoundError) as missing:
        job.result(timeout=60)
    assert missing.value.interaction_id == MISSING


def test_every_error_class_is_exported_from_the_package():
    for name in errors.__all__:
        assert getattr(jupyter_interactions, name) is getattr(errors, name)
        assert name in jupyter_interactions.__all__
