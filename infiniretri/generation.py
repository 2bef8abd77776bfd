"""Answer generation from the cache: greedy decoding that streams text pieces.

The pieces joined are exactly the final text. Generation stops at an end-of-turn token, after
``max_new_tokens``, or before the first ``stop`` string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache


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


@torch.inference_mode()
def stream_greedy(
    model,
    tokenizer,
    prompt_ids: list[int],
    max_new_tokens: int,
    end_ids: set[int],
    stop: Sequence[str] = (),
    counter: GenerationCounter | None = None,
) -> Iterator[str]:
    """Yield the answer as text pieces, decoding greedily with a KV cache."""
    counter = counter if counter is not None else GenerationCounter()
    counter.prompt_tokens = len(prompt_ids)
    device = next(model.parameters()).device
    past = DynamicCache(config=model.config)
    inputs = torch.tensor([prompt_ids], device=device)
    generated: list[int] = []
    emitted = ""
    started = False
    for _ in range(max_new_tokens):
        out = model(input_ids=inputs, past_key_values=past, use_cache=True, logits_to_keep=1)
        token = int(out.logits[0, -1].argmax())
        if token in end_ids:
            break
        generated.append(token)
        counter.generated_tokens = len(generated)
        inputs = torch.tensor([[token]], device=device)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        if not started:
            stripped = text.lstrip()
            if not stripped:
                continue
            offset = len(text) - len(stripped)
        text = text[offset:]
        started = True
        if text.endswith("\ufffd"):
            continue  # an unfinished multi-byte character
        cut = _stop_index(text, stop)
        if cut >= 0:
            if cut > len(emitted):
                yield text[len(emitted) : cut]
            return
        ready = len(text) - _held_back(text, stop)
        if ready > len(emitted):
            yield text[len(emitted) : ready]
            emitted = text[:ready]
    text = tokenizer.decode(generated, skip_special_tokens=True).lstrip()
    if len(text) > len(emitted) and not text.endswith("\ufffd"):
        yield text[len(emitted) :]
