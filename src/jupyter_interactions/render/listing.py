"""Listing and Note: small results that display themselves (a table, a one-line outcome)."""

from __future__ import annotations

from typing import Any


class Listing:
    """A small table that displays itself (threads, jobs)."""

    def __init__(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.title, self.columns, self.rows = title, columns, rows

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if not self.rows:
            return {"text/plain": f"no {self.title}", "text/markdown": f"*no {self.title}*"}
        cells = [[("" if v is None else str(v)) for v in row] for row in self.rows]
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "---|" * len(self.columns)
        body = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
        plain = [
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in [self.columns, *cells]
        ]
        return {"text/markdown": "\n".join([head, rule, *body]), "text/plain": "\n".join(plain)}

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


class Note:
    """One line saying what an action did (e.g. a cancel), displayed as plain text;
    `status` is the interaction's status after it."""

    def __init__(self, text: str, status: str | None = None) -> None:
        self.text, self.status = text, status

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text}

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text
