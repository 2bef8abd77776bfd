"""The answer's decoding steps: the prompt once, then one token per call.

A decoding step of a small model costs more in Python and kernel launches than in arithmetic
(on an H200, SmolLM2-135M takes about 20 ms a token eagerly). On CUDA with ``cuda_graphs`` on,
:class:`DecodeGraphs` runs the steps over a static KV cache and replays each one as a recorded
CUDA graph. Elsewhere, or while another answer holds the graph, :class:`EagerDecoder` runs them
over a growing cache. Both give the logits of the same model; their kernels differ, so tokens
agree up to floating-point ties.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

import torch
from transformers import DynamicCache, StaticCache

SMALLEST_STATIC_CACHE = 1024
"""Tokens the first static cache holds; a longer answer grows it to the next power of two."""


def cache_kwarg(model) -> str:
    """The keyword that passes the KV cache to ``model``'s forward.

    Recent transformers releases name it ``cache`` and warn (``FutureWarning``) that the old
    ``past_key_values`` is deprecated; models of earlier releases, or remote code, take only
    ``past_key_values``.
    """
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


class Decoder(Protocol):
    """Greedy decoding's model calls: ``first`` reads the prompt, ``next`` one more token."""

    def first(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        """The next token's logits ``(vocab,)`` after the prompt."""

    def next(self, token: int) -> torch.Tensor:
        """The next token's logits after ``token``."""


def _logits(model, ids: torch.Tensor, kwargs: dict) -> torch.Tensor:
    return model(input_ids=ids, use_cache=True, logits_to_keep=1, **kwargs).logits[0, -1]


class EagerDecoder:
    """Every step a plain forward over a growing (dynamic) KV cache."""

    def __init__(self, model) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.kwargs = {cache_kwarg(model): DynamicCache(config=model.config)}

    def first(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        return _logits(
            self.model, torch.tensor([list(prompt_ids)], device=self.device), self.kwargs
        )

    def next(self, token: int) -> torch.Tensor:
        return _logits(self.model, torch.tensor([[token]], device=self.device), self.kwargs)


class _StaticStep:
    """A static cache of ``size`` tokens and, once recorded, the graph of one step over it."""

    def __init__(self, model, size: int, device: torch.device) -> None:
        self.model = model
        self.size = size
        self.device = device
        self.kwargs = {cache_kwarg(model): StaticCache(config=model.config, max_cache_len=size)}
        self.token = torch.zeros((1, 1), dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None

    def prompt(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        """Empty the cache, then read the prompt into it (eagerly: its length varies)."""
        self.kwargs[cache_kwarg(self.model)].reset()
        ids = torch.tensor([list(prompt_ids)], device=self.device)
        return _logits(self.model, ids, self.kwargs)

    def record(self) -> None:
        """Record one step (the cache's layers must be allocated: a prompt was read)."""
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up: lazy initialisation stays out of the graph
                _logits(self.model, self.token, self.kwargs)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.logits = _logits(self.model, self.token, self.kwargs)
        self.graph = graph

    def replay(self, token: int) -> torch.Tensor:
        self.token.fill_(token)
        self.graph.replay()
        return self.logits


class GraphDecoder:
    """The prompt eagerly into the static cache, then every token a replay of the graph."""

    def __init__(self, static: _StaticStep, owner: DecodeGraphs) -> None:
        self.static = static
        self.owner = owner
        self.eager: EagerDecoder | None = None
        """Set when recording failed: this answer then decodes eagerly."""

    def first(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        static = self.static
        if static.graph is not None:
            return static.prompt(prompt_ids)
        try:  # the first answer over this cache records its step
            static.prompt(prompt_ids)
            static.record()
        except Exception as err:  # a model without a static cache, or not capturable
            self.owner.disable(err)
            self.eager = EagerDecoder(static.model)
            return self.eager.first(prompt_ids)
        return static.prompt(prompt_ids)  # the warm-up steps wrote past the prompt

    def next(self, token: int) -> torch.Tensor:
        if self.eager is not None:
            return self.eager.next(token)
        return self.static.replay(token)


class DecodeGraphs:
    """One model's recorded decoding step, lent to one answer at a time.

    The static cache holds the longest answer seen so far (prompt and new tokens), rounded up
    to a power of two of at least :data:`SMALLEST_STATIC_CACHE`, at most the window; a longer
    answer records a larger cache in place of the old one, so memory is that of one cache.
    A model whose step cannot be recorded decodes eagerly from then on (``error`` says why).
    """

    def __init__(self, model, window: int, enabled: bool = True) -> None:
        self.model = model
        self.window = window
        self.device = next(model.parameters()).device
        self.enabled = bool(enabled) and self.device.type == "cuda"
        self.error: str | None = None
        self._static: _StaticStep | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def decoder(self, tokens: int) -> Iterator[Decoder]:
        """A decoder for an answer of at most ``tokens`` tokens (prompt and new ones): the
        graph's while it is free and the answer fits the window, else an eager one."""
        if not self.enabled or tokens > self.window or not self._lock.acquire(blocking=False):
            yield EagerDecoder(self.model)
            return
        try:
            static = self._static
            if static is None or static.size < tokens:
                size = min(self.window, max(SMALLEST_STATIC_CACHE, 1 << (tokens - 1).bit_length()))
                self._static = None  # the old cache's memory goes first
                try:
                    static = self._static = _StaticStep(self.model, size, self.device)
                except Exception as err:  # a model whose cache cannot be static
                    self.disable(err)
            yield EagerDecoder(self.model) if self._static is None else GraphDecoder(static, self)
        finally:
            self._lock.release()

    def disable(self, err: Exception) -> None:
        """Decode eagerly from now on, because of ``err``."""
        self.enabled = False
        self.error = f"{type(err).__name__}: {err}"
        self._static = None
