"""The InfiniRetri engine: scan unbounded text chunk by chunk, keep what the question attends to.

:class:`InfiniRetri` is a thin facade over the parts: :class:`~infiniretri.model_context.
ModelContext` (model, tokenizer, the capture forward), :class:`~infiniretri.scan.Scanner` (the
sliding-window loop), a :class:`~infiniretri.scoring.Scorer` (attention to kept sentences) and
:class:`~infiniretri.answering.Answerer` (the answer step). Its options are one
:class:`~infiniretri.settings.EngineSettings`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .answering import Answerer, AnswerPrompt, AnswerStream
from .calibration import (
    NeedleTrial,
    best_heads,
    best_layer,
    model_key,
    rank_groups,
    rank_layers,
    store_heads,
    store_layer,
    stored_heads,
    stored_layer,
)
from .compiling import choose_compile
from .debias import CONTENT_FREE_QUESTION
from .errors import ScanCancelled
from .loading import load_model
from .model_context import ModelContext
from .prompt import PromptLayout
from .ranking import ranking_scorer
from .readout import Readout
from .results import Answer, Retrieval, Sentence
from .scan import MIN_CACHE_TOKENS, ScanItem, Scanner
from .scope import COMPETING_SENTENCES, ScopeProbe, competing
from .scoring import Scorer, TokenScores, WindowScorer
from .segments import Unit
from .sentences import BLOCK_CHARS
from .settings import EngineSettings, positive_int
from .sizing import (
    AUTO,
    WARMUP_QUESTION_TOKENS,
    choose_batch_size,
    choose_chunk_tokens,
    generation_batch_size,
    warm_shapes,
)
from .sources import Source, open_documents
from .summary import NoteWriter, WrittenNotes
from .topk import AUTO_BASE_TOP_K

ProgressCallback = Callable[[int], None]

DEFAULT_MAX_SENTENCE_TOKENS = 128
"""Sentence cap when ``max_sentence_tokens`` is ``None`` (never more than the chunk)."""

WARMUP_TEXT = " ".join(
    f"Warm-up sentence {i} says that shelf {i} holds {3 * i} jars of plum jam." for i in range(24)
)
WARMUP_QUESTION = "How many jars of plum jam does shelf 7 hold?"
WARMUP_NEW_TOKENS = 8
"""The short document, question and answer length that :meth:`InfiniRetri.warmup` runs."""


def _check_question(question: Any) -> str:
    if not isinstance(question, str):
        raise ValueError(f"question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise ValueError("question must be a non-empty string")
    return question.strip()


def _check_stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")


def _check_pairs(pairs: Any) -> list[tuple[Any, Any]]:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise ValueError(
            f"pairs must be a list of (source, question) pairs, got {type(pairs).__name__}"
        )
    if len(pairs) == 0:
        raise ValueError("pairs is empty; give at least one (source, question) pair")
    checked = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (source, question) pair, got {pair!r:.80}")
        checked.append((pair[0], pair[1]))
    return checked


class InfiniRetri:
    """Attention-based retrieval and question answering over text of any length.

    Args:
        model: a Hugging Face causal LM (any attention implementation).
        tokenizer: its tokenizer (a chat template is used when it has one).
        settings: an :class:`EngineSettings`; keyword ``options`` override its fields. Every
            option, its default and its doc: ``EngineSettings.docs()``.

    Each setting can also be read as an attribute (``engine.top_k_tokens``). Three give the
    value in use rather than the setting: ``max_sentence_tokens`` the cap
    (``settings.max_sentence_tokens`` may be ``None``, for the default), ``chunk_tokens`` and
    ``batch_size`` ints (``"auto"`` resolved from the device and the model, see
    :mod:`infiniretri.sizing`; ``engine.sizing`` says why).
    """

    def __init__(
        self, model, tokenizer, settings: EngineSettings | None = None, **options: Any
    ) -> None:
        if settings is not None and not isinstance(settings, EngineSettings):
            raise ValueError(f"settings must be an EngineSettings, got {type(settings).__name__}")
        base = settings or EngineSettings()
        self._setup(ModelContext(model, tokenizer), base.replace(**options))

    def _setup(self, context: ModelContext, settings: EngineSettings) -> None:
        """Derive everything from the model and the settings (nothing is copied between engines)."""
        self.context = context
        self.settings = settings
        self._layer = (
            None
            if settings.retrieval_layer == "auto"
            else context.check_layer(settings.retrieval_layer)
        )
        self._layer_lock = threading.Lock()
        self._heads: Readout | None = None
        if isinstance(settings.retrieval_heads, tuple):
            self._heads = Readout.heads(settings.retrieval_heads)
            self._heads.check(context.num_layers, context.heads)
        self.layout = PromptLayout.from_tokenizer(context.tokenizer, settings.prompt_template)
        device = context.device.type
        chunk = choose_chunk_tokens(
            settings.chunk_tokens, device, context.context_window, self.layout.overhead
        )
        batch = choose_batch_size(settings.batch_size, device)
        compiled = choose_compile(settings.compile_layers, context.model, settings.cuda_graphs)
        self.sizing = {"chunk_tokens": chunk, "batch_size": batch, "compile_layers": compiled}
        """``chunk_tokens``, ``batch_size`` and ``compile_layers`` in use, each with why
        (``"auto"`` resolved)."""
        self.compiled = bool(compiled.value)
        """Whether the scan's layers run compiled (``compile_layers``, resolved)."""
        self.chunk_tokens, self.batch_size = chunk.value, batch.value
        """Document tokens per step, and pairs per forward (ints, ``"auto"`` resolved)."""
        most = context.context_window - self.layout.overhead - MIN_CACHE_TOKENS - 16
        if self.chunk_tokens > most:
            raise ValueError(
                f"chunk_tokens={settings.chunk_tokens} is too large for the model's context window "
                f"of {context.context_window} tokens (at most {max(most, 0)} leaves room for the "
                "cache and the question)"
            )
        cap = settings.max_sentence_tokens or DEFAULT_MAX_SENTENCE_TOKENS
        self.max_sentence_tokens = min(cap, self.chunk_tokens)
        """Sentences longer than this many tokens are cut into pieces."""
        prep = context.prep_pool(self.max_sentence_tokens, settings.prep_workers)
        self.segmenter = prep.segmenter
        top_k = AUTO_BASE_TOP_K if settings.top_k_tokens == AUTO else settings.top_k_tokens
        self.attention_scorer = WindowScorer(settings.phrase_tokens, top_k)
        """The paper's scorer on attention alone (what calibrations rank layers and heads by)."""
        self.scorer: Scorer = ranking_scorer(settings, self.attention_scorer)
        """Turns captured attention (and the words in view) into kept sentences."""
        self.baseline_ids: list[int] | None = (
            self.question_ids(CONTENT_FREE_QUESTION) if settings.score_baseline else None
        )
        """The content-free question beside each prompt (``score_baseline``), else ``None``."""
        self.scanner = Scanner(
            context,
            self.layout,
            prep,
            self.scorer,
            chunk_tokens=self.chunk_tokens,
            max_cache_tokens=settings.max_cache_tokens,
            batch_size=self.batch_size,
            graphs=settings.cuda_graphs,
            compiled=self.compiled,
            rows=settings.question_rows,
            baseline_ids=self.baseline_ids,
            summary=(
                (settings.summary_notes, settings.summary_source_tokens)
                if settings.answer_mode != "retrieval"
                else None
            ),
        )
        self.note_writer = NoteWriter(
            context,
            settings.summary_note_tokens,
            settings.answer_copy,
            generation_batch_size(settings.batch_size),
        )
        """Writes the summary track's notes (``answer_mode``)."""
        self.scope = ScopeProbe(context)
        """Judges whether a question needs the whole document (``answer_mode="auto"``)."""
        answer_settings = settings.replace(
            chunk_tokens=self.chunk_tokens,
            batch_size=generation_batch_size(settings.batch_size),
        )
        self.answerer = Answerer(
            context, self.layout, self.question_ids, answer_settings, self.rescore
        )

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        trust_remote_code: bool = False,
        allow_download: bool = False,
        allow_pickle: bool = False,
        warmup: bool | None = None,
        settings: EngineSettings | None = None,
        **options: Any,
    ) -> InfiniRetri:
        """Load a model and build an engine; ``model=None`` is the embedded SmolLM2-135M.

        ``settings`` and ``options`` are checked before the model is loaded. ``warmup``: call
        :meth:`warmup` before returning (``None``: on CUDA only, where the first call would
        otherwise record its CUDA graphs and start the prep workers).
        """
        if warmup is not None and not isinstance(warmup, bool):
            raise ValueError(f"warmup must be True, False or None, got {warmup!r}")
        base = (settings or EngineSettings()).replace(**options)
        loaded, tokenizer = load_model(
            model,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            allow_download=allow_download,
            allow_pickle=allow_pickle,
        )
        engine = cls(loaded, tokenizer, base)
        if warmup or (warmup is None and engine.device.type == "cuda"):
            engine.warmup()
        return engine

    def with_options(self, **options: Any) -> InfiniRetri:
        """A new engine over the same model with some settings changed (no reload).

        The new settings are ``dataclasses.replace(engine.settings, **options)``; everything
        derived from them is derived again, so the result equals a fresh engine built with those
        settings. Recorded CUDA graphs, worker processes and a calibrated layer are shared.
        """
        engine = object.__new__(type(self))
        engine._setup(self.context, self.settings.replace(**options))
        return engine

    def warmup(self, question_tokens: Sequence[int] = WARMUP_QUESTION_TOKENS) -> float:
        """Pay a first call's one-time costs now; returns the seconds it took.

        Resolves ``"auto"`` retrieval heads and layer (a stored calibration, or one now),
        starts the prep workers (each splits a first block), and on CUDA with ``cuda_graphs``
        records the graphs of the window shapes that a long document's scan goes through at
        this engine's chunk (one pair per forward, questions of up to each of
        ``question_tokens`` tokens). Then one short retrieve and answer warm the eager paths
        (rescoring, generation). Results do not depend on it; on a CPU it costs about one short
        answer. Engines made with :meth:`with_options`
        share what it recorded; one with another chunk records its own shapes when warmed up.
        """
        if isinstance(question_tokens, (str, bytes)) or not isinstance(question_tokens, Sequence):
            raise ValueError(f"question_tokens must be a list of ints, got {question_tokens!r}")
        for n in question_tokens:
            positive_int("question_tokens", n)
        started = time.perf_counter()
        readout = self.readout
        prep = self.scanner.prep
        prep.start()
        if prep.workers > 0:  # each worker splits and tokenizes its first blocks now
            copies = -(-2 * prep.workers * BLOCK_CHARS // len(WARMUP_TEXT))
            for _ in prep.units(open_documents("\n\n".join([WARMUP_TEXT] * copies))):
                pass
        runner = self.context.runner(self.settings.cuda_graphs, self.compiled)
        if runner.graphs:
            for length, question in warm_shapes(
                self.layout.overhead,
                self.chunk_tokens,
                self.max_sentence_tokens,
                self.context_window,
                runner.length_bucket,
                question_tokens,
            ):
                self._warm_forward(length, question, readout)
        self.answer(WARMUP_TEXT, WARMUP_QUESTION, max_new_tokens=WARMUP_NEW_TOKENS)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started

    def _warm_forward(self, length: int, question_tokens: int, readout: Readout) -> None:
        """One capture forward of a prompt of ``length`` tokens, as a scan step runs it."""
        pad = self.context.pad_id
        question = [pad] * question_tokens
        context = [pad] * (length - self.layout.overhead - question_tokens)
        prompt = self.layout.build(context, question)
        capture = self.context.capture(
            [prompt],
            [[len(context)]],
            readout,
            graphs=self.settings.cuda_graphs,
            compiled=self.compiled,
            rows=self.settings.question_rows,
            baseline_ids=self.baseline_ids,
        )
        with capture:
            pass

    # ----------------------------------------------------------------- properties
    def __getattr__(self, name: str) -> Any:
        if name in EngineSettings.names() and "settings" in self.__dict__:
            return getattr(self.settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def model(self):
        """The Hugging Face model."""
        return self.context.model

    @property
    def tokenizer(self):
        """Its tokenizer."""
        return self.context.tokenizer

    @property
    def model_name(self) -> str:
        """The model's name or path."""
        return self.context.model_name

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.context.device

    @property
    def num_layers(self) -> int:
        """Decoder layers of the model."""
        return self.context.num_layers

    @property
    def context_window(self) -> int:
        """Tokens the model can read at once."""
        return self.context.context_window

    @property
    def retrieval_layer_index(self) -> int:
        """The decoder layer read by the scan (``"auto"`` is resolved on first use)."""
        if self._layer is None:
            with self._layer_lock:
                if self._layer is None:
                    self._layer = self._calibrated_layer()
        return self._layer

    @property
    def readout(self) -> Readout:
        """The attention heads the scan reads (``retrieval_heads``; ``"auto"`` is resolved on
        first use)."""
        heads = self.settings.retrieval_heads
        if heads == "all" or (heads == "auto" and self.settings.retrieval_layer != "auto"):
            return Readout.layer(self.retrieval_layer_index)
        if self._heads is None:
            with self._layer_lock:
                if self._heads is None:
                    self._heads = self._calibrated_heads()
        return self._heads

    @property
    def cuda_graph_error(self) -> str | None:
        """Why CUDA graphs were turned off (recording a forward failed), or ``None``."""
        return self.context.runner(self.settings.cuda_graphs, self.compiled).graph_error

    @property
    def compile_error(self) -> str | None:
        """Why compiled layers were given up (compiling failed; graphs record eagerly), or
        ``None``."""
        return self.context.runner(self.settings.cuda_graphs, self.compiled).compile_error

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (no special tokens)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        return len(self.segmenter.encode_text(text))

    def question_ids(self, question: str) -> list[int]:
        """The question's token ids as the scan and the answer prompt read them."""
        return self.segmenter.encode_text(self.layout.question_lead + _check_question(question))

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.changed().items())
        return f"InfiniRetri(model={self.model_name!r}{', ' if settings else ''}{settings})"

    # ----------------------------------------------------------------- retrieval
    def retrieve(
        self,
        source: Source,
        question: str,
        *,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> Retrieval:
        """Scan ``source`` and return the sentences the question's attention keeps."""
        item = self._scan_item(source, question, "source")
        return self._scan([item], progress, cancel)[0]

    def retrieve_batch(
        self,
        pairs: Sequence[tuple[Source, str]],
        *,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> list[Retrieval]:
        """:meth:`retrieve` for many ``(source, question)`` pairs, scanned together.

        Up to ``batch_size`` pairs share each forward pass (right-padded); a pair that is read to
        its end leaves the batch and the next one joins. Each result is what :meth:`retrieve`
        gives for that pair alone. ``progress`` gets the document tokens read over all pairs.
        """
        checked = _check_pairs(pairs)
        items = [
            self._scan_item(source, question, f"pairs[{i}]")
            for i, (source, question) in enumerate(checked)
        ]
        return self._scan(items, progress, cancel)

    def _scan_item(self, source: Source, question: Any, label: str) -> ScanItem:
        try:
            question = _check_question(question)
            ids = self.question_ids(question)
            item_label = "source" if label == "source" else f"{label}: source"
            return self.scanner.item(source, question, ids, item_label)
        except (ValueError, FileNotFoundError) as err:
            if label == "source":
                raise
            raise type(err)(f"{label}: {err}") from None

    def _scan(self, items: list[ScanItem], progress, cancel) -> list[Retrieval]:
        readout = self.readout
        self.scanner.run(items, readout, progress, cancel)
        retrievals = [_retrieval(item, readout.stop_layer) for item in items]
        choices = [self._summary_choice(item) for item in items]
        summarised = [i for i, (needed, _, _) in enumerate(choices) if needed]
        notes = {}
        if summarised:
            if cancel is not None and cancel.is_set():
                raise ScanCancelled("the scan was cancelled")
            jobs = [(items[i].drafts.with_sentences(), items[i].question) for i in summarised]
            notes = dict(zip(summarised, self.note_writer.write(jobs)))
        return [
            _with_summary(r, reason, probe, notes.get(i)) if reason else r
            for i, (r, (_, reason, probe)) in enumerate(zip(retrievals, choices))
        ]

    def _summary_choice(self, item: ScanItem) -> tuple[bool, str, int]:
        """Whether the answer step should read notes as well as the cache (``answer_mode``),
        why (see ``Retrieval.mode_reason``; ``""`` with the track off), and the tokens the
        choice read (auto's question probe)."""
        mode = self.settings.answer_mode
        if mode == "retrieval" or item.drafts is None:
            return False, "", 0
        if mode == "summary":
            return True, "setting", 0
        if competing(item.cache.scores) > COMPETING_SENTENCES:
            return True, "competing", 0
        whole, probe = self.scope.judge(item.question)
        return whole, "question" if whole else "needle", probe

    # ----------------------------------------------------------------- answers
    def answer(
        self,
        source: Source,
        question: str,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> Answer:
        """Scan ``source`` and answer ``question`` from the final cache alone."""
        stops = _check_generation(max_new_tokens, stop)
        retrieval = self.retrieve(source, question, progress=progress, cancel=cancel)
        return self.answerer.answer(retrieval, max_new_tokens, stops)

    def answer_batch(
        self,
        pairs: Sequence[tuple[Source, str]],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> list[Answer]:
        """:meth:`answer` for many ``(source, question)`` pairs: one batched scan, then batched
        greedy generation. Each answer is what :meth:`answer` gives for that pair alone."""
        _check_generation(max_new_tokens, stop)
        retrievals = self.retrieve_batch(pairs, progress=progress, cancel=cancel)
        return self.answer_from_batch(retrievals, max_new_tokens=max_new_tokens, stop=stop)

    def answer_from(
        self,
        retrieval: Retrieval,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
    ) -> Answer:
        """Answer the retrieval's question from its cached sentences."""
        _check_retrieval(retrieval, "retrieval")
        return self.answerer.answer(
            retrieval, max_new_tokens, _check_generation(max_new_tokens, stop)
        )

    def answer_from_batch(
        self,
        retrievals: Sequence[Retrieval],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
    ) -> list[Answer]:
        """:meth:`answer_from` for many retrievals, generated in batches of ``batch_size``."""
        stops = _check_generation(max_new_tokens, stop)
        if isinstance(retrievals, (str, bytes)) or not isinstance(retrievals, Sequence):
            raise ValueError("retrievals must be a list of Retrieval")
        for i, retrieval in enumerate(retrievals):
            _check_retrieval(retrieval, f"retrievals[{i}]")
        return self.answerer.batch(retrievals, max_new_tokens, stops)

    def stream_answer(
        self,
        source: Source,
        question: str,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> AnswerStream:
        """Like :meth:`answer`, streaming the answer's text pieces as the model writes them.

        The scan runs when the stream is first read; its ``usage`` is set when it ends.
        """
        stops = _check_generation(max_new_tokens, stop)
        _check_question(question)

        def produce(stream: AnswerStream) -> Iterator[str]:
            retrieval = self.retrieve(source, question, progress=progress, cancel=cancel)
            stream.retrieval = retrieval
            inner = self.answerer.stream(retrieval, max_new_tokens, stops)
            try:
                yield from inner
            finally:
                inner.close()
                stream.usage = inner.usage

        return AnswerStream(produce)

    def stream_answer_from(
        self,
        retrieval: Retrieval,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
    ) -> AnswerStream:
        """The answer to the retrieval's question, piece by piece; ``usage`` is set at its end."""
        _check_retrieval(retrieval, "retrieval")
        return self.answerer.stream(
            retrieval, max_new_tokens, _check_generation(max_new_tokens, stop)
        )

    def answer_prompt(self, retrieval: Retrieval, max_new_tokens: int = 128) -> AnswerPrompt:
        """The prompt the answer is generated after, and the tokens that may follow it."""
        _check_retrieval(retrieval, "retrieval")
        positive_int("max_new_tokens", max_new_tokens)
        return self.answerer.prompt(retrieval, max_new_tokens)

    # ----------------------------------------------------------------- attention of units
    @contextlib.contextmanager
    def unit_scores(
        self, units: Sequence[Unit], question: str, readout: Readout | None = None
    ) -> Iterator[TokenScores]:
        """Attention of ``question`` to ``units`` read as one context (``readout``: the
        engine's own by default).

        One capture forward, no scan: for calibration and benchmarks that score fixed sets of
        sentences with any :class:`~infiniretri.scoring.Scorer`. The tensors are valid inside
        the ``with`` block.
        """
        readout = readout or self.readout
        readout.check(self.num_layers, self.context.heads)
        if not units:
            raise ValueError("units is empty")
        ids = [i for u in units for i in u.ids]
        prompt = self.layout.build(ids, self.question_ids(question))
        if len(prompt.ids) > self.context_window:
            raise ValueError(
                f"units and question hold {len(prompt.ids)} tokens, more than the model's "
                f"{self.context_window}-token window"
            )
        lengths, texts = [[len(u.ids) for u in units]], [[u.text for u in units]]
        with self.context.capture(
            [prompt],
            lengths,
            readout,
            texts=texts,
            questions=[question],
            rows=self.settings.question_rows,
            baseline_ids=self.baseline_ids,
        ) as captured:
            yield captured

    @contextlib.contextmanager
    def unit_attention(
        self, units: Sequence[Unit], question: str, layers: Sequence[int]
    ) -> Iterator[dict[int, TokenScores]]:
        """:meth:`unit_scores` with every head of each of ``layers`` summed: ``{layer:
        TokenScores}`` from one forward."""
        layers = tuple(sorted({self.context.check_layer(layer) for layer in layers}))
        with self.unit_scores(units, question, Readout.layers(layers)) as captured:
            yield {layer: captured.group(g) for g, layer in enumerate(layers)}

    def rescore(self, retrieval: Retrieval) -> list[float]:
        """The retrieval's cached sentences scored again against its question, read together
        in one forward (the scan scored them in different steps, next to different chunks)."""
        _check_retrieval(retrieval, "retrieval")
        units = [
            Unit(s.doc_index, s.char_start, s.char_end, s.text, list(ids))
            for s, ids in zip(retrieval.sentences, retrieval.token_ids)
        ]
        with self.unit_scores(units, retrieval.question) as captured:
            return self.scorer.select(captured)[0].unit_scores

    def units(self, texts: Sequence[str]) -> list[Unit]:
        """Texts as retrieval units, each read as one sentence (no splitting)."""
        return [
            Unit(0, 0, len(text), text, ids)
            for text, ids in zip(texts, self.segmenter.encode(texts))
        ]

    # ----------------------------------------------------------------- calibration
    def calibrate_layers(self, trials: int = 12, seed: int = 0) -> dict[int, float]:
        """Mean reciprocal rank of a synthetic needle at every layer (see ``calibration``)."""

        def score(trial: NeedleTrial, layers: tuple[int, ...]) -> dict[int, list[float]]:
            units = self.units(trial.sentences)
            with self.unit_attention(units, trial.question, layers) as captured:
                return {
                    layer: self.attention_scorer.select(values)[0].unit_scores
                    for layer, values in captured.items()
                }

        return rank_layers(score, self.num_layers, trials=trials, seed=seed)

    def calibrate_heads(self, trials: int = 12, seed: int = 0) -> dict[tuple[int, int], float]:
        """Mean reciprocal rank of a synthetic needle for every ``(layer, head)``, each head
        scored alone by the attention scorer (see ``calibration``)."""
        pairs = [
            (layer, head) for layer in range(self.num_layers) for head in range(self.context.heads)
        ]
        readout = Readout.heads(pairs)

        def score(trial: NeedleTrial) -> list[list[float]]:
            units = self.units(trial.sentences)
            with self.unit_scores(units, trial.question, readout) as captured:
                return [
                    self.attention_scorer.select(captured.group(g))[0].unit_scores
                    for g in range(len(pairs))
                ]

        mrr = rank_groups(score, len(pairs), trials=trials, seed=seed)
        return dict(zip(pairs, mrr))

    def _calibrated_heads(self) -> Readout:
        if self.context.auto_heads is not None:
            return self.context.auto_heads
        key = model_key(self.model)
        heads = stored_heads(key)
        readout = None
        if heads is not None:
            readout = Readout.heads(heads)
            try:
                readout.check(self.num_layers, self.context.heads)
            except ValueError:  # stored for another shape of model: calibrate again
                readout = None
        if readout is None:
            heads = best_heads(self.calibrate_heads())
            store_heads(key, heads)
            readout = Readout.heads(heads)
        self.context.auto_heads = readout
        return readout

    def _calibrated_layer(self) -> int:
        if self.context.auto_layer is not None:
            return self.context.auto_layer
        key = model_key(self.model)
        layer = stored_layer(key)
        if layer is None or not 0 <= layer < self.num_layers:
            layer = best_layer(self.calibrate_layers())
            store_layer(key, layer)
        self.context.auto_layer = layer
        return layer


def _check_generation(max_new_tokens: Any, stop: Any) -> tuple[str, ...]:
    positive_int("max_new_tokens", max_new_tokens)
    return _check_stop(stop)


def _check_retrieval(retrieval: Any, name: str) -> None:
    if not isinstance(retrieval, Retrieval):
        raise ValueError(f"{name} must be a Retrieval, got {type(retrieval).__name__}")


def _with_summary(
    retrieval: Retrieval, reason: str, probe: int, written: WrittenNotes | None
) -> Retrieval:
    """``retrieval`` with the summary track's choice, its cost and any notes written."""
    tokens = probe + (written.tokens if written else 0)
    seconds = written.seconds if written else 0.0
    stats = dataclasses.replace(retrieval.stats, summary_tokens=tokens, summary_seconds=seconds)
    if written is None:
        return dataclasses.replace(retrieval, mode_reason=reason, stats=stats)
    return dataclasses.replace(
        retrieval, notes=written.notes, mode="summary", mode_reason=reason, stats=stats
    )


def _retrieval(item: ScanItem, layer: int) -> Retrieval:
    cache = item.cache
    sentences = [
        Sentence(u.text, score, u.doc_index, u.char_start, u.char_end)
        for u, score in zip(cache.units, cache.scores)
    ]
    return Retrieval(
        item.question, sentences, item.stats(layer), [list(u.ids) for u in cache.units]
    )
