"""Split a text prompt into the long context and the question, by a template."""

from __future__ import annotations

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
        object.__setattr__(self, "_parts", _parts(template))

    def split(self, prompt: str) -> tuple[str, str]:
        """Return ``(context, question)``; the context may be empty."""
        match = _match(self._parts, prompt)  # type: ignore[attr-defined]
        if match is not None and match[1].strip():
            return match[0], match[1].strip()
        head, sep, tail = prompt.rstrip().rpartition("\n\n")
        if sep and tail.strip():
            return head, tail.strip()
        return "", prompt.strip()


def _parts(template: str) -> tuple[str, str, str, bool]:
    """``(before, between, after, context_first)``: the literal text around the two fields."""
    context_first = template.index("{context}") < template.index("{question}")
    first, second = ("{context}", "{question}") if context_first else ("{question}", "{context}")
    before, rest = template.split(first, 1)
    between, after = rest.split(second, 1)
    # Leading/trailing whitespace of the prompt is not significant.
    return before.lstrip(), between, after.rstrip(), context_first


def _match(parts: tuple[str, str, str, bool], prompt: str) -> tuple[str, str] | None:
    r"""``(context, question)`` when ``prompt`` has the template's shape, else None.

    What the regex ``\s* before (.*) between (.*?) after \s*`` (context greedy, question lazy)
    matches, found with ``str.find``/``rfind`` in linear time: the regex backtracked
    quadratically over long runs of whitespace.
    """
    before, between, after, context_first = parts
    start = 0
    if before:
        start = len(prompt) - len(prompt.lstrip())
        if not prompt.startswith(before, start):
            return None
        start += len(before)
    end = len(prompt)
    if after:
        end = len(prompt.rstrip()) - len(after)
        if end < start or not prompt.startswith(after, end):
            return None
    find = prompt.rfind if context_first else prompt.find
    at = find(between, start, end)
    if at < 0:
        return None
    first, second = prompt[start:at], prompt[at + len(between) : end]
    if not before:
        first = first.lstrip()  # the regex's leading whitespace
    return (first, second) if context_first else (second, first)
