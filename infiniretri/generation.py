"""Answer generation from the cache: greedy decoding that streams text pieces.

The pieces joined are exactly the final text. Generation stops at an end-of-turn token, after
``max_new_tokens``, or before the first ``stop`` string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .copying import CopyBias
from .decoding import Decoder, EagerDecoder, cache_kwarg


@dataclass
class GenerationCounter:
    """Filled in while a stream runs."""

    prompt_tokens: int = 0
    generated_tokens: int = 0


def end_token_ids(model, tokenizer) -> set[int]:
    """Token ids that end the assistant's turn."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, (list, tuple)):
            ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def _stop_index(text: str, stop: Sequence[str]) -> int:
    cuts = [text.find(s) for s in stop if s and s in text]
    return min(cuts) if cuts else -1


def _held_back(text: str, stop: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that could start a stop string."""
    hold = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), hold, -1):
            if s.startswith(text[-n:]):
                hold = n
                break
    return hold


class TextPieces:
    """Turns generated tokens, one at a time, into the answer's text pieces.

    Leading whitespace is dropped, an unfinished multi-byte character is held back, and the text
    ends before the first ``stop`` string. The pieces joined are the final text.
    """

    def __init__(self, tokenizer, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.generated: list[int] = []
        self.emitted = ""
        self.offset = 0
        self.started = False
        self.stopped = False

    def feed(self, token: int) -> str:
        """Add a token; return the text it completes ('' if none). Sets ``stopped`` at a stop."""
        self.generated.append(token)
        text = self.tokenizer.decode(self.generated, skip_special_tokens=True)
        if not self.started:
            stripped = text.lstrip()
            if not stripped:
                return ""
            self.offset = len(text) - len(stripped)
            self.started = True
        text = text[self.offset :]
        if text.endswith("\ufffd"):
            return ""  # an unfinished multi-byte character
        cut = _stop_index(text, self.stop)
        if cut >= 0:
            self.stopped = True
            piece = text[len(self.emitted) : cut] if cut > len(self.emitted) else ""
            self.emitted += piece
            return piece
        ready = len(text) - _held_back(text, self.stop)
        if ready > len(self.emitted):
            piece = text[len(self.emitted) : ready]
            self.emitted = text[:ready]
            return piece
        return ""

    def finish(self) -> str:
        """The text still held back once generation ended without a stop string."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.generated, skip_special_tokens=True).lstrip()
        if len(text) > len(self.emitted) and not text.endswith("\ufffd"):
            piece = text[len(self.emitted) :]
            self.emitted = text
            return piece
        return ""


@torch.inference_mode()
def stream_greedy(
    model,
    tokenizer,
    prompt_ids: list[int],
    max_new_tokens: int,
    end_ids: set[int],
    stop: Sequence[str] = (),
    counter: GenerationCounter | None = None,
    copy: CopyBias | None = None,
    decoder: Decoder | None = None,
) -> Iterator[str]:
    """Yield the answer as text pieces, decoding greedily with a KV cache (``copy``: favour
    tokens that continue a span of the evidence; ``decoder``: how the model is called, by
    default :class:`~infiniretri.decoding.EagerDecoder`)."""
    counter = counter if counter is not None else GenerationCounter()
    counter.prompt_tokens = len(prompt_ids)
    decoder = decoder if decoder is not None else EagerDecoder(model)
    pieces = TextPieces(tokenizer, stop)
    token: int | None = None
    for _ in range(max_new_tokens):
        logits = decoder.first(prompt_ids) if token is None else decoder.next(token)
        if copy is not None:
            logits = copy.apply(logits.float())
        token = int(logits.argmax())
        if token in end_ids:
            break
        if copy is not None:
            copy.advance(token)
        counter.generated_tokens += 1
        piece = pieces.feed(token)
        if piece:
            yield piece
        if pieces.stopped:
            return
    piece = pieces.finish()
    if piece:
        yield piece


@torch.inference_mode()
def greedy_batch(
    model,
    tokenizer,
    prompts: Sequence[list[int]],
    max_new_tokens: Sequence[int],
    end_ids: set[int],
    stop: Sequence[str] | Sequence[Sequence[str]] = (),
    pad_id: int = 0,
    copies: Sequence[CopyBias | None] | None = None,
) -> list[tuple[str, int]]:
    """``(text, generated tokens)`` of each prompt, as :func:`stream_greedy` gives them alone.

    ``stop``: stop strings for every row, or one sequence of them per row. The prompts are
    left-padded into one batch (attention mask and positions skip the padding);
    a row stops at an end token, at its ``max_new_tokens`` or at a stop string.
    """
    device = next(model.parameters()).device
    batch = len(prompts)
    longest = max(len(p) for p in prompts)
    ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, longest), dtype=torch.long)
    for b, prompt in enumerate(prompts):
        ids[b, longest - len(prompt) :] = torch.tensor(prompt)
        mask[b, longest - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = {cache_kwarg(model): DynamicCache(config=model.config)}
    per_row = bool(stop) and not isinstance(stop[0], str)
    stops = list(stop) if per_row else [stop] * batch
    pieces = [TextPieces(tokenizer, s) for s in stops]
    counts = [0] * batch
    live = [limit > 0 for limit in max_new_tokens]
    inputs = ids
    for _ in range(max(max_new_tokens)):
        if not any(live):
            break
        out = model(
            input_ids=inputs,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **cache,
        )
        logits = out.logits[:, -1]
        if copies is not None and any(c is not None for c in copies):
            logits = logits.float()
            for b, copy in enumerate(copies):
                if copy is not None and live[b]:
                    copy.apply(logits[b])
        tokens = logits.argmax(-1).tolist()
        for b, token in enumerate(tokens):
            if not live[b]:
                continue
            if token in end_ids:
                live[b] = False
                continue
            if copies is not None and copies[b] is not None:
                copies[b].advance(token)
            counts[b] += 1
            pieces[b].feed(token)
            if pieces[b].stopped or counts[b] >= max_new_tokens[b]:
                live[b] = False
        inputs = torch.tensor(tokens, device=device)[:, None]
        mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=1)
        positions = positions[:, -1:] + 1
    for piece in pieces:
        piece.finish()
    return [(piece.emitted, count) for piece, count in zip(pieces, counts)]
