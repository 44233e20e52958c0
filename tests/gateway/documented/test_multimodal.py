"""Multimodal input and output, as documented (Google's Python samples, the Interactions
API's image/audio/document understanding and generation pages). The local models read and
write text: media they would not see is refused at once (never answered as if seen), text
documents are read as text, and other output modalities are refused. Only base_url and the
model name change (`gemini-3.6-flash` -> `local`, `echo`, and `transcript`, a test model
that answers with the messages it was given).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from jupyter_interactions._sdk import errors

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def test_image_input_is_refused_by_a_text_only_model(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local",
            input=[
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "data": PNG, "mime_type": "image/png"},
            ],
        )
    message = str(refused.value)
    assert "input image (image/png)" in message and "reads text only" in message


@pytest.mark.parametrize(
    "block",
    [
        {"type": "audio", "data": "UklGRg==", "mime_type": "audio/wav"},
        {"type": "video", "uri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"},
        {"type": "document", "data": "JVBERi0xLjQ=", "mime_type": "application/pdf"},
        {"type": "image", "uri": "https://example.com/cat.png", "mime_type": "image/png"},
    ],
    ids=["audio", "video", "pdf", "image-uri"],
)
def test_media_the_model_cannot_see_is_refused(client: Any, block: dict[str, Any]) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="echo", input=[{"type": "text", "text": "Describe"}, block]
        )
    assert f"input {block['type']}" in str(refused.value)


def test_the_local_agent_refuses_media_too(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent="local-agent",
            input=[{"type": "image", "data": PNG, "mime_type": "image/png"}],
            environment="remote",
        )
    assert "agent 'local-agent'" in str(refused.value)


def test_a_text_document_is_read_as_text(client: Any) -> None:
    csv = base64.b64encode(b"city,temp\nParis,21\n").decode()
    response = client.interactions.create(
        model="transcript",
        input=[
            {"type": "text", "text": "Summarize this table."},
            {"type": "document", "data": csv, "mime_type": "text/csv"},
        ],
    )
    assert response.status == "completed"
    assert "city,temp\nParis,21" in response.output_text


def test_image_output_is_refused_by_a_text_only_model(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local",
            input="Create a picture of a nano banana dish in a fancy restaurant",
            response_modalities=["IMAGE"],
        )
    assert "response_modalities IMAGE" in str(refused.value)
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local",
            input="Say cheerfully: Have a wonderful day!",
            response_modalities=["AUDIO"],
        )
    assert "response_modalities AUDIO" in str(refused.value)


def test_text_output_modality_is_honoured(client: Any) -> None:
    response = client.interactions.create(
        model="echo", input="Just text, please.", response_modalities=["TEXT"]
    )
    assert response.status == "completed" and response.output_text == "Just text, please."


def test_media_in_replayed_history_is_named_not_pretended(client: Any) -> None:
    """A stateless transcript whose earlier step holds a plot: the model is told plainly
    that it has not seen it."""
    response = client.interactions.create(
        model="transcript",
        input=[
            {"type": "user_input", "content": [{"type": "text", "text": "Plot it."}]},
            {
                "type": "code_execution_call",
                "id": "call_1",
                "arguments": {"code": "plot()", "language": "python"},
            },
            {
                "type": "code_execution_result",
                "call_id": "call_1",
                "result": [{"type": "image", "data": PNG, "mime_type": "image/png"}],
            },
            {"type": "user_input", "content": [{"type": "text", "text": "What does it show?"}]},
        ],
    )
    assert response.status == "completed"
    assert "[image image/png omitted: this model reads text only" in response.output_text
