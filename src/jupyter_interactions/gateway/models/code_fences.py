"""Fenced code blocks (```python ... ```): which fence tags are code to run, and finding the
blocks in a text. The local agent reads a model's answer with it (its code block protocol),
the scripted model a user's message; both then run each block as `run_code` would."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["python", "bash"]
# The tags (case-insensitive) that are code to run, and the language each runs as.
LANGUAGES: dict[str, Language] = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
}
# An opening fence with its tag and any info after it, the code, then the closing fence (or,
# for a block that never closes, the end of the text).
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(^[ \t]*```[ \t]*$|\Z)", re.S | re.M)


def fenced_code(
    text: str, *, bare: Language | None = None, unclosed: bool = False
) -> list[tuple[Language, str]]:
    """The runnable (language, code) blocks of `text`, in order; a fence tagged with another
    language (```json) is not code, nor is a block of only whitespace.

    `bare`: the language of an untagged ``` fence, or None where such a fence is not code (a
    model's answer quotes output in one). `unclosed`: whether a last block whose closing
    fence never came counts (a model's answer may stop in the middle of one)."""
    blocks: list[tuple[Language, str]] = []
    for match in _FENCE.finditer(text):
        tag = match[1].lower()
        language = LANGUAGES.get(tag) if tag else bare
        closed = bool(match[3])
        code = match[2].rstrip()
        if language is not None and code.strip() and (closed or unclosed):
            blocks.append((language, code))
    return blocks
