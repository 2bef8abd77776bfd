"""Split a text prompt into the long context and the question, by a template."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_SPLIT_TEMPLATE = "{context}\n\nQuestion: {question}"
"""A prompt ending in ``Question: ...`` after a blank line: everything before is the context."""


@dataclass(frozen=True)
class PromptSplitter:
    """Matches prompts against a template holding ``{context}`` and ``{question}`` once each.

    The literal text around the two fields must appear in the prompt; the context is matched
    greedily, so a ``Question:`` inside the context does not end it early. A prompt that does not
    match is split at its last blank line (the last paragraph is the question); a prompt with no
    blank line is all question.
    """

    template: str = DEFAULT_SPLIT_TEMPLATE

    def __post_init__(self) -> None:
        template = self.template
        if not isinstance(template, str):
            raise ValueError("template must be a string")
        for field in ("{context}", "{question}"):
            if template.count(field) != 1:
                raise ValueError(f"template must contain {field} exactly once, got {template!r}")
        object.__setattr__(self, "_pattern", _compile(template))

    def split(self, prompt: str) -> tuple[str, str]:
        """Return ``(context, question)``; the context may be empty."""
        match = self._pattern.fullmatch(prompt)  # type: ignore[attr-defined]
        if match is not None and match["question"].strip():
            return match["context"], match["question"].strip()
        head, sep, tail = prompt.rstrip().rpartition("\n\n")
        if sep and tail.strip():
            return head, tail.strip()
        return "", prompt.strip()


def _compile(template: str) -> re.Pattern[str]:
    pieces = re.split(r"(\{context\}|\{question\})", template)
    parts = []
    for piece in pieces:
        if piece == "{context}":
            parts.append(r"(?P<context>.*)")
        elif piece == "{question}":
            parts.append(r"(?P<question>.*?)")
        else:
            parts.append(re.escape(piece))
    # Leading/trailing whitespace of the prompt is not significant.
    return re.compile(r"\s*" + "".join(parts) + r"\s*", re.DOTALL)
