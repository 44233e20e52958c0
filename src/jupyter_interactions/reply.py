"""Reply: the outcome of one turn (answer text, transcript, provenance), and how a failed
turn is told.

A Reply is made by `Session.ask` and by a finished `Job`; it knows the session only as a
`FileSource`, so this module imports neither.
"""

from __future__ import annotations

from typing import Any, Protocol

from .errors import RequestError
from .render.bundle import provenance, reply_bundle
from .render.live import publish
from .render.transcript import Transcript


class FileSource(Protocol):
    """What shows an agent environment's files (a Session implements it)."""

    def files(self, environment_id: str | None = None) -> Any:
        """A file browser in a widget front end, else a table, of the environment's files."""
        ...


class TurnView:
    """What a Reply and a Job read from their turn's transcript (a Job's grows as it runs)."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript

    @property
    def text(self) -> str:
        """The answer's text (so far, while a job runs)."""
        return self.transcript.text

    @property
    def status(self) -> str | None:
        """The interaction's status as last reported (`in_progress`, `completed`, ...)."""
        return self.transcript.status

    @property
    def model(self) -> str | None:
        """The model that answers, if a model does."""
        return self.transcript.model

    @property
    def agent(self) -> str | None:
        """The agent that answers, if an agent does."""
        return self.transcript.agent


class Reply(TurnView):
    """The outcome of one %%interaction: answer text, transcript and provenance."""

    def __init__(
        self,
        transcript: Transcript,
        *,
        thread: str | None,
        interaction_ids: list[str],
        session: FileSource | None = None,
    ) -> None:
        super().__init__(transcript)
        self.thread = thread
        self.interaction_ids = interaction_ids
        self.session = session  # the session that made it (for files())

    @property
    def id(self) -> str | None:
        """The last interaction of the turn (after any function-call rounds)."""
        return self.interaction_ids[-1] if self.interaction_ids else None

    @property
    def environment_id(self) -> str | None:
        """The agent's environment: its sandbox files are at client.environments.files."""
        return self.transcript.environment_id

    @property
    def usage(self) -> dict[str, Any]:
        """Token counts as the server reported them."""
        return dict(self.transcript.usage)

    @property
    def metadata(self) -> dict[str, Any]:
        """Provenance (interaction ids, model or agent, usage) as the cell output keeps it."""
        return provenance(self.transcript, thread=self.thread, interaction_ids=self.interaction_ids)

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return reply_bundle(
            self.transcript, thread=self.thread, interaction_ids=self.interaction_ids
        )

    def show(self) -> None:
        """Publish the final display (a fresh display_data)."""
        publish(*self._repr_mimebundle_())

    def files(self) -> Any:
        """The agent's environment files: a file browser in a widget front end, else a table."""
        if not self.environment_id or self.session is None:
            raise RequestError("this reply has no environment: only an agent's reply has files")
        return self.session.files(self.environment_id)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"Reply(thread={self.thread!r}, status={self.status!r}, text={text!r})"


def failure_message(transcript: Transcript) -> str:
    """What to tell the user of a turn that ended without an answer."""
    where = f" (interaction {transcript.interaction_id})" if transcript.interaction_id else ""
    if transcript.status == "cancelled":
        return f"cancelled{where}; the thread is unchanged"
    who = "agent" if transcript.agent else "model"
    detail = transcript.error or f"it ended {transcript.status or 'without a result'}"
    return f"the {who} failed: {detail}{where}; the thread is unchanged, re-run the cell to retry"
