"""The InfiniRetri engine: scan unbounded text chunk by chunk, keep what the question attends to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .attention import capture, decoder_layers, install_capture, text_config
from .cache import SentenceCache
from .calibration import NeedleTrial, best_layer, model_key, rank_layers, store_layer, stored_layer
from .forward import ForwardRunner
from .generation import GenerationCounter, end_token_ids, greedy_batch, stream_greedy
from .loading import MODEL_ID_ATTR, load_model
from .prep import PrepPool, default_workers
from .prompt import DEFAULT_PROMPT, PromptLayout
from .results import Answer, Retrieval, Sentence, Stats
from .scan import ScanItem, StepSettings, run_scan
from .scoring import phrase_scores
from .segments import Segmenter, Unit
from .sources import Source, open_documents

ProgressCallback = Callable[[int], None]

MIN_CACHE_TOKENS = 64
"""The least room the cache must have next to a chunk and the question."""

DEFAULT_MAX_SENTENCE_TOKENS = 128

DEFAULT_BATCH_SIZE = 16
"""Pairs scanned together by ``retrieve_batch`` and ``answer_batch``."""


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


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


def context_window(model, tokenizer) -> int:
    """Tokens the model can read at once."""
    config = text_config(model)
    limits = [getattr(config, "max_position_embeddings", None)]
    limits.append(getattr(tokenizer, "model_max_length", None))
    limits = [n for n in limits if isinstance(n, int) and 0 < n < 10_000_000]
    return min(limits) if limits else 2048


class InfiniRetri:
    """Attention-based retrieval and question answering over text of any length.

    Args:
        model: a Hugging Face causal LM (any attention implementation).
        tokenizer: its tokenizer (a chat template is used when it has one).
        chunk_tokens: document tokens read per step.
        phrase_tokens: width of the window that sums token scores into phrase scores.
        top_k_tokens: phrase positions kept per step; the sentences holding them form the cache.
        retrieval_layer: decoder layer whose attention is read (negative counts from the top),
            or ``"auto"`` to calibrate it once per model on synthetic needles.
        max_cache_tokens: upper bound of the cache; by default whatever fits the context window
            next to a chunk and the question.
        prompt_template: the user turn, with ``{context}`` before ``{question}``.
        max_sentence_tokens: longer sentences are cut into pieces of at most this many tokens.
        prep_workers: processes that split and tokenize long documents ahead of the scan;
            ``None`` picks 0 on a CPU and up to 8 on a GPU. Results do not depend on it.
        cuda_graphs: on CUDA, replay the scan's forward passes as CUDA graphs (recorded once per
            padded shape). Results do not depend on it.
        batch_size: pairs that ``retrieve_batch`` and ``answer_batch`` run together.
    """

    def __init__(
        self,
        model,
        tokenizer,
        chunk_tokens: int = 1024,
        phrase_tokens: int = 8,
        top_k_tokens: int = 300,
        retrieval_layer: int | str = "auto",
        max_cache_tokens: int | None = None,
        *,
        prompt_template: str = DEFAULT_PROMPT,
        max_sentence_tokens: int | None = None,
        prep_workers: int | None = None,
        cuda_graphs: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if model is None or not hasattr(model, "config"):
            raise ValueError("model must be a Hugging Face causal language model")
        if tokenizer is None or not callable(tokenizer):
            raise ValueError("tokenizer must be the model's Hugging Face tokenizer")
        self.model = model
        self.tokenizer = tokenizer
        self.chunk_tokens = _positive_int("chunk_tokens", chunk_tokens)
        self.phrase_tokens = _positive_int("phrase_tokens", phrase_tokens)
        self.top_k_tokens = _positive_int("top_k_tokens", top_k_tokens)
        if max_cache_tokens is not None:
            _positive_int("max_cache_tokens", max_cache_tokens)
        self.max_cache_tokens = max_cache_tokens
        self.num_layers = decoder_layers(model)
        self._layer = self._check_layer(retrieval_layer)
        self.retrieval_layer = retrieval_layer
        self._layer_lock = threading.Lock()
        self.layout = PromptLayout.from_tokenizer(tokenizer, prompt_template)
        self.prompt_template = prompt_template
        self.context_window = context_window(model, tokenizer)
        most = self.context_window - self.layout.overhead - MIN_CACHE_TOKENS - 16
        if self.chunk_tokens > most:
            raise ValueError(
                f"chunk_tokens={self.chunk_tokens} is too large for the model's context window of "
                f"{self.context_window} tokens (at most {max(most, 0)} leaves room for the cache "
                "and the question)"
            )
        sentence_cap = (
            min(DEFAULT_MAX_SENTENCE_TOKENS, self.chunk_tokens)
            if max_sentence_tokens is None
            else max_sentence_tokens
        )
        _positive_int("max_sentence_tokens", sentence_cap)
        self.max_sentence_tokens = min(sentence_cap, self.chunk_tokens)
        self.segmenter = Segmenter(tokenizer, self.max_sentence_tokens)
        self.batch_size = _positive_int("batch_size", batch_size)
        if prep_workers is not None and (
            isinstance(prep_workers, bool) or not isinstance(prep_workers, int) or prep_workers < 0
        ):
            raise ValueError(f"prep_workers must be a non-negative integer, got {prep_workers!r}")
        self.prep_workers = prep_workers
        self.cuda_graphs = bool(cuda_graphs)
        install_capture(model)
        self._end_ids = end_token_ids(model, tokenizer)
        config = text_config(model)
        self._heads = int(config.num_attention_heads)
        self._pad_id = next(
            (int(i) for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0
        )
        workers = default_workers(self.device.type) if prep_workers is None else prep_workers
        self._prep = PrepPool(self.segmenter, workers)
        self._runner = ForwardRunner(model, self._pad_id, graphs=self.cuda_graphs)

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
        **engine_kwargs: Any,
    ) -> InfiniRetri:
        """Load a model and build an engine; ``model=None`` is the embedded SmolLM2-135M."""
        loaded, tokenizer = load_model(
            model,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            allow_download=allow_download,
            allow_pickle=allow_pickle,
        )
        return cls(loaded, tokenizer, **engine_kwargs)

    def with_options(self, **engine_kwargs: Any) -> InfiniRetri:
        """A new engine over the same model and tokenizer with other settings (no reload)."""
        options = {
            "chunk_tokens": self.chunk_tokens,
            "phrase_tokens": self.phrase_tokens,
            "top_k_tokens": self.top_k_tokens,
            "retrieval_layer": self.retrieval_layer,
            "max_cache_tokens": self.max_cache_tokens,
            "prompt_template": self.prompt_template,
            "max_sentence_tokens": self.max_sentence_tokens,
            "prep_workers": self.prep_workers,
            "cuda_graphs": self.cuda_graphs,
            "batch_size": self.batch_size,
        }
        unknown = set(engine_kwargs) - set(options)
        if unknown:
            raise ValueError(f"unknown engine options: {sorted(unknown)}")
        layer = engine_kwargs.get("retrieval_layer", self.retrieval_layer)
        same_layer = layer == self.retrieval_layer
        options.update(engine_kwargs)
        engine = type(self)(self.model, self.tokenizer, **options)
        if same_layer and engine._layer is None:
            engine._layer = self._layer
        if engine.cuda_graphs == self.cuda_graphs:
            engine._runner = self._runner  # share recorded graphs and their memory
        if (
            engine.max_sentence_tokens == self.max_sentence_tokens
            and engine._prep.workers == self._prep.workers
        ):
            engine._prep = self._prep  # share the worker processes
        return engine

    # ----------------------------------------------------------------- properties
    @property
    def model_name(self) -> str:
        config = self.model.config
        return str(
            getattr(config, MODEL_ID_ATTR, None)
            or getattr(self.model, "name_or_path", "")
            or type(self.model).__name__
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def retrieval_layer_index(self) -> int:
        """The decoder layer read by the scan (``"auto"`` is resolved on first use)."""
        if self._layer is None:
            with self._layer_lock:
                if self._layer is None:
                    self._layer = self._calibrated_layer()
        return self._layer

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (no special tokens)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        return len(self.segmenter.encode_text(text))

    def __repr__(self) -> str:
        return (
            f"InfiniRetri(model={self.model_name!r}, chunk_tokens={self.chunk_tokens}, "
            f"phrase_tokens={self.phrase_tokens}, top_k_tokens={self.top_k_tokens}, "
            f"retrieval_layer={self.retrieval_layer!r}, max_cache_tokens={self.max_cache_tokens})"
        )

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
            question_ids = self._question_ids(question)
            budget = self._cache_budget(len(question_ids))
            documents = open_documents(source)
        except (ValueError, FileNotFoundError) as err:
            if label == "source":
                raise
            raise type(err)(f"{label}: {err}") from None
        label = "source" if label == "source" else f"{label}: source"
        units = self._prep.units(documents)
        return ScanItem.start(
            question, question_ids, budget, documents, units, self.chunk_tokens, label
        )

    def _scan(self, items: list[ScanItem], progress, cancel) -> list[Retrieval]:
        layer = self.retrieval_layer_index
        settings = StepSettings(
            self.layout, self._runner, layer, self._heads, self.phrase_tokens, self.top_k_tokens
        )
        run_scan(items, settings, progress, cancel, self.batch_size)
        return [self._retrieval(item.question, item.cache, item.stats(layer)) for item in items]

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
        _positive_int("max_new_tokens", max_new_tokens)
        _check_stop(stop)
        retrieval = self.retrieve(source, question, progress=progress, cancel=cancel)
        return self.answer_from(retrieval, max_new_tokens=max_new_tokens, stop=stop)

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
        _positive_int("max_new_tokens", max_new_tokens)
        _check_stop(stop)
        retrievals = self.retrieve_batch(pairs, progress=progress, cancel=cancel)
        return self.answer_from_batch(retrievals, max_new_tokens=max_new_tokens, stop=stop)

    def answer_from_batch(
        self,
        retrievals: Sequence[Retrieval],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
    ) -> list[Answer]:
        """:meth:`answer_from` for many retrievals, generated in batches of ``batch_size``."""
        _positive_int("max_new_tokens", max_new_tokens)
        stops = _check_stop(stop)
        if isinstance(retrievals, (str, bytes)) or not isinstance(retrievals, Sequence):
            raise ValueError("retrievals must be a list of Retrieval")
        prompts, limits = [], []
        for i, retrieval in enumerate(retrievals):
            if not isinstance(retrieval, Retrieval):
                raise ValueError(
                    f"retrievals[{i}] must be a Retrieval, got {type(retrieval).__name__}"
                )
            prompt, limit = self._answer_prompt(retrieval, max_new_tokens)
            prompts.append(prompt)
            limits.append(limit)
        answers: list[Answer] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            done = greedy_batch(
                self.model,
                self.tokenizer,
                prompts[start:end],
                limits[start:end],
                self._end_ids,
                stops,
                self._pad_id,
            )
            for retrieval, prompt, (text, count) in zip(
                retrievals[start:end], prompts[start:end], done
            ):
                answers.append(Answer(text, retrieval, len(prompt), count))
        return answers

    def stream_answer(
        self,
        source: Source,
        question: str,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> Iterator[str]:
        """Like :meth:`answer`, yielding the answer's text pieces as the model writes them."""
        _positive_int("max_new_tokens", max_new_tokens)
        _check_stop(stop)
        _check_question(question)
        return self._stream_after_scan(source, question, max_new_tokens, stop, progress, cancel)

    def _stream_after_scan(self, source, question, max_new_tokens, stop, progress, cancel):
        retrieval = self.retrieve(source, question, progress=progress, cancel=cancel)
        yield from self.stream_answer_from(retrieval, max_new_tokens=max_new_tokens, stop=stop)

    def answer_from(
        self,
        retrieval: Retrieval,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
    ) -> Answer:
        """Answer the retrieval's question from its cached sentences."""
        counter = GenerationCounter()
        pieces = self.stream_answer_from(
            retrieval, max_new_tokens=max_new_tokens, stop=stop, _counter=counter
        )
        text = "".join(pieces)
        return Answer(text, retrieval, counter.prompt_tokens, counter.generated_tokens)

    def stream_answer_from(
        self,
        retrieval: Retrieval,
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] | str | None = None,
        _counter: GenerationCounter | None = None,
    ) -> Iterator[str]:
        """Yield the answer to the retrieval's question, piece by piece."""
        if not isinstance(retrieval, Retrieval):
            raise ValueError(f"retrieval must be a Retrieval, got {type(retrieval).__name__}")
        _positive_int("max_new_tokens", max_new_tokens)
        stops = _check_stop(stop)
        prompt, limit = self._answer_prompt(retrieval, max_new_tokens)
        return stream_greedy(
            self.model, self.tokenizer, prompt, limit, self._end_ids, stops, _counter
        )

    def _answer_prompt(self, retrieval: Retrieval, max_new_tokens: int) -> tuple[list[int], int]:
        """The answer prompt's ids and the tokens that may be generated after it."""
        context = [i for ids in retrieval.token_ids for i in ids]
        prompt = self.layout.build(context, self._question_ids(retrieval.question)).ids
        room = self.context_window - len(prompt)
        if room < 1:
            raise ValueError("the cache and the question leave no room for an answer")
        return prompt, min(max_new_tokens, room)

    # ----------------------------------------------------------------- internals
    def _check_layer(self, layer: int | str) -> int | None:
        if layer == "auto":
            return None
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ValueError(f"retrieval_layer must be an int or 'auto', got {layer!r}")
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(
                f"retrieval_layer={layer} is out of range for a model of {self.num_layers} layers "
                f"(use {-self.num_layers}..{self.num_layers - 1})"
            )
        return layer % self.num_layers

    def _question_ids(self, question: str) -> list[int]:
        return self.segmenter.encode_text(self.layout.question_lead + question)

    def _cache_budget(self, question_tokens: int) -> int:
        room = self.context_window - self.layout.overhead - self.chunk_tokens - question_tokens
        if room < MIN_CACHE_TOKENS:
            raise ValueError(
                f"question is too long: {question_tokens} tokens leave no room for the cache next "
                f"to a chunk of {self.chunk_tokens} tokens in a {self.context_window}-token window"
            )
        return min(room, self.max_cache_tokens) if self.max_cache_tokens else room

    def _phrase_scores(
        self, units: list[Unit], question_ids: list[int], layers: tuple[int, ...]
    ) -> tuple[dict[int, torch.Tensor], int]:
        """Phrase scores over the units' tokens at each layer, and the prompt's length."""
        context = [i for u in units for i in u.ids]
        prompt = self.layout.build(context, question_ids)
        device = self.device
        input_ids = torch.tensor([prompt.ids], device=device)
        rows = torch.arange(prompt.question_start, prompt.question_end, device=device)[None]
        valid = torch.ones_like(rows, dtype=torch.float32)
        captured = capture(self.model, input_ids, rows, valid, layers)
        norm = float(self._heads * rows.shape[1])
        scores = {
            layer: phrase_scores(
                captured[layer][0, prompt.context_start : prompt.context_end] / norm,
                self.phrase_tokens,
            )
            for layer in layers
        }
        return scores, len(prompt.ids)

    def _retrieval(self, question: str, cache: SentenceCache, stats: Stats) -> Retrieval:
        sentences = [
            Sentence(u.text, score, u.doc_index, u.char_start, u.char_end)
            for u, score in zip(cache.units, cache.scores)
        ]
        return Retrieval(question, sentences, stats, [list(u.ids) for u in cache.units])

    def calibrate_layers(self, trials: int = 12, seed: int = 0) -> dict[int, float]:
        """Mean reciprocal rank of a synthetic needle at every layer (see ``calibration``)."""

        def score(trial: NeedleTrial, layers: tuple[int, ...]) -> dict[int, list[float]]:
            units = [
                Unit(0, 0, len(text), text, ids)
                for text, ids in zip(trial.sentences, self.segmenter.encode(trial.sentences))
            ]
            phrase, _ = self._phrase_scores(units, self._question_ids(trial.question), layers)
            owner = torch.repeat_interleave(
                torch.arange(len(units)), torch.tensor([len(u.ids) for u in units])
            )
            result = {}
            for layer, values in phrase.items():
                best = torch.full((len(units),), float("-inf"))
                best = best.scatter_reduce(0, owner, values.float().cpu(), reduce="amax")
                result[layer] = best.tolist()
            return result

        return rank_layers(score, self.num_layers, trials=trials, seed=seed)

    def _calibrated_layer(self) -> int:
        key = model_key(self.model)
        stored = stored_layer(key)
        if stored is not None and 0 <= stored < self.num_layers:
            return stored
        layer = best_layer(self.calibrate_layers())
        store_layer(key, layer)
        return layer
