"""The model side of an engine: model, tokenizer, device, and the one capture forward.

Everything here depends on the model alone, never on engine settings, so engines made with
``with_options`` share one :class:`ModelContext` (and its recorded CUDA graphs). The scan, the
batch scan, calibration and the benchmarks all read attention through :meth:`ModelContext.capture`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .attention import decoder_layers, install_capture, text_config
from .copying import WordTokens
from .decoding import DecodeGraphs
from .forward import ForwardRunner
from .generation import end_token_ids
from .loading import MODEL_ID_ATTR
from .prep import PrepPool, default_workers
from .prompt import BuiltPrompt
from .readout import Readout
from .scoring import TokenScores
from .segments import Segmenter


def context_window(model, tokenizer) -> int:
    """Tokens the model can read at once."""
    config = text_config(model)
    limits = [getattr(config, "max_position_embeddings", None)]
    limits.append(getattr(tokenizer, "model_max_length", None))
    limits = [n for n in limits if isinstance(n, int) and 0 < n < 10_000_000]
    return min(limits) if limits else 2048


class ModelContext:
    """A Hugging Face causal LM and its tokenizer, ready for capture forwards."""

    def __init__(self, model, tokenizer) -> None:
        if model is None or not hasattr(model, "config"):
            raise ValueError("model must be a Hugging Face causal language model")
        if tokenizer is None or not callable(tokenizer):
            raise ValueError("tokenizer must be the model's Hugging Face tokenizer")
        self.model = model
        self.tokenizer = tokenizer
        self.num_layers = decoder_layers(model)
        """Decoder layers of the model."""
        self.heads = int(text_config(model).num_attention_heads)
        """Attention heads per layer."""
        self.context_window = context_window(model, tokenizer)
        """Tokens the model can read at once."""
        self.pad_id = next(
            (int(i) for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0
        )
        """Token id used to right-pad batched prompts."""
        self.end_ids = end_token_ids(model, tokenizer)
        """Token ids that end the assistant's turn."""
        self._word_tokens: WordTokens | None = None
        install_capture(model)
        self.auto_layer: int | None = None
        """The layer that ``retrieval_layer="auto"`` resolved to, once it did."""
        self.auto_heads: Readout | None = None
        """The heads that ``retrieval_heads="auto"`` resolved to, once they did."""
        self._runners: dict[bool, ForwardRunner] = {}
        self._decoding: dict[bool, DecodeGraphs] = {}
        self._pools: dict[tuple[int, int], PrepPool] = {}
        self._lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as written (no special tokens added)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def word_tokens(self) -> WordTokens:
        """The vocabulary's answer ends, blanks, punctuation and word starts (one pass over the
        vocabulary, once)."""
        if self._word_tokens is None:
            lines, blank, initial, space = set(self.end_ids), set(), set(), set()
            for token, i in self.tokenizer.get_vocab().items():
                text = self.tokenizer.convert_tokens_to_string([token])
                if "\n" in text:
                    lines.add(i)
                if not any(c.isalnum() for c in text):
                    blank.add(i)
                    if any(c.isspace() for c in text):
                        space.add(i)
                elif text[:1].isspace() and text[1:2].isalnum():
                    initial.add(i)
            self._word_tokens = WordTokens(*map(frozenset, (lines, blank, initial, space)))
        return self._word_tokens

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    @property
    def model_name(self) -> str:
        """The model's name or path, or its class name."""
        config = self.model.config
        return str(
            getattr(config, MODEL_ID_ATTR, None)
            or getattr(self.model, "name_or_path", "")
            or type(self.model).__name__
        )

    def _made_once(self, store: dict, key, make: Callable[[], Any]) -> Any:
        """``store[key]``, made by ``make()`` the first time (thread-safe)."""
        with self._lock:
            if key not in store:
                store[key] = make()
            return store[key]

    def runner(self, graphs: bool, compiled: bool = False) -> ForwardRunner:
        """The forward runner (with CUDA graphs on CUDA, or without; recording them through
        compiled layers, or not), made once."""
        return self._made_once(
            self._runners,
            (graphs, compiled),
            lambda: ForwardRunner(self.model, self.pad_id, graphs=graphs, compiled=compiled),
        )

    def decode_graphs(self, graphs: bool) -> DecodeGraphs:
        """The answer's recorded decoding step (used on CUDA with ``graphs``), made once."""
        return self._made_once(
            self._decoding,
            graphs,
            lambda: DecodeGraphs(self.model, self.context_window, enabled=graphs),
        )

    def prep_pool(self, max_sentence_tokens: int, workers: int | None) -> PrepPool:
        """The splitting and tokenizing pool for this sentence cap (``None``: default workers)."""
        if workers is None:
            workers = default_workers(self.device.type)
        return self._made_once(
            self._pools,
            (max_sentence_tokens, workers),
            lambda: PrepPool(Segmenter(self.tokenizer, max_sentence_tokens), workers),
        )

    def check_layer(self, layer: int) -> int:
        """``layer`` (negative counts from the top) as an index; ``ValueError`` if out of range."""
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(
                f"retrieval_layer={layer} is out of range for a model of {self.num_layers} layers "
                f"(use {-self.num_layers}..{self.num_layers - 1})"
            )
        return layer % self.num_layers

    @contextlib.contextmanager
    def capture(
        self,
        prompts: Sequence[BuiltPrompt],
        unit_lengths: Sequence[Sequence[int]],
        readout: Readout,
        *,
        graphs: bool = False,
        compiled: bool = False,
        texts: Sequence[Sequence[str]] | None = None,
        questions: Sequence[str] | None = None,
        rows: str = "question",
        baseline_ids: Sequence[int] | None = None,
    ) -> Iterator[TokenScores]:
        """Run the prompts as one right-padded batch up to the readout's highest layer.

        Yields the :class:`TokenScores` of the readout's head groups: the attention each
        position receives from its prompt's query ``rows`` (see
        :data:`~infiniretri.prompt.QUESTION_ROWS`), and the units (``unit_lengths``) each
        context holds (and, when given, their ``texts`` and the prompts' ``questions``).
        ``baseline_ids``: a content-free question; each prompt runs again with it in its
        question's place, in the same batch, and that attention comes back as
        ``TokenScores.baseline``.
        The tensors stay valid until the context exits (a CUDA graph's outputs are reused).
        """
        runner = self.runner(graphs, compiled)
        baseline = None
        if baseline_ids is not None:
            baseline = [p.with_question(baseline_ids) for p in prompts]
        batch = [*prompts, *(baseline or ())]
        with runner.session():
            values = runner.scores(
                [p.ids for p in batch],
                [p.rows(rows) for p in batch],
                readout.layers_read,
                readout.head_map,
            )
            gathered = readout.gather(values)
            n = len(prompts)
            yield TokenScores(
                gathered[:n] if baseline else gathered,
                [p.context_start for p in prompts],
                [list(u) for u in unit_lengths],
                [float(len(p.rows(rows))) for p in prompts],
                readout.group_heads(self.heads),
                None if texts is None else [list(t) for t in texts],
                None if questions is None else list(questions),
                gathered[n : 2 * n] if baseline else None,
                [float(len(p.rows(rows))) for p in baseline] if baseline else None,
            )
