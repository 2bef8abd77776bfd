"""Does a question need the whole document? The choice of ``answer_mode="auto"``.

Two signals, either one enough for the summary track:

* **The question, as the model reads it.** The model is asked whether the question needs the
  whole document or one passage; the signal is the log-odds of its "yes" against its "no"
  (:data:`SCOPE_PROMPT`). The threshold is calibrated once per engine, in code: the split that
  best separates made-up one-fact questions from made-up whole-document questions
  (:data:`ONE_FACT`, :data:`WHOLE_DOCUMENT`; no benchmark question is among them).
* **What the scan saw.** How many cached sentences compete for the top of the final ranking:
  more than :data:`COMPETING_SENTENCES` within :data:`COMPETING_MARGIN` of the best score means
  the answer is spread over many sentences (a needle stands out alone).

A needle question is answered from the cache and pays for neither notes nor note prompts; the
probe is one forward over a short prompt.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import torch

from .model_context import ModelContext
from .prompt import user_turn

SCOPE_PROMPT = (
    "Question: {question}\nTo answer it, must one read the whole document (yes), or does one "
    "passage hold the answer (no)? Reply yes or no."
)
"""The user turn of the question probe."""

COMPETING_MARGIN = 1.0
"""Scores within this of the best compete for the top (the scan's scores are z-like)."""

COMPETING_SENTENCES = 3
"""More competing cached sentences than this: the answer is spread over the document."""

ONE_FACT = (
    "Who founded the museum?",
    "What year did the bridge open?",
    "What colour was the car the witness saw?",
    "Where was the treaty signed?",
    "How tall is the lighthouse on the north cape?",
    "Which river flows past the old mill?",
    "What is the name of the captain's dog?",
    "When did the factory close?",
    "Who wrote the letter that was found in the attic?",
    "What does the acronym in the second clause stand for?",
    "How much did the company pay for the land?",
    "What is the access code of the server room?",
)
"""Made-up questions whose answer one passage holds (calibration only)."""

WHOLE_DOCUMENT = (
    "Name every painter whose work the museum bought.",
    "What problems come up again and again in the minutes?",
    "List all the towns the expedition passed through.",
    "Summarise the main arguments of the report.",
    "How many complaints did the council receive over the year?",
    "What are the recurring themes of these letters?",
    "Give an overview of the changes the new policy makes.",
    "Which companies does the filing mention anywhere?",
    "Enumerate the risks the authors discuss.",
    "What happened at each of the board meetings?",
    "List every dish on the menus described in the text.",
    "Outline the story from beginning to end.",
)
"""Made-up questions that need the whole document (calibration only)."""


class ScopeProbe:
    """The model's own judgement of a question's scope, with a threshold calibrated once."""

    def __init__(self, context: ModelContext) -> None:
        self.context = context
        tokenizer = context.tokenizer
        self._yes = _first_tokens(tokenizer, (" yes", "yes", "Yes", " Yes"))
        self._no = _first_tokens(tokenizer, (" no", "no", "No", " No"))
        self._threshold: float | None = None
        self._lock = threading.Lock()

    def margins(self, questions: Sequence[str]) -> list[float]:
        """Log-odds of "whole document" against "one passage", one per question."""
        return [self._margin(self._ids(q)) for q in questions]

    @property
    def threshold(self) -> float:
        """The calibrated split (computed on first use, once per probe)."""
        with self._lock:
            if self._threshold is None:
                self._threshold = best_split(self.margins(ONE_FACT), self.margins(WHOLE_DOCUMENT))
            return self._threshold

    def whole_document(self, question: str) -> bool:
        """Whether the model judges that ``question`` needs the whole document."""
        return self.judge(question)[0]

    def judge(self, question: str) -> tuple[bool, int]:
        """:meth:`whole_document`, and the tokens the probe read (what it costs in ``Usage``)."""
        ids = self._ids(question)
        return self._margin(ids) >= self.threshold, len(ids)

    def _ids(self, question: str) -> list[int]:
        return self.context.encode(
            user_turn(self.context.tokenizer, SCOPE_PROMPT.format(question=question))
        )

    @torch.inference_mode()
    def _margin(self, ids: list[int]) -> float:
        inputs = torch.tensor([ids], device=self.context.device)
        logits = self.context.model(input_ids=inputs, use_cache=False, logits_to_keep=1).logits
        logp = logits[0, -1].float().log_softmax(-1)
        yes = torch.logsumexp(logp[self._yes], 0)
        no = torch.logsumexp(logp[self._no], 0)
        return float(yes - no)


def best_split(low: Sequence[float], high: Sequence[float]) -> float:
    """The threshold that best separates ``low`` values from ``high`` ones (fewest errors;
    midway between neighbours, the middle of the best run on ties)."""
    values = sorted(set(low) | set(high))
    cuts = [-math.inf] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [math.inf]

    def errors(cut: float) -> int:
        return sum(v >= cut for v in low) + sum(v < cut for v in high)

    fewest = min(errors(c) for c in cuts)
    best = [c for c in cuts if errors(c) == fewest]
    finite = [c for c in best if math.isfinite(c)] or [0.0]
    return finite[len(finite) // 2]


def competing(scores: Sequence[float], margin: float = COMPETING_MARGIN) -> int:
    """How many ``scores`` are within ``margin`` of the best."""
    if not scores:
        return 0
    best = max(scores)
    return sum(s >= best - margin for s in scores)


def _first_tokens(tokenizer, words: Sequence[str]) -> list[int]:
    ids = {tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}
    return sorted(ids)
