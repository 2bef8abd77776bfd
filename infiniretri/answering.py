"""The answer step: the final cache and the question in, the model's answer out.

:class:`Answerer` builds the answer prompt (:class:`AnswerPrompt`) and generates from it, one
answer as a stream (:class:`AnswerStream`, which reports its :class:`~infiniretri.results.Usage`
when it ends) or many as a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .copying import CopyBias
from .debias import CONTENT_FREE_QUESTION
from .evidence import QuoteCheck, choose_evidence, unsupported
from .gathering import GATHER_END, GATHER_LEAD, gather_values
from .generation import GenerationCounter, greedy_batch, stream_greedy
from .itemizing import ITEM_NEW_TOKENS, ITEM_STOPS, item_sentences, list_items
from .lexical import key_terms
from .model_context import ModelContext
from .prompt import (
    NOTE_BULLET,
    NOTES_LEAD,
    QUOTE_END,
    QUOTE_LEAD,
    QUOTE_STOPS,
    SENTENCES_LEAD,
    PromptLayout,
)
from .results import Answer, Retrieval, Usage
from .settings import EngineSettings

Rescorer = Callable[[Retrieval], list[float]]
"""Scores of a retrieval's cached sentences, read again against its question in one forward."""


@dataclass(frozen=True)
class AnswerPrompt:
    """The token ids the answer is generated after, and how many tokens may follow them."""

    ids: list[int]
    max_new_tokens: int
    copy_spans: tuple[tuple[int, ...], ...] = ()
    """Token ids the answer is encouraged to copy from (``answer_copy``; empty: off)."""
    quoted: tuple[int, ...] = ()
    """Indices of the retrieval's sentences quoted at the start of the answer."""
    shown: tuple[int, ...] = ()
    """Indices of the retrieval's sentences the prompt holds."""
    rescore_tokens: int = 0
    """Tokens of the forward that re-scored the cache (``answer_rescore``), else 0."""
    summary: bool = False
    """The summary track's prompt: notes and the whole cache, no quote."""


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
        settings: EngineSettings,
        rescore: Rescorer,
    ) -> None:
        self.context = context
        self.layout = layout
        self.question_ids = question_ids
        self.settings = settings
        self.batch_size = settings.batch_size
        self.rescore = rescore

    def prompt(self, retrieval: Retrieval, max_new_tokens: int) -> AnswerPrompt:
        """The answer prompt of ``retrieval``: its evidence, its question, then any quote.

        The evidence is the whole cache, or its best ``answer_sentences`` (by the scan's
        scores, or by fresh ones with ``answer_rescore``) in document order; with
        ``answer_quote`` the best of them are quoted at the start of the assistant's turn.
        """
        settings = self.settings
        if retrieval.mode == "summary":
            return self._summary_prompt(retrieval, max_new_tokens)
        scores = [s.score for s in retrieval.sentences]
        rescore_tokens = 0
        if settings.answer_rescore and retrieval.sentences:
            scores = self.rescore(retrieval)
            rescore_tokens = self._rescore_tokens(retrieval)
        coverage = None
        if settings.answer_quote_coverage:
            asked = key_terms(retrieval.question)
            coverage = [len(asked & key_terms(s.text)) for s in retrieval.sentences]
        evidence = choose_evidence(
            scores,
            settings.answer_sentences,
            settings.answer_quote,
            settings.answer_quote_margin,
            coverage,
        )
        context = [i for k in evidence.shown for i in retrieval.token_ids[k]]
        ids = self.layout.build(context, self.question_ids(retrieval.question)).ids
        if evidence.quoted:
            quote = " ".join(retrieval.sentences[k].text for k in evidence.quoted)
            ids = ids + self.context.encode(f"{QUOTE_LEAD}{quote}{QUOTE_END}")
        room = self.context.context_window - len(ids)
        if room < 1:
            raise ValueError("the cache and the question leave no room for an answer")
        spans: tuple[tuple[int, ...], ...] = ()
        if settings.answer_copy:
            source = evidence.quoted or evidence.shown
            spans = tuple(tuple(retrieval.token_ids[k]) for k in source)
        return AnswerPrompt(
            ids,
            min(max_new_tokens, room),
            copy_spans=spans,
            quoted=tuple(evidence.quoted),
            shown=tuple(evidence.shown),
            rescore_tokens=rescore_tokens,
        )

    def _summary_prompt(self, retrieval: Retrieval, max_new_tokens: int) -> AnswerPrompt:
        """Notes, then the whole cache, then the question; copying from both, no quote (the
        answer gathers from everywhere, not from the best sentence)."""
        lines = "".join(f"{NOTE_BULLET}{note.text}\n" for note in retrieval.notes)
        notes = self.context.encode(f"{NOTES_LEAD}{lines}".rstrip("\n")) if lines else []
        lead = self.context.encode(SENTENCES_LEAD) if notes and retrieval.sentences else []
        context = [*notes, *lead, *(i for ids in retrieval.token_ids for i in ids)]
        ids = self.layout.build(context, self.question_ids(retrieval.question)).ids
        room = self.context.context_window - len(ids)
        if room < 1:
            raise ValueError("the notes, the cache and the question leave no room for an answer")
        spans: tuple[tuple[int, ...], ...] = ()
        if self.settings.answer_copy:
            written = [tuple(self.context.encode(" " + note.text)) for note in retrieval.notes]
            spans = (*written, *(tuple(ids) for ids in retrieval.token_ids))
        shown = tuple(range(len(retrieval.sentences)))
        return AnswerPrompt(
            ids, min(max_new_tokens, room), copy_spans=spans, shown=shown, summary=True
        )

    def _gathered(self, retrieval: Retrieval, prompt: AnswerPrompt, text: str) -> str:
        """The values of parallel shown sentences, to follow the answer (``answer_gather``)."""
        if not self.settings.answer_gather or not prompt.quoted or len(prompt.shown) < 2:
            return ""
        shown = [retrieval.sentences[k].text for k in prompt.shown]
        values = gather_values(text, shown, retrieval.question)
        return f"{GATHER_LEAD}{', '.join(values)}{GATHER_END}" if values else ""

    def _quote(self, retrieval: Retrieval, prompt: AnswerPrompt) -> str:
        return " ".join(retrieval.sentences[k].text for k in prompt.quoted)

    def _finished(self, retrieval: Retrieval, prompt: AnswerPrompt, text: str) -> str:
        """The answer's text from what the reader wrote, then any gathered values.

        A quoted answer that is empty (the reader judged its quote the answer) or unsupported
        (:func:`~infiniretri.evidence.unsupported`: nothing in it is backed by its quote, as
        when a look-alike's sentence follows the asked one's quote) is the quote itself.
        """
        if prompt.quoted:
            quote = self._quote(retrieval, prompt)
            if not text.strip() or unsupported(text, retrieval.question, quote):
                text = quote
        return text + self._gathered(retrieval, prompt, text)

    def _stops(self, stops: tuple[str, ...], prompt: AnswerPrompt) -> tuple[str, ...]:
        """A quoted answer is the first sentence after the quote (a summary's is not)."""
        quoting = self.settings.answer_quote and not prompt.summary
        return (*stops, *QUOTE_STOPS) if quoting else stops

    def _rescore_tokens(self, retrieval: Retrieval) -> int:
        prompt = sum(len(ids) for ids in retrieval.token_ids) + self.layout.overhead
        tokens = prompt + len(self.question_ids(retrieval.question))
        if self.settings.score_baseline:  # the content-free question's prompt beside it
            tokens += prompt + len(self.question_ids(CONTENT_FREE_QUESTION))
        return tokens

    def _copy(self, prompt: AnswerPrompt) -> CopyBias | None:
        if not prompt.copy_spans:
            return None
        return CopyBias(prompt.copy_spans, self.settings.answer_copy, self.context.word_tokens)

    def _answer(
        self, retrieval: Retrieval, prompt: AnswerPrompt, text: str, generated: int
    ) -> Answer:
        quoted = [retrieval.sentences[k] for k in prompt.quoted]
        shown = [retrieval.sentences[k] for k in prompt.shown]
        return Answer(
            text, retrieval, len(prompt.ids), generated, prompt.rescore_tokens, quoted, shown
        )

    def stream(
        self, retrieval: Retrieval, max_new_tokens: int, stops: tuple[str, ...]
    ) -> AnswerStream:
        """The answer to ``retrieval``'s question, streamed."""
        items = self.item_prompts(retrieval, max_new_tokens)
        if items:
            return self._stream_items(retrieval, items, stops)
        return self._stream(retrieval, self.prompt(retrieval, max_new_tokens), stops)

    def _stream(
        self, retrieval: Retrieval, prompt: AnswerPrompt, stops: tuple[str, ...]
    ) -> AnswerStream:
        stops = self._stops(stops, prompt)

        def produce(stream: AnswerStream) -> Iterator[str]:
            stream.retrieval = retrieval
            counter = GenerationCounter()
            written: list[str] = []
            decoding = self.context.decode_graphs(self.settings.cuda_graphs)
            quote = self._quote(retrieval, prompt) if prompt.quoted else ""
            check = QuoteCheck(retrieval.question, quote) if quote else None
            sent = 0  # pieces passed on
            try:
                with decoding.decoder(len(prompt.ids) + prompt.max_new_tokens) as decoder:
                    for piece in stream_greedy(
                        self.context.model,
                        self.context.tokenizer,
                        prompt.ids,
                        prompt.max_new_tokens,
                        self.context.end_ids,
                        stops,
                        counter,
                        self._copy(prompt),
                        decoder,
                    ):
                        written.append(piece)
                        if check is not None:  # held back until its quote backs it
                            if not check.backs("".join(written), finished=False):
                                continue
                            check = None
                        yield "".join(written[sent:])
                        sent = len(written)
                text = "".join(written)
                final = self._finished(retrieval, prompt, text)
                rest = final[len("".join(written[:sent])) :]
                if rest:
                    yield rest
            finally:
                stream.usage = Usage.of(
                    retrieval, len(prompt.ids), counter.generated_tokens, prompt.rescore_tokens
                )

        return AnswerStream(produce)

    def answer(self, retrieval: Retrieval, max_new_tokens: int, stops: tuple[str, ...]) -> Answer:
        """The whole answer to ``retrieval``'s question."""
        items = self.item_prompts(retrieval, max_new_tokens)
        if items:
            return self._item_answer(retrieval, items, stops)
        prompt = self.prompt(retrieval, max_new_tokens)
        stream = self._stream(retrieval, prompt, stops)
        text = "".join(stream)
        return self._answer(retrieval, prompt, text, stream.usage.completion_tokens)

    def batch(
        self, retrievals: Sequence[Retrieval], max_new_tokens: int, stops: tuple[str, ...]
    ) -> list[Answer]:
        """:meth:`answer` for many retrievals, generated ``batch_size`` at a time."""
        answers: dict[int, Answer] = {}
        read: list[int] = []
        for i, retrieval in enumerate(retrievals):
            items = self.item_prompts(retrieval, max_new_tokens)
            if items:
                answers[i] = self._item_answer(retrieval, items, stops)
            else:
                read.append(i)
        prompts = [self.prompt(retrievals[i], max_new_tokens) for i in read]
        for i, prompt, (text, count) in zip(read, prompts, self._generate(prompts, stops)):
            text = self._finished(retrievals[i], prompt, text)
            answers[i] = self._answer(retrievals[i], prompt, text, count)
        return [answers[i] for i in range(len(retrievals))]

    def _generate(
        self, prompts: Sequence[AnswerPrompt], stops: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        """``(text, generated tokens)`` of each prompt, ``batch_size`` at a time."""
        done: list[tuple[str, int]] = []
        for start in range(0, len(prompts), self.batch_size):
            group = prompts[start : start + self.batch_size]
            done += greedy_batch(
                self.context.model,
                self.context.tokenizer,
                [p.ids for p in group],
                [p.max_new_tokens for p in group],
                self.context.end_ids,
                [self._stops(stops, p) for p in group],
                self.context.pad_id,
                [self._copy(p) for p in group],
            )
        return done

    # ----------------------------------------------------------- the itemised answer
    def item_prompts(self, retrieval: Retrieval, max_new_tokens: int) -> list[AnswerPrompt]:
        """The one-unit prompts of the summary track's itemised answer (:mod:`itemizing`):
        empty unless ``retrieval`` is in summary mode with ``summary_answer="map"``."""
        if retrieval.mode != "summary" or self.settings.summary_answer != "map":
            return []
        question = self.question_ids(retrieval.question)
        chosen = item_sentences([s.score for s in retrieval.sentences])
        units = [(tuple(retrieval.token_ids[k]), (k,)) for k in chosen]
        units += [(tuple(self.context.encode(" " + n.text)), ()) for n in retrieval.notes]
        prompts = []
        for unit, shown in units:
            ids = self.layout.build(list(unit), question).ids
            room = self.context.context_window - len(ids)
            if room < 1:
                continue
            spans = (unit,) if self.settings.answer_copy else ()
            new = min(ITEM_NEW_TOKENS, max_new_tokens, room)
            prompts.append(AnswerPrompt(ids, new, copy_spans=spans, shown=shown, summary=True))
        return prompts

    def _stream_items(
        self, retrieval: Retrieval, prompts: list[AnswerPrompt], stops: tuple[str, ...]
    ) -> AnswerStream:
        stops = (*stops, *ITEM_STOPS)

        def produce(stream: AnswerStream) -> Iterator[str]:
            stream.retrieval = retrieval
            written: list[str] = []
            generated = read = 0
            sent = ""
            try:
                for start in range(0, len(prompts), self.batch_size):
                    group = prompts[start : start + self.batch_size]
                    done = self._generate(group, stops)
                    read += sum(len(p.ids) for p in group)
                    generated += sum(count for _, count in done)
                    written += [text for text, _ in done]
                    listed = list_items(written)
                    if len(listed) > len(sent):
                        piece = listed[len(sent) :]
                        sent = listed
                        yield piece
            finally:
                stream.usage = Usage.of(retrieval, read, generated)

        return AnswerStream(produce)

    def _item_answer(
        self, retrieval: Retrieval, prompts: list[AnswerPrompt], stops: tuple[str, ...]
    ) -> Answer:
        """The whole itemised answer: its stream, joined (one path for single and batch)."""
        stream = self._stream_items(retrieval, prompts, stops)
        text = "".join(stream)
        shown = [retrieval.sentences[k] for p in prompts for k in p.shown]
        usage = stream.usage
        return Answer(
            text, retrieval, usage.answer_prompt_tokens, usage.completion_tokens, 0, [], shown
        )
