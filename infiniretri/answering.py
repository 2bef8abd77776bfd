"""The answer step: the final cache and the question in, the model's answer out.

:class:`Answerer` builds the answer prompt (:class:`AnswerPrompt`) and generates from it, one
answer as a stream (:class:`AnswerStream`, which reports its :class:`~infiniretri.results.Usage`
when it ends) or many as a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .generation import GenerationCounter, greedy_batch, stream_greedy
from .model_context import ModelContext
from .prompt import PromptLayout
from .results import Answer, Retrieval, Usage


@dataclass(frozen=True)
class AnswerPrompt:
    """The token ids the answer is generated after, and how many tokens may follow them."""

    ids: list[int]
    max_new_tokens: int


class AnswerStream(Iterator[str]):
    """The answer's text pieces as the model writes them.

    ``retrieval`` is set once the scan has finished, ``usage`` once the stream has ended
    (exhausted, stopped by a stop string, or closed). :meth:`close` stops generation before the
    next token.
    """

    def __init__(self, produce: Callable[[AnswerStream], Iterator[str]]) -> None:
        self.retrieval: Retrieval | None = None
        self.usage: Usage | None = None
        self._pieces = produce(self)

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating; ``usage`` then counts the tokens written so far."""
        self._pieces.close()


class Answerer:
    """Answers questions from retrievals with one model and one prompt layout."""

    def __init__(
        self,
        context: ModelContext,
        layout: PromptLayout,
        question_ids: Callable[[str], list[int]],
        batch_size: int,
    ) -> None:
        self.context = context
        self.layout = layout
        self.question_ids = question_ids
        self.batch_size = batch_size

    def prompt(self, retrieval: Retrieval, max_new_tokens: int) -> AnswerPrompt:
        """The answer prompt of ``retrieval``: its cached sentences, then its question."""
        context = [i for ids in retrieval.token_ids for i in ids]
        ids = self.layout.build(context, self.question_ids(retrieval.question)).ids
        room = self.context.context_window - len(ids)
        if room < 1:
            raise ValueError("the cache and the question leave no room for an answer")
        return AnswerPrompt(ids, min(max_new_tokens, room))

    def stream(
        self, retrieval: Retrieval, max_new_tokens: int, stops: tuple[str, ...]
    ) -> AnswerStream:
        """The answer to ``retrieval``'s question, streamed."""
        prompt = self.prompt(retrieval, max_new_tokens)

        def produce(stream: AnswerStream) -> Iterator[str]:
            stream.retrieval = retrieval
            counter = GenerationCounter()
            try:
                yield from stream_greedy(
                    self.context.model,
                    self.context.tokenizer,
                    prompt.ids,
                    prompt.max_new_tokens,
                    self.context.end_ids,
                    stops,
                    counter,
                )
            finally:
                stream.usage = Usage(
                    retrieval.stats.tokens_processed, len(prompt.ids), counter.generated_tokens
                )

        return AnswerStream(produce)

    def answer(self, retrieval: Retrieval, max_new_tokens: int, stops: tuple[str, ...]) -> Answer:
        """The whole answer to ``retrieval``'s question."""
        stream = self.stream(retrieval, max_new_tokens, stops)
        text = "".join(stream)
        usage = stream.usage
        return Answer(text, retrieval, usage.answer_prompt_tokens, usage.completion_tokens)

    def batch(
        self, retrievals: Sequence[Retrieval], max_new_tokens: int, stops: tuple[str, ...]
    ) -> list[Answer]:
        """:meth:`answer` for many retrievals, generated ``batch_size`` at a time."""
        prompts = [self.prompt(r, max_new_tokens) for r in retrievals]
        answers: list[Answer] = []
        for start in range(0, len(prompts), self.batch_size):
            group = prompts[start : start + self.batch_size]
            done = greedy_batch(
                self.context.model,
                self.context.tokenizer,
                [p.ids for p in group],
                [p.max_new_tokens for p in group],
                self.context.end_ids,
                stops,
                self.context.pad_id,
            )
            for retrieval, prompt, (text, count) in zip(
                retrievals[start : start + self.batch_size], group, done
            ):
                answers.append(Answer(text, retrieval, len(prompt.ids), count))
        return answers
