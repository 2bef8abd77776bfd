"""The prompt the model reads: ``template prefix + context + middle + question + suffix``.

The user turn of the model's chat template holds ``prompt_template`` with the context before the
question. A tokenizer without a chat template gets a documented plain-text layout instead:
``{bos}{instruction}\\n\\n{context}\\n\\nQuestion: {question}\\nAnswer:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PROMPT = (
    "Read the text and answer the question. Be concise.\n\n{context}\n\nQuestion: {question}"
)

QUOTE_LEAD = 'Quote: "'
QUOTE_END = '"\nAnswer:'
QUOTE_STOPS = ("\n", ". ")
"""Around the sentences the answer step quotes (``answer_quote``): the assistant's turn starts
with them, and the model writes its answer after ``QUOTE_END``: one sentence (it ends at a line
break or a full stop, ``QUOTE_STOPS``)."""

NOTES_LEAD = "Notes written while reading the whole document:\n"
NOTE_BULLET = "- "
SENTENCES_LEAD = "\n\nSentences kept from the document:\n"
"""Around the summary track's notes in the answer prompt (``answer_mode``): the notes first,
one per line, then the cached sentences."""

_CONTEXT_MARK = "\u2063CONTEXT\u2063"
_QUESTION_MARK = "\u2063QUESTION\u2063"


def check_template(prompt_template: object) -> None:
    """Raise ``ValueError`` unless ``prompt_template`` holds ``{context}`` before ``{question}``."""
    if not isinstance(prompt_template, str):
        raise ValueError("prompt_template must be a string")
    ci, qi = prompt_template.find("{context}"), prompt_template.find("{question}")
    if ci < 0 or qi < 0 or qi < ci:
        raise ValueError(
            f"prompt_template must contain {{context}} before {{question}}, got {prompt_template!r}"
        )


QUESTION_ROWS = ("question", "end", "all")
"""Which prompt rows query the context: the question's tokens; the template's end after the
question (where the model starts its answer); or both."""


@dataclass(frozen=True)
class BuiltPrompt:
    """Token ids of one prompt and where its context and question sit."""

    ids: list[int]
    context_start: int
    context_end: int
    question_start: int
    question_end: int

    def with_question(self, question_ids: Sequence[int]) -> BuiltPrompt:
        """The same prompt with another question (same template, same context positions)."""
        ids = [*self.ids[: self.question_start], *question_ids, *self.ids[self.question_end :]]
        end = self.question_start + len(question_ids)
        return BuiltPrompt(ids, self.context_start, self.context_end, self.question_start, end)

    def rows(self, question_rows: str = "question") -> range:
        """The query rows whose attention is read (see :data:`QUESTION_ROWS`)."""
        if question_rows == "question":
            return range(self.question_start, self.question_end)
        if question_rows == "end":
            return range(min(self.question_end, len(self.ids) - 1), len(self.ids))
        if question_rows == "all":
            return range(self.question_start, len(self.ids))
        raise ValueError(f"question_rows must be one of {QUESTION_ROWS}, got {question_rows!r}")


def user_turn(tokenizer, content: str) -> str:
    """``content`` as the user's turn, up to where the assistant's answer starts: through the
    tokenizer's chat template, or the plain-text layout without one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    return f"{tokenizer.bos_token or ''}{content}\nAnswer:"


@dataclass(frozen=True)
class PromptLayout:
    """Fixed token ids around the context and the question, computed once per engine."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    question_lead: str
    """Prepended to the question text before tokenizing (a space when the middle ended in one)."""

    @classmethod
    def from_tokenizer(cls, tokenizer, prompt_template: str = DEFAULT_PROMPT) -> PromptLayout:
        """Render ``prompt_template`` through the tokenizer's chat template (or plain text)."""
        check_template(prompt_template)
        content = prompt_template.replace("{context}", _CONTEXT_MARK).replace(
            "{question}", _QUESTION_MARK
        )
        rendered = user_turn(tokenizer, content)
        if _CONTEXT_MARK not in rendered or _QUESTION_MARK not in rendered:
            raise ValueError("the chat template dropped the context or the question")
        head, _, rest = rendered.partition(_CONTEXT_MARK)
        middle, _, tail = rest.partition(_QUESTION_MARK)
        lead = ""
        if middle.endswith(" "):
            middle, lead = middle.rstrip(" "), " "

        def enc(text: str) -> tuple[int, ...]:
            return tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()

        return cls(enc(head), enc(middle), enc(tail), lead)

    @property
    def overhead(self) -> int:
        """Template tokens around context and question."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def build(self, context_ids: list[int], question_ids: list[int]) -> BuiltPrompt:
        """Assemble the ids of one prompt."""
        ids = [*self.prefix, *context_ids, *self.middle, *question_ids, *self.suffix]
        c0 = len(self.prefix)
        c1 = c0 + len(context_ids)
        q0 = c1 + len(self.middle)
        return BuiltPrompt(ids, c0, c1, q0, q0 + len(question_ids))
