"""Copy-friendly decoding: favour tokens that continue a span of the evidence.

A small reader re-types long values (UUIDs, codes) with errors. :class:`CopyBias` adds a bonus to
the logits of the tokens that would continue copying the evidence: while the answer so far ends
in a span of the evidence, the token that follows that span; otherwise any token of the
evidence (a new span may start anywhere). Tokens outside the evidence stay possible: a yes/no
answer, or a word the evidence lacks, still wins when the model is sure of it. The bonus
changes which token the answer copies, never whether it ends: where the model's own choice is
one of the ``answer_ends`` tokens (end of turn, a line break), no bonus is added; and a new span
starts with a word, never with a blank or a punctuation mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class WordTokens(NamedTuple):
    """A vocabulary's token ids by what they hold (:meth:`ModelContext.word_tokens
    <infiniretri.model_context.ModelContext.word_tokens>`)."""

    answer_ends: frozenset[int]
    """Tokens that end a one-line answer: end of turn, and every token holding a line break."""
    wordless: frozenset[int]
    """No letter or digit: blanks and punctuation."""
    initial: frozenset[int]
    """A space, then a letter or a digit: the start of a word."""
    spacing: frozenset[int]
    """Wordless tokens that hold a blank."""


class CopyBias:
    """Per-answer state of copy-friendly decoding over ``spans`` (token ids)."""

    def __init__(
        self, spans: Sequence[Sequence[int]], bonus: float, words: WordTokens | None = None
    ) -> None:
        self.tokens: list[int] = [t for span in spans for t in span]
        # A span boundary is not a continuation: each position knows where its span ends.
        self.ends: list[int] = []
        for span in spans:
            end = len(self.ends) + len(span)
            self.ends.extend([end] * len(span))
        self.bonus = float(bonus)
        self.ends_answer = words.answer_ends if words is not None else frozenset()
        if words is None:  # no word boundaries known: a span may start anywhere
            self.starts = sorted(set(self.tokens))
        else:
            blank, initial, space = words.wordless, words.initial, words.spacing

            def opens(span: Sequence[int], k: int) -> bool:
                # After a space, or after punctuation that follows a space ('"Lisp', "(42"):
                # not after the hyphen inside "4146a91a-1c30".
                if k == 0 or span[k - 1] in space:
                    return True
                return span[k - 1] in blank and (k == 1 or span[k - 2] in space)

            heads = set()
            for span in spans:
                for k, token in enumerate(span):
                    if token not in blank and (token in initial or opens(span, k)):
                        heads.add(token)
            self.starts = sorted(heads)
        """Tokens a new span may start with: the first token of a word (one that opens with a
        space, or follows a space or an opening mark after one), never a blank, a punctuation
        mark or a piece inside a word."""
        self.live: list[int] = []
        """Positions of the evidence that the answer's last token copied."""

    def candidates(self) -> list[int]:
        """Tokens that continue a live span, or start one."""
        following = {self.tokens[p + 1] for p in self.live if p + 1 < self.ends[p]}
        return sorted(following) if following else self.starts

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (vocabulary,) with the bonus added to :meth:`candidates` (in place)."""
        if not self.bonus or int(logits.argmax()) in self.ends_answer:
            return logits
        candidates = self.candidates()
        if candidates:  # none where the evidence holds no word (a row of dots)
            index = torch.tensor(candidates, dtype=torch.long, device=logits.device)
            logits.index_add_(0, index, torch.full_like(index, self.bonus, dtype=logits.dtype))
        return logits

    def advance(self, token: int) -> None:
        """Record the token the answer took."""
        following = [
            p + 1 for p in self.live if p + 1 < self.ends[p] and self.tokens[p + 1] == token
        ]
        self.live = following or [p for p, t in enumerate(self.tokens) if t == token]
